"""Every parser, fed random and mutated documents, raises only its own error type (which the CLI
maps to exit 2) and never crashes. The SARIF writer's property is in tests/unit/test_sarif.py."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardening.errors import ConfigError, DockerfileError, PolicyError, ReportInputError, ScannerError
from tests.reliability import cases
from tests.reliability.harness import GATE, POLICY, catalog_toml

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_SUPPRESSIONS = cases._SUPPRESSIONS
_HISTORY_LINE = (
    '{"date": "2026-01-01T00:00:00Z", "image": "demo", "digest": "sha256:' + "a" * 64 + '", '
    '"counts": {"critical": 0, "high": 1, "medium": 0, "low": 0, "unknown": 0}, "gate": "passed", '
    '"db_date": null, "trivy_version": "0.76.0"}\n'
)
_TRIVY = cases._trivy_doc(cases._result(f"[{cases._GOOD_VULN}]"))
_OSV = cases._OSV


_NOISE = [*list("\"'[]{}:,=-#\n\t \\x0123456789.eE$%&*!|>@`"), "�", "\x00", "\u2028"]


@st.composite
def mutated(draw: st.DrawFn, valid: str) -> str:
    """A valid document with a few random cuts, insertions and replacements: near misses are
    what find the gaps in a parser, not uniform noise."""
    text = valid
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        end = draw(st.integers(min_value=at, max_value=min(len(text), at + 12)))
        insert = draw(st.text(alphabet=st.sampled_from(_NOISE), max_size=6))
        text = text[:at] + insert + text[end:]
    return text


def documents(valid: str) -> st.SearchStrategy[str]:
    return st.one_of(mutated(valid), st.text(max_size=200))


def _json_values() -> st.SearchStrategy[object]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=20,
    )


def _in_file(name: str, text: str) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="hardening-property-"))
    path = directory / name
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


@SETTINGS
@given(documents(catalog_toml("fault")))
def test_catalog_toml(text: str) -> None:
    from hardening.catalog import load_catalog

    path = _in_file("hardening.toml", text)
    try:
        load_catalog(path)
    except ConfigError as exc:
        assert str(path) in str(exc)


@SETTINGS
@given(documents(POLICY))
def test_policy_yaml(text: str) -> None:
    from hardening.policy.config import parse_policy

    try:
        parse_policy(text, "policy.yaml")
    except PolicyError as exc:
        assert "policy.yaml" in str(exc)


@SETTINGS
@given(documents(_SUPPRESSIONS))
def test_suppressions_yaml(text: str) -> None:
    from hardening.gate import load_suppressions

    path = _in_file("suppressions.yaml", text)
    try:
        load_suppressions(path)
    except PolicyError as exc:
        assert "suppressions.yaml" in str(exc)


@SETTINGS
@given(documents(GATE))
def test_gate_yaml(text: str) -> None:
    from hardening.gate import load_gate

    path = _in_file("gate.yaml", text)
    try:
        load_gate(path, path.parent)
    except PolicyError as exc:
        assert "gate.yaml" in str(exc)


@SETTINGS
@given(st.one_of(documents(_TRIVY), _json_values().map(json.dumps)))
def test_trivy_json(text: str) -> None:
    from hardening.scan.trivy import parse_report

    with contextlib.suppress(ScannerError):
        parse_report(text.encode("utf-8", "surrogatepass"), image="demo", artifact_name=None, image_id=None)


@SETTINGS
@given(st.one_of(documents(_OSV), _json_values().map(json.dumps)))
def test_osv_record(text: str) -> None:
    from hardening.db.osv import load_record

    path = _in_file("GHSA-aaaa-bbbb-cccc.json", text)
    try:
        load_record(path)
    except ConfigError as exc:  # AdvisoryError is a ConfigError
        assert str(path) in str(exc)


def _valid_json_report() -> str:
    from hardening.findings import Finding, Origin, Severity
    from hardening.report.jsonreport import build_report

    finding = Finding(
        origin=Origin.SCANNER, rule_id="CVE-2024-1", severity=Severity.LOW, message="m", image="demo"
    )
    return json.dumps(build_report("demo", [finding]))


@SETTINGS
@given(st.one_of(documents(_valid_json_report()), _json_values().map(json.dumps)))
def test_json_report(text: str) -> None:
    from hardening.report.jsonreport import load_report

    path = _in_file("findings.json", text)
    try:
        load_report(path)
    except ReportInputError as exc:
        assert str(path) in str(exc)


@SETTINGS
@given(st.lists(st.one_of(mutated(_HISTORY_LINE), st.just(_HISTORY_LINE)), min_size=1, max_size=3))
def test_history_line(lines: list[str]) -> None:
    from hardening.history import load_file

    path = _in_file("demo.jsonl", "".join(lines))
    try:
        load_file(path)
    except ReportInputError as exc:
        assert str(path) in str(exc)


@SETTINGS
@given(
    documents('FROM base AS b\nARG X=1\nENV A=1 B="2 3"\nRUN echo \\\n  hi\nCOPY --from=b /a /b\nUSER 1:1\n')
)
def test_dockerfile(text: str) -> None:
    from hardening.dockerfile import parse_dockerfile

    # The engine's parser keeps unknown instructions and rejects what `docker build` rejects
    # (an unterminated heredoc, `ENV A`, a NUL byte): as a DockerfileError naming the file.
    try:
        parse_dockerfile(text, "some/Dockerfile")
    except DockerfileError as exc:
        assert exc.location is not None and str(exc.location).startswith("some/Dockerfile")


def test_every_property_is_registered() -> None:
    names = {c.id.replace("-", "_") for c in cases.PARSER_PROPERTIES}
    defined = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert names == defined - {"every_property_is_registered"}
