from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardening.cli import main
from hardening.diff import Pair, Side, diff_findings, diff_json, diff_markdown, load_findings, load_side
from hardening.errors import ExitCode, ReportInputError
from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report.jsonreport import build_report, write_report
from hardening.report.sarif import ToolInfo, build_sarif


def vuln(rule: str, severity: Severity, version: str = "1.0") -> Finding:
    return Finding(
        Origin.SCANNER,
        rule,
        severity,
        f"{rule}",
        "demo",
        package="libfoo",
        installed_version=version,
        fixed_version="2.0",
        image_path="/var/lib/dpkg/status",
    )


OLD = [vuln("CVE-1", Severity.CRITICAL), vuln("CVE-2", Severity.HIGH), vuln("CVE-3", Severity.LOW)]
NEW = [vuln("CVE-3", Severity.LOW), vuln("CVE-4", Severity.MEDIUM)]


def test_diff_counts_per_severity() -> None:
    result = diff_findings(OLD, NEW)
    counts = result.counts()
    assert counts["fixed"]["total"] == 2 and counts["fixed"]["critical"] == 1 and counts["fixed"]["high"] == 1
    assert counts["new"] == {"critical": 0, "high": 0, "medium": 1, "low": 0, "unknown": 0, "total": 1}
    assert [f.rule_id for f in result.unchanged] == ["CVE-3"]


def test_diff_ignores_line_numbers_and_locations() -> None:
    moved = [
        Finding(**{**f.__dict__, "location": SourceLocation("dockerfiles/demo/Dockerfile", 9)}) for f in OLD
    ]
    assert diff_findings(OLD, moved).counts()["unchanged"]["total"] == 3


def test_markdown_and_json() -> None:
    result = diff_findings(OLD, NEW)
    text = diff_markdown(result, "a", "b")
    assert "This rebuild fixed **2** findings, introduced **1** and kept **1**." in text
    assert "| fixed | 1 | 1 | 0 | 0 | 0 | 2 |" in text
    doc = diff_json(result, "a", "b")
    assert doc["counts"]["fixed"]["total"] == 2
    assert [f["rule_id"] for f in doc["new_findings"]] == ["CVE-4"]


def test_load_from_run_directories_and_sarif(tmp_path: Path) -> None:
    old_run = tmp_path / "old"
    write_report(old_run / "demo" / "findings.json", build_report("demo", OLD))
    sarif = build_sarif(
        "demo",
        NEW,
        tools={Origin.SCANNER: ToolInfo("Trivy", "0.76.0", "https://trivy.dev")},
        fallback_location=SourceLocation("dockerfiles/demo/Dockerfile", 1),
    )
    new_sarif = tmp_path / "new.sarif"
    new_sarif.write_text(json.dumps(sarif))
    result = diff_findings(load_findings(old_run), load_findings(new_sarif))
    assert {f.rule_id for f in result.fixed} == {"CVE-1", "CVE-2"}
    assert {f.rule_id for f in result.new} == {"CVE-4"}


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="no such file"):
        load_findings(tmp_path / "missing.sarif")
    with pytest.raises(ReportInputError, match="run directory"):
        load_findings(tmp_path)
    garbage = tmp_path / "x.json"
    garbage.write_text("{not json")
    with pytest.raises(ReportInputError, match=r"x\.json:1: the file is not valid JSON"):
        load_findings(garbage)


# --- only images both sides looked at; pairs; paths -------------------------------------------------


def _finding(
    image: str, rule: str, path: str, *, package: str | None = None, policy: bool = False
) -> Finding:
    return Finding(
        Origin.POLICY if policy else Origin.SCANNER,
        rule,
        Severity.MEDIUM if policy else Severity.HIGH,
        rule,
        image,
        package=package,
        installed_version="1.19.8" if package else None,
        image_path=path,
    )


def _run_dir(root: Path, images: dict[str, list[Finding]]) -> Path:
    for image, findings in images.items():
        write_report(root / image / "findings.json", build_report(image, findings))
    return root


def test_an_image_the_new_run_did_not_look_at_is_removed_not_fixed(tmp_path: Path) -> None:
    """The user's case: a run of both images against a later run of one of them."""
    cve = _finding(
        "python-secure",
        "CVE-2025-47273",
        "/opt/venv/lib/python3.11/site-packages/pip/_vendor/vendor.txt",
        package="setuptools",
    )
    old = _run_dir(tmp_path / "old", {"python-secure": [cve], "postgres-secure": []})
    new = _run_dir(tmp_path / "new", {"postgres-secure": []})
    result = diff_findings(load_side(old), load_side(new))
    assert result.counts()["fixed"]["total"] == 0
    assert result.removed == ("python-secure",) and result.added == ()
    assert [r.pair for r in result.pairs] == [Pair("postgres-secure", "postgres-secure")]
    text = diff_markdown(result, "old", "new")
    assert "This rebuild fixed **0** findings" in text
    assert "Only in `old`, not compared (removed): `python-secure`." in text
    assert "| `postgres-secure` | 0 | 0 | 0 | 0 |" in text
    doc = diff_json(result, "old", "new")
    assert doc["images"]["removed"] == ["python-secure"] and doc["fixed"] == []


def test_a_naive_image_and_its_hardened_replacement_are_compared_when_paired(tmp_path: Path) -> None:
    gosu = [
        _finding("postgres-naive", f"GO-2023-{n:04d}", "usr/local/bin/gosu", package="stdlib")
        for n in range(3)
    ]
    forbidden = _finding("postgres-naive", "HARDEN-BINARY-FORBIDDEN", "/usr/local/bin/gosu", policy=True)
    old = _run_dir(tmp_path / "naive", {"postgres-naive": [*gosu, forbidden]})
    new = _run_dir(tmp_path / "hardened", {"postgres-secure": [], "python-secure": []})
    unpaired = diff_findings(load_side(old), load_side(new))
    assert unpaired.counts()["fixed"]["total"] == 0
    assert unpaired.removed == ("postgres-naive",) and unpaired.added == ("postgres-secure", "python-secure")
    result = diff_findings(load_side(old), load_side(new), pairs=[Pair("postgres-naive", "postgres-secure")])
    assert result.counts()["fixed"]["total"] == 4 and result.added == ("python-secure",)
    text = diff_markdown(result, "naive", "hardened")
    assert "| `postgres-naive → postgres-secure` | 4 | 3 | 0 | 0 |" in text
    assert "- high `GO-2023-0000` stdlib 1.19.8 at `usr/local/bin/gosu` (postgres-naive)" in text
    assert "- medium `HARDEN-BINARY-FORBIDDEN` at `/usr/local/bin/gosu` (postgres-naive)" in text
    (compared,) = diff_json(result, "naive", "hardened")["images"]["compared"]
    assert compared["by_origin"]["fixed"] == {"policy": 1, "scanner": 3, "archive": 0}
    assert (compared["old"], compared["new"], compared["counts"]["fixed"]["total"]) == (
        "postgres-naive",
        "postgres-secure",
        4,
    )


def test_each_finding_shows_its_path_so_equal_rules_are_told_apart(tmp_path: Path) -> None:
    old = [
        _finding("redis-secure", "HARDEN-SETUID", path, policy=True)
        for path in ("/usr/bin/su", "/usr/bin/passwd")
    ]
    fixed_all = Side(frozenset({"redis-secure"}), ())  # looked at, found nothing
    text = diff_markdown(diff_findings(old, fixed_all), "a", "b")
    assert "- medium `HARDEN-SETUID` at `/usr/bin/passwd` (redis-secure)" in text
    assert "- medium `HARDEN-SETUID` at `/usr/bin/su` (redis-secure)" in text


def test_an_image_without_findings_still_counts_as_looked_at_in_sarif(tmp_path: Path) -> None:
    sarif = build_sarif(
        "demo",
        [],
        tools={Origin.SCANNER: ToolInfo("Trivy", "0.76.0", "https://trivy.dev")},
        fallback_location=SourceLocation("dockerfiles/demo/Dockerfile", 1),
    )
    path = tmp_path / "clean.sarif"
    path.write_text(json.dumps(sarif))
    assert load_side(path).images == frozenset({"demo"})
    result = diff_findings(Side.of(OLD), load_side(path))
    assert result.counts()["fixed"]["total"] == 3 and result.removed == ()


@pytest.mark.parametrize(
    ("pairs", "words"),
    [
        (["naive=nowhere"], "'nowhere', which the new side did not look at"),
        (["ghost=demo"], "'ghost', which the old side did not look at"),
        (["demo"], "is not OLD_IMAGE=NEW_IMAGE"),
        (["demo=demo=x"], "is not OLD_IMAGE=NEW_IMAGE"),
        (["naive=demo", "naive=other"], "names the old image 'naive' twice"),
    ],
)
def test_a_bad_pair_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pairs: list[str], words: str
) -> None:
    old = _run_dir(tmp_path / "old", {"naive": [], "demo": []})
    new = _run_dir(tmp_path / "new", {"demo": [], "other": []})
    argv = ["diff", str(old), str(new), *(arg for pair in pairs for arg in ("--pair", pair))]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == ExitCode.BAD_INPUT
    assert words in capsys.readouterr().err
