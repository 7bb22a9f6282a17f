"""README.md's reliability table is rendered from the registry in tests/reliability/cases.py."""

from __future__ import annotations

from tests.conftest import REPO_ROOT
from tests.reliability.cases import ALL_CASES, CLASS_NAMES, CLASSES, count

START = "<!-- reliability:start -->"
END = "<!-- reliability:end -->"


def render_table() -> str:
    lines = [
        f"{len(ALL_CASES)} cases in {len(CLASSES)} classes, counted from `tests/reliability/cases.py`.",
        "",
        "| class | what is tried | cases | expected result |",
        "|---|---|---:|---|",
    ]
    for klass in CLASSES:
        cell = [klass.name, klass.tried, str(count(klass.name)), klass.expected]
        lines.append("| " + " | ".join(text.replace("|", "\\|") for text in cell) + " |")
    return "\n".join(lines)


def test_every_case_has_a_known_class_and_every_class_has_cases() -> None:
    assert {case.klass for case in ALL_CASES} == CLASS_NAMES
    ids = [f"{case.klass}/{case.id}" for case in ALL_CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"


def test_readme_table_matches_the_registry() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    assert START in text and END in text, f"README.md needs {START} … {END} under ## Reliability"
    current = text.split(START, 1)[1].split(END, 1)[0].strip()
    expected = render_table()
    assert current == expected, (
        f"README.md's reliability table is stale; between the markers put:\n{expected}"
    )
