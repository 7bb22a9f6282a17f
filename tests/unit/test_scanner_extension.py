"""A scanner this repository does not ship, registered by the test alone, through `harden run`.

Adding a scanner is its module and one registry entry; here the "module" is the class below
and the entry is ``ScannerRegistry.with_scanner``. It runs beside the (stand-in) Trivy on the
same saved image and gets its own SARIF run, scan record, findings and history line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardening.catalog import load_catalog
from hardening.cli import main
from hardening.cli.app import Registries
from hardening.engine import client
from hardening.errors import ExitCode
from hardening.findings import Finding, Origin, Severity, ToolInfo, with_tool
from hardening.run.store import latest_run
from hardening.scan.interface import Scanner, ScanOptions, ScanResult, ScanTarget
from hardening.scan.registry import ScannerRegistry, ScannerSettings
from tests.unit.fakerun import IMAGE_TAR, FakeEngine, FakeScanner, golden_repo_copy

CENSUS = ToolInfo("census", "1.2.3", "https://example.invalid/census")


class CensusScanner(Scanner):
    """Counts what is in the tarball it is handed and calls a big image a finding."""

    def __init__(self, settings: ScannerSettings) -> None:
        self.settings = settings
        self.scanned: list[str] = []

    @property
    def name(self) -> str:
        return "census"

    def prepare(self, options: ScanOptions) -> ToolInfo:
        return CENSUS

    def scan(self, target: ScanTarget, options: ScanOptions) -> ScanResult:
        data = target.tar_path.read_bytes()
        assert data == IMAGE_TAR  # the very tarball the inspector and Trivy read
        self.scanned.append(target.image_id)
        finding = Finding(
            origin=Origin.SCANNER,
            rule_id="CENSUS-SIZE",
            severity=Severity.LOW,
            message=f"{target.image} is {len(data)} bytes saved",
            image=target.image,
            title="Image size",
        )
        return ScanResult(with_tool([finding], CENSUS.name), CENSUS, None, None, cached=False, packages=0)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = golden_repo_copy(tmp_path, monkeypatch)
    engine = FakeEngine(load_catalog(root / "hardening.toml"))
    monkeypatch.setattr(client.Engine, "connect", classmethod(lambda cls, **_: engine))
    return root


def _harden(argv: list[str], registries: Registries) -> int:
    with pytest.raises(SystemExit) as exited:
        main(argv, registries=registries)
    code = exited.value.code
    assert isinstance(code, int)
    return code


def test_a_scanner_registered_by_a_test_runs_through_harden_run(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scanners = (
        ScannerRegistry.default()
        .with_scanner("trivy", lambda _settings: FakeScanner())  # no Trivy DB in a unit test
        .with_scanner("census", CensusScanner)
    )
    catalog = str(repo / "hardening.toml")
    argv = ["--catalog", catalog, "run", "--scanner", "trivy", "--scanner", "census", "--record-history"]
    argv.append("--no-pending")  # the synthetic image has no Debian archive to compare with
    assert _harden(argv, Registries(scanners)) == ExitCode.GATE_FAILED  # the golden image fails
    out = capsys.readouterr().out
    assert "app: FAIL: 6 vulnerabilities" in out  # Trivy's five and the census's one

    image_dir = latest_run(repo / "scans") / "app"
    sarif = json.loads((image_dir / "results.sarif").read_text())
    drivers = [run["tool"]["driver"] for run in sarif["runs"]]
    assert [d["name"] for d in drivers] == ["hardening", "Trivy", "census"]
    census_run = sarif["runs"][2]
    assert drivers[2]["version"] == "1.2.3"
    assert [r["ruleId"] for r in census_run["results"]] == ["CENSUS-SIZE"]
    assert "CENSUS-SIZE" not in {r["ruleId"] for r in sarif["runs"][1]["results"]}

    record = json.loads((image_dir / "scan.census.json").read_text())
    assert record["scanner"] == "census" and record["tool"]["name"] == "census"
    assert [f["tool"] for f in record["findings"]] == ["census"]
    trivy_record = json.loads((image_dir / "scan.json").read_text())
    assert trivy_record["tool"]["name"] == "Trivy"

    findings = json.loads((image_dir / "findings.json").read_text())["findings"]
    assert {f["tool"] for f in findings} == {"hardening", "Trivy", "census"}
    history = [
        json.loads(line) for line in (repo / "scans" / "history" / "app.jsonl").read_text().splitlines()
    ]
    assert [(h["tool"]["name"], h["counts"]["low"]) for h in history] == [("Trivy", 1), ("census", 1)]
    assert [h["trivy_version"] for h in history] == ["0.76.0", None]


def test_an_unknown_scanner_is_a_usage_error_before_anything_runs(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--catalog", str(repo / "hardening.toml"), "run", "--scanner", "census"]
    assert _harden(argv, Registries.default()) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "no scanner named 'census'" in err and "known scanners: trivy" in err
    assert not (repo / "scans" / "runs").exists()


def test_each_scanner_once(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scanners = ScannerRegistry.default().with_scanner("trivy", lambda _settings: FakeScanner())
    argv = ["--catalog", str(repo / "hardening.toml"), "run", "--scanner", "trivy", "--scanner", "trivy"]
    assert _harden(argv, Registries(scanners)) == ExitCode.BAD_INPUT
    assert "scanner trivy given more than once" in capsys.readouterr().err
