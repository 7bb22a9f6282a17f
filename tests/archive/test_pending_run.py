"""Pending updates through the orchestrator: `harden run` and `harden report` with the Debian archive
as an update source, against the signed repository of conftest.py on 127.0.0.1.

The engine is the golden runs' fake (a synthetic image saved from memory, no build); the
archive, its signatures, indexes and changelogs are real. Checked: the findings in every report
format, each on the repository line that brought its package (the FROM line for the base's
packages, the apt-get line for what that line installed, traced by the layer of the package's
dpkg file list), the gate's `max_pending_security_days`, and failing closed when the archive is
unknown or was not checked.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest

from hardening.catalog import Catalog, load_catalog
from hardening.engine.client import BuildOutput, ImageInfo
from hardening.findings import DbIdentity, ToolInfo
from hardening.pending.debian import ArchiveSettings, DebianArchiveSource
from hardening.pending.updates import load_updates
from hardening.report.registry import ReportFormat
from hardening.run.orchestrator import RunContext, execute
from hardening.run.plan import plan_run
from hardening.run.report import plan_report, report_scan
from hardening.run.store import new_run_dir
from hardening.scan.interface import Scanner, ScanOptions, ScanResult, ScanTarget
from hardening.scan.service import write_scan_record
from tests.archive.aptrepo import status_paragraph
from tests.archive.conftest import SUITE, Scenario
from tests.unit.fakerun import HISTORY, FakeEngine, golden_repo_copy, remember_canonical
from tests.unit.imagetar import ImageSpec, directory, file, legacy_save, sha256

NOW = datetime(2026, 1, 20, 12, tzinfo=UTC)
TRIVY = ToolInfo("Trivy", "0.76.0", "https://trivy.dev", DbIdentity(updated_at="2026-01-19T00:00:00Z"))
PASSWD = "root:x:0:0:root:/root:/bin/bash\napp:x:10001:10001::/home/app:/usr/sbin/nologin\n"
# The base's packages (layer 0) and those the final stage's apt-get line installed (layer 1).
BASE = [("libfoo1", "1.0-1", "foo"), ("bar", "2.0-1", None), ("common-data", "1.0-1", None)]
APT = [("libbin1", "2.0-1+b1", "bin (2.0-1)"), ("libdocs1", "1.0-1", "docs")]


def _image(repo: Scenario) -> bytes:
    status = "\n".join(
        status_paragraph(n, v, source=s, architecture="all" if n == "common-data" else "amd64")
        for n, v, s in [*BASE, *APT]
    )
    sources = (
        f"deb {repo.server.mirror} {SUITE} main\ndeb {repo.server.mirror} {SUITE}-updates main\n"
        f"deb {repo.server.security_mirror} {SUITE}-security main\n"
    )
    info = "var/lib/dpkg/info/"
    layers = [
        [
            directory("etc"),
            file("etc/passwd", PASSWD),
            file("etc/group", "root:x:0:\napp:x:10001:\n"),
            file("etc/apt/sources.list", sources),
            directory("var/lib/dpkg/info"),
            file("var/lib/dpkg/status", "\n".join(status_paragraph(n, v, source=s) for n, v, s in BASE)),
            *(file(f"{info}{name}:amd64.list", f"/usr/share/doc/{name}\n") for name, _, _ in BASE[:2]),
            file(f"{info}common-data.list", "/usr/share/doc/common-data\n"),
        ],
        [
            file("var/lib/dpkg/status", status),
            *(file(f"{info}{name}:amd64.list", f"/usr/share/doc/{name}\n") for name, _, _ in APT),
        ],
        [directory("opt/venv/bin")],
    ]
    labels = {"org.hardening.base.suite": SUITE, "org.hardening.base.mirror": repo.server.mirror}
    spec = ImageSpec(
        user="10001:10001",
        healthcheck={"Test": ["CMD", "/opt/venv/bin/python", "-c", "print(1)"]},
        history=HISTORY,
        labels=labels,
    )
    return legacy_save(layers, spec, tag="golden/app:candidate")


class _Engine(FakeEngine):
    def __init__(self, catalog: Catalog, tar: bytes) -> None:
        super().__init__(catalog)
        self.tar = tar
        self.image_id = _config_id(tar)
        remember_canonical(self.image_id)  # the rewrite is not under test here

    def image(self, ref: str) -> ImageInfo | None:
        if ref == self.image_id or self.tags.get(ref) == self.image_id:
            return ImageInfo(self.image_id, (ref,), {}, 95_000_000, 3, "10001:10001", "2026-01-01T00:00:00Z")
        return super().image(ref)

    def build(self, *, tag: str, **_: Any) -> BuildOutput:
        self.tags[tag] = self.image_id
        return BuildOutput(self.image_id, ("Successfully built",))

    def save(self, ref: str, out: IO[bytes], **_: Any) -> None:
        out.write(self.tar)


def _config_id(tar: bytes) -> str:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
        return sha256(archive.extractfile(manifest[0]["Config"]).read())  # type: ignore[union-attr]


class _Quiet(Scanner):
    """A scanner that finds nothing: the pending updates are the subject here."""

    @property
    def name(self) -> str:
        return "trivy"

    def prepare(self, options: ScanOptions) -> ToolInfo:
        return TRIVY

    def scan(self, target: ScanTarget, options: ScanOptions) -> ScanResult:
        return ScanResult((), TRIVY, None, None, False, 5)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    root = golden_repo_copy(tmp_path, monkeypatch)
    # Only the gate's rule for pending updates is under test: no policy or suppression noise.
    gate = root / "policies" / "gate.yaml"
    gate.write_text("version: 1\nfail_on: high\npolicy_findings: false\nmax_pending_security_days: 1\n")
    return load_catalog(root / "hardening.toml")


def _source(repo: Scenario, tmp_path: Path, **extra: Any) -> DebianArchiveSource:
    settings = ArchiveSettings(cache_dir=tmp_path / "archive-cache", keyrings=(repo.key.keyring,), now=NOW)
    return DebianArchiveSource(replace(settings, **extra))


def _run(catalog: Catalog, repo: Scenario, tmp_path: Path, **extra: Any) -> Any:
    engine: Any = _Engine(catalog, _image(repo))
    options = ScanOptions(cache_dir=tmp_path / "trivy-cache", timeout=60)
    plan = plan_run(
        catalog,
        (),
        scanners=[_Quiet()],
        options=options,
        record_history=True,
        sources=[_source(repo, tmp_path, **extra)],
    )
    return execute(RunContext(plan, engine, new_run_dir(catalog.output_dir)))


def _lines(root: Path) -> dict[str, int]:
    """Line numbers of the rendered Dockerfile's final FROM and its apt-get line."""
    lines = (root / "dockerfiles/app/Dockerfile").read_text().splitlines()
    final_from = max(i for i, line in enumerate(lines, 1) if line.startswith("FROM "))
    apt = next(i for i, line in enumerate(lines, 1) if i > final_from and "apt-get install" in line)
    return {"from": final_from, "apt": apt}


def test_run_reports_pending_updates_on_their_lines_and_gates_them(
    repo: Scenario, catalog: Catalog, tmp_path: Path
) -> None:
    outcome = _run(catalog, repo, tmp_path)
    (image,) = outcome.images
    assert not outcome.passed
    reasons = image.decision.reasons
    assert reasons[0] == (
        "3 security updates pending for more than 1 day since the archive first carried them "
        "(max_pending_security_days: 1): rebuild"
    )
    assert any("HARDEN-REBUILD-PENDING in libfoo1 1.0-1 (newer: 1.0-1+deb12u1)" in r for r in reasons)
    image_dir = outcome.run.path / "app"
    lines = _lines(catalog.root)
    where = "dockerfiles/app/Dockerfile"

    findings = json.loads((image_dir / "findings.json").read_text())["findings"]
    pending = {f["package"]: f for f in findings if f["rule_id"] == "HARDEN-REBUILD-PENDING"}
    assert sorted(pending) == ["bar", "libbin1", "libdocs1", "libfoo1"]
    assert pending["libfoo1"]["location"] == {"path": where, "line": lines["from"]}  # the base's
    assert pending["bar"]["location"] == {"path": where, "line": lines["from"]}
    assert pending["libbin1"]["location"] == {"path": where, "line": lines["apt"]}  # the apt line's
    assert pending["libdocs1"]["location"] == {"path": where, "line": lines["apt"]}
    assert pending["libfoo1"]["template_location"]["path"] == "dockerfiles/app/Dockerfile.j2"
    assert (pending["libfoo1"]["severity"], pending["bar"]["severity"]) == ("high", "low")
    assert pending["libfoo1"]["origin"] == "archive" and pending["libfoo1"]["tool"] == "debian-archive"

    sarif = json.loads((image_dir / "results.sarif").read_text())
    runs = {run["tool"]["driver"]["name"]: run for run in sarif["runs"]}
    assert list(runs) == ["hardening", "Trivy", "debian-archive"]
    archive = runs["debian-archive"]
    assert {r["ruleId"] for r in archive["results"]} == {"HARDEN-REBUILD-PENDING"}
    located = {
        r["properties"]["package"]: r["locations"][0]["physicalLocation"]["region"]["startLine"]
        for r in archive["results"]
    }
    assert located == {
        "libfoo1": lines["from"],
        "bar": lines["from"],
        "libbin1": lines["apt"],
        "libdocs1": lines["apt"],
    }
    (rule,) = archive["tool"]["driver"]["rules"]
    assert rule["properties"]["tags"] == ["security", "pending-update", "debian"]
    assert rule["properties"]["security-severity"] == "8.0"

    summary = (outcome.run.path / "summary.md").read_text()
    assert "security updates pending for more than 1 day" in summary
    assert "`HARDEN-REBUILD-PENDING` | `libfoo1` | `1.0-1` | `1.0-1+deb12u1` (fixable)" in summary

    record = json.loads((image_dir / "pending.json").read_text())
    assert [c["state"] for c in record["checks"]] == ["complete"]
    gate = json.loads((image_dir / "gate.json").read_text())
    assert gate["decision"] == "fail"
    # --record-history: the first sighting of each update, for later latency figures.
    seen = load_updates(catalog.output_dir / "history")["app"]
    assert sorted((e.source, e.version) for e in seen) == [
        ("bar", "2.0-1+deb12u1"),
        ("bin", "2.0-1+deb12u1"),
        ("docs", "1.0-1+deb12u1"),
        ("foo", "1.0-1+deb12u1"),
    ]


def test_young_security_updates_pass_and_unknown_fails_closed(
    repo: Scenario, catalog: Catalog, tmp_path: Path
) -> None:
    # The day after the security pocket carried them: reported, not yet overdue.
    fresh = _run(catalog, repo, tmp_path, now=datetime(2026, 1, 15, 8, tzinfo=UTC))
    assert fresh.passed, fresh.images[0].decision.reasons
    assert sum(f.rule_id == "HARDEN-REBUILD-PENDING" for f in fresh.images[0].decision.findings) == 4
    # The archive's signature fails: unknown, and this gate depends on it.
    repo.behaviour.bodies["/debian-security/dists/bookworm-security/InRelease"] = b"garbage"
    broken = _run(catalog, repo, tmp_path, now=datetime(2026, 1, 15, 8, tzinfo=UTC))
    (image,) = broken.images
    assert not broken.passed
    assert image.decision.reasons[0].startswith("1 gap leaves pending security updates unknown")
    (unknown,) = [f for f in image.decision.findings if f.rule_id == "HARDEN-REBUILD-UNKNOWN"]
    assert unknown.location is not None and unknown.location.line == _lines(catalog.root)["from"]
    sarif = json.loads((broken.run.path / "app" / "results.sarif").read_text())
    (archive,) = [r for r in sarif["runs"] if r["tool"]["driver"]["name"] == "debian-archive"]
    assert [r["ruleId"] for r in archive["results"]] == ["HARDEN-REBUILD-UNKNOWN"]


def test_report_reads_the_pending_record_of_a_scan(repo: Scenario, catalog: Catalog, tmp_path: Path) -> None:
    tar = _image(repo)
    image_id = _config_id(tar)
    scan_dir = tmp_path / "scan"
    (tmp_path / "image.tar").write_bytes(tar)
    target = ScanTarget("golden/app:1.0", "golden/app:1.0", image_id, tmp_path / "image.tar")
    options = ScanOptions(cache_dir=None, timeout=60)
    write_scan_record(
        scan_dir / "scan.json",
        target.image,
        target.ref,
        image_id,
        _Quiet().scan(target, options),
        options,
        scanner="trivy",
    )
    outputs = {
        ReportFormat.SARIF: tmp_path / "out" / "app.sarif",
        ReportFormat.JSON: tmp_path / "out" / "app.json",
    }

    # No pending.json: not checked, and the gate depends on it.
    unchecked = report_scan(plan_report(catalog, "app", scan_dir, outputs=outputs, history_dir=None))
    assert not unchecked.decision.passed
    assert unchecked.decision.reasons[0].startswith("pending updates were not checked")

    from hardening.pending.record import write_pending_record

    check = _source(repo, tmp_path).check(target, None)
    write_pending_record(
        scan_dir / "pending.json", image=target.image, ref=target.ref, image_id=image_id, checks=[check]
    )
    history = tmp_path / "out" / "history"
    outcome = report_scan(plan_report(catalog, "app", scan_dir, outputs=outputs, history_dir=history))
    assert not outcome.decision.passed
    findings = json.loads(outputs[ReportFormat.JSON].read_text())["findings"]
    located = {
        f["package"]: f["location"]["line"] for f in findings if f["rule_id"] == "HARDEN-REBUILD-PENDING"
    }
    # Without the image's layers, a package is placed by name: none of these is on the apt line.
    assert located == dict.fromkeys(["bar", "libbin1", "libdocs1", "libfoo1"], _lines(catalog.root)["from"])
    assert all(f["image"] == "app" for f in findings)
    assert len(load_updates(history)["app"]) == 4

    # A record about another image is refused.
    doc = json.loads((scan_dir / "pending.json").read_text())
    doc["image_id"] = "sha256:" + "f" * 64
    (scan_dir / "pending.json").write_text(json.dumps(doc))
    from hardening.errors import ReportInputError

    with pytest.raises(ReportInputError, match="the pending-update record is about"):
        plan_report(catalog, "app", scan_dir, outputs=outputs, history_dir=None)
    shutil.rmtree(scan_dir)
