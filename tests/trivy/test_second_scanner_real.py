"""The real engine and the real Trivy, plus a scanner only this test registers, through `harden run`.

The unit test (tests/unit/test_scanner_extension.py) shows the same with stand-ins; here the
image is built by the engine, saved once, read by the real Trivy with a DB built from our
advisories and by the test's own scanner, and each tool gets its own SARIF run.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hardening.catalog import load_catalog
from hardening.cli import main
from hardening.cli.app import Registries
from hardening.db.build import build_db
from hardening.engine.client import Engine
from hardening.errors import ExitCode
from hardening.findings import Finding, Origin, Severity, ToolInfo, with_tool
from hardening.render import render, write_rendered
from hardening.run.store import latest_run
from hardening.scan.interface import Scanner, ScanOptions, ScanResult, ScanTarget
from hardening.scan.registry import ScannerRegistry, ScannerSettings
from tests.conftest import DEFAULT_IMAGE

pytestmark = [pytest.mark.trivy, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
TRIVY = Path(sys.prefix) / "bin" / "trivy"
REPOSITORY = "hardening/spine-second-scanner"  # this test's own, so no other test's tags move
CENSUS = ToolInfo("census", "1.0.0", "https://example.invalid/census")
GATE = """\
version: 1
fail_on: critical
only_fixable: true
policy_findings: false
"""


class CensusScanner(Scanner):
    """Reports the size of the saved image it is handed, as one low finding."""

    def __init__(self, _settings: ScannerSettings) -> None:
        pass

    @property
    def name(self) -> str:
        return "census"

    def prepare(self, options: ScanOptions) -> ToolInfo:
        return CENSUS

    def scan(self, target: ScanTarget, options: ScanOptions) -> ScanResult:
        size = target.tar_path.stat().st_size
        assert size > 1_000_000  # a real `docker save` of a Debian-based image
        finding = Finding(
            origin=Origin.SCANNER,
            rule_id="CENSUS-SIZE",
            severity=Severity.LOW,
            message=f"{target.image} ({target.image_id}) is {size} bytes saved",
            image=target.image,
            title="Image size",
        )
        return ScanResult(with_tool([finding], CENSUS.name), CENSUS, None, None, cached=False, packages=0)


@pytest.fixture
def repo(make_repo: Callable[..., Path], base_image: str) -> Path:
    catalog_path = make_repo(
        DEFAULT_IMAGE.replace('repository = "hardening/demo"', f'repository = "{REPOSITORY}"')
    )
    gate = catalog_path.parent / "policies" / "gate.yaml"
    gate.parent.mkdir(parents=True)
    gate.write_text(textwrap.dedent(GATE))
    catalog = load_catalog(catalog_path)
    for spec in catalog.images:
        write_rendered(render(spec, catalog.root), catalog.root)
    return catalog_path


@pytest.fixture
def cleanup(engine: Engine) -> Iterator[None]:
    yield
    for tag in ("candidate", "1"):
        engine.remove_image(f"{REPOSITORY}:{tag}", noprune=True)


@pytest.mark.usefixtures("cleanup")
def test_a_test_scanner_runs_beside_the_real_trivy(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "trivy-cache"
    build_db([REPO / "advisories"], cache)
    registries = Registries(ScannerRegistry.default().with_scanner("census", CensusScanner))
    argv = ["--catalog", str(repo), "run", "--scanner", "trivy", "--scanner", "census"]
    argv += ["--trivy", str(TRIVY), "--cache-dir", str(cache)]
    with pytest.raises(SystemExit) as exited:
        main(argv, registries=registries)
    output = capsys.readouterr()
    assert exited.value.code == ExitCode.OK, output.err
    assert "demo: PASS" in output.out

    image_dir = latest_run(repo.parent / "scans") / "demo"
    sarif = json.loads((image_dir / "results.sarif").read_text())
    drivers = [run["tool"]["driver"] for run in sarif["runs"]]
    # The update source's run comes after the scanners' (its image is built on the fresh base).
    assert [d["name"] for d in drivers] == ["hardening", "Trivy", "census", "debian-archive"]
    assert drivers[1]["version"].startswith("0.76.")
    assert [r["ruleId"] for r in sarif["runs"][2]["results"]] == ["CENSUS-SIZE"]
    trivy_record = json.loads((image_dir / "scan.json").read_text())
    census_record = json.loads((image_dir / "scan.census.json").read_text())
    assert trivy_record["tool"]["name"] == "Trivy" and trivy_record["tool"]["db"]["updated_at"]
    assert census_record["tool"] == CENSUS.to_json()
    assert census_record["image_id"] == trivy_record["image_id"]  # the same saved image
    assert (image_dir / "sbom.cdx.json").is_file() and not (image_dir / "sbom.census.cdx.json").exists()
    shutil.rmtree(repo.parent / "scans")
