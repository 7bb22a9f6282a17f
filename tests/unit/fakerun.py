"""A deterministic run without an engine or Trivy: a synthetic image, a fake engine, a fake scanner.

The golden comparison and the scanner-extension tests drive the real orchestration with these.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import IO, Any

import pytest

from hardening.base import base_labels
from hardening.catalog import Catalog, load_catalog
from hardening.engine.client import BuildOutput, ImageInfo
from hardening.findings import DbIdentity, Finding, Origin, Severity, ToolInfo, with_tool
from hardening.render import render, write_rendered
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


# A pulled DB, as `harden db pull` records it, 25 hours old when it was used.
DB = DbIdentity(
    updated_at="2026-05-30T00:00:00Z",
    next_update="2026-05-31T00:00:00Z",
    source="pulled",
    repository="ghcr.io/aquasecurity/trivy-db:2",
    manifest_digest="sha256:" + "d" * 64,
    age_seconds=25 * 3600,
)
TOOL = ToolInfo("Trivy", "0.76.0", "https://trivy.dev", DB)


class FakeScanner(Scanner):
    """Answers like Trivy did when the goldens were made."""

    @property
    def name(self) -> str:
        return "trivy"

    def prepare(self, options: ScanOptions) -> ToolInfo:
        return TOOL

    def scan(self, target: ScanTarget, options: ScanOptions) -> ScanResult:
        assert target.tar_path.read_bytes() == IMAGE_TAR
        return ScanResult(
            findings=with_tool(scanner_findings(), TOOL.name),
            tool=TOOL,
            report_path=None,
            sbom_path=None,
            cached=False,
            packages=6,
        )


def golden_repo_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The golden catalog copied into ``tmp_path``, rendered, with a private facts cache."""
    root = tmp_path / "repo"
    shutil.copytree(GOLDEN / "repo", root)
    catalog = load_catalog(root / "hardening.toml")
    for spec in catalog.images:
        write_rendered(render(spec, root), root)
    monkeypatch.setenv("HARDENING_FACTS_CACHE", str(tmp_path / "facts-cache"))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    seed_canonical(tmp_path / "repro-cache", monkeypatch)
    return root


def seed_canonical(cache_dir: Path, monkeypatch: pytest.MonkeyPatch, image_id: str = IMAGE_ID) -> None:
    """Remember a fake engine's image as already canonical, so a build takes it as it is.

    The copy is no git checkout, so its SOURCE_DATE_EPOCH is 0; the real rewrite is tested on
    its own (tests/unit/test_repro_*.py) and on the engine (tests/docker/test_reproducible.py).
    """
    monkeypatch.setenv("HARDENING_REPRO_CACHE", str(cache_dir))
    remember_canonical(image_id)


def remember_canonical(image_id: str) -> None:
    """Remember another fake image as canonical, in the cache ``seed_canonical`` set up."""
    from hardening.repro.image import Normalisation, remember

    remember(Path(os.environ["HARDENING_REPRO_CACHE"]), Normalisation(image_id, image_id, 0, (), (), ()))
