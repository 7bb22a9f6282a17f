"""Pending updates through `harden run` on the real engine, the real Trivy and this machine's mirror.

A bookworm minbase is made here with debootstrap **without** ``bookworm-security`` (labelled as a
base `harden run` accepts), and an image built on it installs, with apt, a package whose security
update the security pocket carries — chosen from the live indexes by the test, since what the
pocket carries changes every week. The expectation is never written down: apt itself, in a
container of the built image with the security pocket added, says which packages are
upgradable; `harden run` must report exactly those, the security pocket's at high and located
on the FROM line (the base's) or the apt-get line (the package the template installs), and its
gate must fail on them. When the pocket carries nothing newer for any candidate package, the
image must show nothing pending from the apt line (the case of none).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from debian.debian_support import Version

from hardening.aptsources import debian_mirror, read_sources, security_mirror
from hardening.archive.cache import ArchiveCache
from hardening.archive.fetch import Fetcher
from hardening.archive.release import DEFAULT_KEYRING
from hardening.archive.snapshot import ArchiveTarget, Pocket, open_snapshot
from hardening.base import BaseSpec, base_labels
from hardening.catalog import load_catalog
from hardening.cli import main
from hardening.db.build import build_db
from hardening.engine.client import Engine
from hardening.render import render, write_rendered
from hardening.run.store import latest_run
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.trivy, pytest.mark.mirror, pytest.mark.slow]

BASE = BaseSpec("hardening-rebuild-test/debian", "unpatched", "bookworm")
REPOSITORY = "hardening-rebuild-test/demo"  # this test's own: no other test's tags move
# Small libraries the security pocket has often carried updates for; the test takes the first
# whose security version is newer than the point release's, and that is not in minbase.
CANDIDATES = (
    "libexpat1",
    "libxml2",
    "libsqlite3-0",
    "libtiff6",
    "libssh2-1",
    "libcurl3-gnutls",
    "libxslt1.1",
)
TEMPLATE = """\
FROM {{ base_image }}
RUN apt-get update && apt-get install -y --no-install-recommends {{ package }} && rm -rf /var/lib/apt/lists/*
USER {{ uid }}:{{ uid }}
HEALTHCHECK CMD ["true"]
"""
GATE = """\
version: 1
fail_on: critical
policy_findings: false
max_pending_security_days: 0
"""
_APT_LINE = re.compile(
    r"^(?P<name>[^/\s]+)/(?P<archives>\S+) (?P<version>\S+) (?P<arch>\S+) "
    r"\[upgradable from: (?P<old>[^\]]+)\]$"
)


def _docker(*args: str, timeout: float = 900) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def _mirrors() -> tuple[str, str]:
    sources = read_sources()
    mirror, security = debian_mirror("bookworm", sources), security_mirror(sources)
    assert mirror and security, "this machine's apt configuration names no Debian mirror"
    return mirror, security


@pytest.fixture(scope="module")
def unpatched_base(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bookworm minbase from the machine's mirror, the security pocket neither applied nor listed."""
    mirror, _ = _mirrors()
    work = tmp_path_factory.mktemp("unpatched-base")
    rootfs = work / "rootfs"
    subprocess.run(
        ["debootstrap", "--variant=minbase", "--components=main", "bookworm", str(rootfs), mirror],
        capture_output=True,
        check=True,
        timeout=1200,
    )
    # apt in the image installs from the point release only: what it installs can be pending too.
    (rootfs / "etc/apt/sources.list").write_text(
        f"deb {mirror} bookworm main\ndeb {mirror} bookworm-updates main\n"
    )
    tar = work / "rootfs.tar"
    subprocess.run(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tar), "."], check=True, timeout=600
    )
    shutil.rmtree(rootfs, ignore_errors=True)
    labels = base_labels(BASE, mirror, 0, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    changes = [f"LABEL {k}={json.dumps(v)}" for k, v in sorted(labels.items())] + ['CMD ["/bin/bash"]']
    engine.import_rootfs(tar, BASE.repository, BASE.tag, changes)
    try:
        yield BASE.ref
    finally:
        engine.remove_image(BASE.ref)


def _security_candidate(base_packages: set[str]) -> str | None:
    """A package outside the base whose security pocket version is newer than the release's."""
    mirror, security = _mirrors()
    target = ArchiveTarget("bookworm", mirror, security, "options")
    snapshot = open_snapshot(
        target, Fetcher(timeout=120), ArchiveCache(None), [DEFAULT_KEYRING], packages=set(CANDIDATES)
    )
    for name in CANDIDATES:
        if name in base_packages:
            continue
        versions = snapshot.versions(name, "amd64")
        released = [Version(c.version) for c, pocket in versions if pocket is Pocket.RELEASE]
        secured = [Version(c.version) for c, pocket in versions if pocket is Pocket.SECURITY]
        if released and secured and max(secured) > max(released):
            return name
    return None


def _apt_upgradable(ref: str) -> dict[str, tuple[str, str, bool]]:
    """package → (installed, candidate, from the security pocket), as apt sees all three pockets."""
    _, security = _mirrors()
    script = (
        f"echo 'deb {security} bookworm-security main' >> /etc/apt/sources.list && "
        "apt-get update -qq >/dev/null && apt list --upgradable 2>/dev/null"
    )
    out = _docker("run", "--rm", "--user", "0", ref, "sh", "-c", script)
    found = {}
    for line in out.splitlines():
        match = _APT_LINE.match(line.strip())
        if match:
            archives = match["archives"].split(",")
            found[match["name"]] = (
                match["old"],
                match["version"],
                any(a.endswith("-security") for a in archives),
            )
    return found


@pytest.fixture
def repo(tmp_path: Path, engine: Engine, unpatched_base: str) -> Iterator[tuple[Path, str]]:
    minbase = {
        line.split()[0] for line in _docker("run", "--rm", unpatched_base, "dpkg-query", "-W").splitlines()
    }
    package = _security_candidate(minbase) or CANDIDATES[0]
    (tmp_path / "dockerfiles/demo").mkdir(parents=True)
    (tmp_path / "dockerfiles/demo/Dockerfile.j2").write_text(TEMPLATE)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies/gate.yaml").write_text(GATE)
    (tmp_path / "hardening.toml").write_text(
        textwrap.dedent(
            f"""\
            [base.unpatched]
            repository = "{BASE.repository}"
            tag = "{BASE.tag}"
            suite = "bookworm"

            [[image]]
            name = "demo"
            template = "dockerfiles/demo/Dockerfile.j2"
            repository = "{REPOSITORY}"
            tags = ["1"]

            [image.variables]
            package = "{package}"
            uid = 65534
            """
        )
    )
    catalog = load_catalog(tmp_path / "hardening.toml")
    for spec in catalog.images:
        write_rendered(render(spec, catalog.root), catalog.root)
    try:
        yield tmp_path / "hardening.toml", package
    finally:
        for tag in ("candidate", "1"):
            engine.remove_image(f"{REPOSITORY}:{tag}", noprune=True)


def test_run_reports_what_apt_would_upgrade_on_the_right_lines(
    repo: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog_path, package = repo
    monkeypatch.setenv("HARDENING_ARCHIVE_CACHE", str(tmp_path / "archive-cache"))
    cache = tmp_path / "trivy-cache"
    build_db([REPO_ROOT / "advisories"], cache)
    argv = ["--catalog", str(catalog_path), "run", "--cache-dir", str(cache), "--record-history"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    image_dir = latest_run(catalog_path.parent / "scans") / "demo"
    build = json.loads((image_dir / "build.json").read_text())
    apt = _apt_upgradable(build["image_id"])
    print(out)  # the figures for the record

    findings = json.loads((image_dir / "findings.json").read_text())["findings"]
    pending = {f["package"]: f for f in findings if f["rule_id"] == "HARDEN-REBUILD-PENDING"}
    assert {n: (f["installed_version"], f["fixed_version"]) for n, f in pending.items()} == {
        n: (old, new) for n, (old, new, _) in apt.items()
    }
    for name, (_, _, from_security) in apt.items():
        assert (pending[name]["severity"] == "high") == from_security, name
    assert not [f for f in findings if f["rule_id"] == "HARDEN-REBUILD-UNKNOWN"]

    lines = (catalog_path.parent / "dockerfiles/demo/Dockerfile").read_text().splitlines()
    from_line = next(i for i, line in enumerate(lines, 1) if line.startswith("FROM "))
    apt_line = next(i for i, line in enumerate(lines, 1) if "apt-get install" in line)
    minbase = set(_docker("run", "--rm", BASE.ref, "dpkg-query", "-W", "-f", "${Package}\\n").split())
    for name, finding in pending.items():
        expected = from_line if name in minbase else apt_line
        assert finding["location"]["line"] == expected, (name, finding["location"])

    security = [n for n, (_, _, sec) in apt.items() if sec]
    if security:
        assert exited.value.code == 1, err
        assert "security updates pending for more than 0 days" in out or "security update pending" in out
        sarif = json.loads((image_dir / "results.sarif").read_text())
        (archive,) = [r for r in sarif["runs"] if r["tool"]["driver"]["name"] == "debian-archive"]
        assert {r["properties"]["package"] for r in archive["results"]} == set(pending)
        seen = (catalog_path.parent / "scans/history/updates/demo.jsonl").read_text().splitlines()
        assert {json.loads(line)["source"] for line in seen} >= {
            pending[n]["properties"]["source"] for n in security
        }
    if package in apt:
        assert apt[package][2] and pending[package]["location"]["line"] == apt_line
    else:  # the pocket carries nothing newer for any candidate: nothing pending from the apt line
        assert not [n for n in pending if n not in minbase]
