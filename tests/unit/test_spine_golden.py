"""The same inputs give the same SARIF, JSON and Markdown: `harden run` and `harden report`, pinned.

A deterministic fake engine and scanner drive the real orchestration (render check, base check,
build record, inspection of a synthetic image tar, every policy check, gate with a suppression,
report writers, history). The goldens were captured from the orchestration as it was before the
run plan and the stage registries existed; they pin that the restructuring changed no byte.
Set UPDATE_GOLDEN=1 to rewrite them after a deliberate output change.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import IO, Any

import pytest

from hardening.base import base_labels
from hardening.catalog import Catalog, load_catalog
from hardening.engine.client import BuildOutput, ImageInfo
from hardening.findings import Finding, Origin, Severity
from hardening.gate import load_gate
from hardening.render import render, write_rendered
from hardening.run.store import new_run_dir
from hardening.runner import report_scan, run_pipeline
from hardening.scan.interface import Scanner, ScanOptions, ScanResult, ScanTarget
from tests.unit.imagetar import GOSU_MODINFO, ImageSpec, directory, file, go_elf, legacy_save, sha256

GOLDEN = Path(__file__).parents[1] / "golden" / "spine"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"
TODAY = date(2026, 6, 1)

PASSWD = "root:x:0:0:root:/root:/bin/bash\napp:x:10001:10001::/home/app:/usr/sbin/nologin\n"
GROUP = "root:x:0:\napp:x:10001:\n"
DPKG = """\
Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u2

Package: python3.11
Status: install ok installed
Architecture: amd64
Version: 3.11.2-6
"""
SITE = "opt/venv/lib/python3.11/site-packages"


def _meta(name: str, version: str) -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"


LAYERS = [
    [
        directory("etc"),
        file("etc/passwd", PASSWD),
        file("etc/group", GROUP),
        directory("tmp", mode=0o1777),
        directory("var/lib/dpkg"),
        file("usr/bin/passwd", b"\x7fELF" + b"\x00" * 200, mode=0o4755),
        directory("usr/lib/python3/dist-packages/pip-23.0.1.dist-info"),
        file("usr/lib/python3/dist-packages/pip-23.0.1.dist-info/METADATA", _meta("pip", "23.0.1")),
    ],
    [file("var/lib/dpkg/status", DPKG), file("usr/local/bin/runas", go_elf(GOSU_MODINFO), mode=0o755)],
    [
        directory(f"{SITE}/setuptools-75.0.0.dist-info"),
        file(f"{SITE}/setuptools-75.0.0.dist-info/METADATA", _meta("setuptools", "75.0.0")),
        directory(f"{SITE}/jinja2-3.1.2.dist-info"),
        file(f"{SITE}/jinja2-3.1.2.dist-info/METADATA", _meta("Jinja2", "3.1.2")),
        file(f"{SITE}/pip/_vendor/vendor.txt", "setuptools==70.3.0\n"),
    ],
]
HISTORY = [
    {"created_by": "/bin/sh -c #(nop) ADD file:base in / "},
    {
        "created_by": "/bin/sh -c apt-get update && apt-get install -y --no-install-recommends "
        "python3 libssl3 && rm -rf /var/lib/apt/lists/*"
    },
    {"created_by": "/bin/sh -c #(nop) COPY dir:venv in /opt/venv "},
    {"created_by": "/bin/sh -c #(nop)  USER 10001:10001", "empty_layer": True},
    {"created_by": '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "/opt/venv/bin/python"]}', "empty_layer": True},
]
IMAGE_SPEC = ImageSpec(
    user="10001:10001",
    env=("PATH=/opt/venv/bin:/usr/bin:/bin", "API_TOKEN=abc123"),
    healthcheck={"Test": ["CMD", "/opt/venv/bin/python", "-c", "print(1)"]},
    history=HISTORY,
)
IMAGE_TAR = legacy_save(LAYERS, IMAGE_SPEC, tag="golden/app:candidate")


def _diff_id(index: int) -> str:
    config = json.loads(_config_bytes())
    diff_id: str = config["rootfs"]["diff_ids"][index]
    return diff_id


def _config_bytes() -> bytes:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(IMAGE_TAR)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        return tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]


IMAGE_ID = sha256(_config_bytes())
BASE_ID = "sha256:" + "b" * 64


class FakeEngine:
    """Just enough of ``Engine`` for a run: the base exists, a build yields the synthetic image."""

    def __init__(self, catalog: Catalog) -> None:
        self.base = catalog.bases["bookworm"]
        self.mirror = self.base.mirror or ""
        self.tags: dict[str, str] = {}

    def image(self, ref: str) -> ImageInfo | None:
        if ref == self.base.ref:
            labels = base_labels(self.base, self.mirror, 88, "2026-01-01T00:00:00Z")
            return ImageInfo(BASE_ID, (ref,), labels, 75_000_000, 1, "", "2026-01-01T00:00:00Z")
        if ref == IMAGE_ID or self.tags.get(ref) == IMAGE_ID:
            labels = {"org.opencontainers.image.title": "app"}
            return ImageInfo(IMAGE_ID, (ref,), labels, 95_000_000, 3, "10001:10001", "2026-01-01T00:00:00Z")
        return None

    def build(
        self,
        *,
        context: Path,
        dockerfile: str,
        tag: str,
        labels: Mapping[str, str],
        on_line: Callable[[str], None] | None = None,
        **_: Any,
    ) -> BuildOutput:
        assert (context / dockerfile).is_file()
        self.tags[tag] = IMAGE_ID
        return BuildOutput(IMAGE_ID, ("Successfully built",))

    def tag(self, image: str, repository: str, tag: str) -> None:
        self.tags[f"{repository}:{tag}"] = image

    def remove_image(self, ref: str, **_: Any) -> None:
        self.tags.pop(ref, None)

    def save(self, ref: str, out: IO[bytes], **_: Any) -> None:
        assert self.image(ref) is not None, ref
        out.write(IMAGE_TAR)

    def close(self) -> None:
        pass


def scanner_findings() -> tuple[Finding, ...]:
    def vuln(rule: str, severity: Severity, package: str, installed: str, **extra: Any) -> Finding:
        return Finding(
            origin=Origin.SCANNER,
            rule_id=rule,
            severity=severity,
            message=f"{package} {installed}: {rule}",
            image="app",
            title=f"{package}: a problem named {rule}",
            package=package,
            installed_version=installed,
            primary_url=f"https://avd.aquasec.com/nvd/{rule.lower()}",
            description=f"A description of {rule}.",
            **extra,
        )

    return (
        vuln(
            "CVE-2024-0001",
            Severity.HIGH,
            "libssl3",
            "3.0.11-1~deb12u2",
            fixed_version="3.0.13-1~deb12u1",
            package_type="debian",
            layer=_diff_id(1),
            cvss_score=7.5,
            status="fixed",
            references=("https://security-tracker.debian.org/tracker/CVE-2024-0001",),
        ),
        vuln("CVE-2024-0002", Severity.CRITICAL, "libc6", "2.36-9+deb12u4", package_type="debian"),
        vuln(
            "CVE-2024-0003",
            Severity.MEDIUM,
            "jinja2",
            "3.1.2",
            fixed_version="3.1.3",
            package_type="python-pkg",
            image_path=f"{SITE}/jinja2-3.1.2.dist-info/METADATA",
            cvss_score=5.4,
        ),
        vuln(
            "CVE-2025-47273",
            Severity.HIGH,
            "setuptools",
            "70.3.0",
            fixed_version="78.1.1",
            package_type="python-pkg",
            image_path=f"{SITE}/pip/_vendor/vendor.txt",
        ),
        vuln(
            "CVE-2024-0005", Severity.LOW, "python3.11", "3.11.2-6", package_type="debian", layer=_diff_id(1)
        ),
    )


class FakeScanner(Scanner):
    def scan(self, target: ScanTarget, options: ScanOptions) -> ScanResult:
        assert target.tar_path.read_bytes() == IMAGE_TAR
        return ScanResult(
            findings=tuple(f for f in scanner_findings()),
            trivy_version="0.76.0",
            db_updated_at="2026-05-30T00:00:00Z",
            report_path=None,
            sbom_path=None,
            cached=False,
            packages=6,
        )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(GOLDEN / "repo", root)
    catalog = load_catalog(root / "hardening.toml")
    for spec in catalog.images:
        write_rendered(render(spec, root), root)
    monkeypatch.setenv("HARDENING_FACTS_CACHE", str(tmp_path / "facts-cache"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return root


def _compare(actual: Path, golden: Path, *, mask: tuple[str, ...] = ()) -> None:
    text = actual.read_text(encoding="utf-8")
    if mask:
        doc = json.loads(text)
        for key in mask:
            doc.pop(key, None)
        text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if UPDATE_GOLDEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"{golden} is missing; run with UPDATE_GOLDEN=1 once"
    assert text == golden.read_text(encoding="utf-8"), f"{actual} differs from {golden}"


def _history_line(path: Path) -> dict[str, Any]:
    (line,) = path.read_text(encoding="utf-8").splitlines()
    record: dict[str, Any] = json.loads(line)
    record.pop("date")
    return record


def test_run_outputs_match_the_goldens(repo: Path) -> None:
    catalog = load_catalog(repo / "hardening.toml")
    engine = FakeEngine(catalog)
    gate = load_gate(catalog.gate, catalog.root)
    run = new_run_dir(catalog.output_dir)
    options = ScanOptions(cache_dir=repo / "trivy-cache", timeout=60)
    outcome = run_pipeline(
        catalog,
        catalog.images,
        engine,  # type: ignore[arg-type]
        FakeScanner(),
        options,
        gate,
        run,
        history=True,
        today=TODAY,
    )
    assert not outcome.passed  # gosu, a setuid binary, a token, a fixable high CVE
    image_dir = run.path / "app"
    expected = GOLDEN / "run"
    _compare(image_dir / "results.sarif", expected / "results.sarif")
    _compare(image_dir / "findings.json", expected / "findings.json")
    _compare(image_dir / "gate.json", expected / "gate.json")
    _compare(image_dir / "check.json", expected / "check.json")
    _compare(image_dir / "scan.json", expected / "scan.json", mask=("scanned_at",))
    _compare(run.path / "summary.md", expected / "summary.md")
    history = _history_line(catalog.output_dir / "history" / "app.jsonl")
    if UPDATE_GOLDEN:
        (expected / "history.json").write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")
    assert history == json.loads((expected / "history.json").read_text())
    assert "golden/app:1.0" not in engine.tags  # a failed gate moves no release tag
    assert not (image_dir / "promotion.json").exists()


def test_report_outputs_match_the_goldens(repo: Path, tmp_path: Path) -> None:
    catalog = load_catalog(repo / "hardening.toml")
    scan_dir = tmp_path / "scan"
    scan_dir.mkdir()
    shutil.copy(GOLDEN / "run" / "scan.json", scan_dir / "scan.json")
    shutil.copy(GOLDEN / "run" / "check.json", scan_dir / "check.json")
    gate = load_gate(catalog.gate, catalog.root)
    (spec,) = catalog.select(["app"])
    out = tmp_path / "out"
    outcome = report_scan(
        catalog,
        spec,
        scan_dir,
        gate,
        sarif_path=out / "app.sarif",
        markdown_path=out / "summary.md",
        json_path=out / "app.json",
        history_dir=out / "history",
        today=TODAY,
    )
    assert not outcome.decision.passed
    expected = GOLDEN / "report"
    _compare(out / "app.sarif", expected / "app.sarif")
    _compare(out / "app.json", expected / "app.json")
    _compare(out / "summary.md", expected / "summary.md")
    history = _history_line(out / "history" / "app.jsonl")
    if UPDATE_GOLDEN:
        (expected / "history.json").write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")
    assert history == json.loads((expected / "history.json").read_text())
