"""`harden outdated` and `harden advisories` against the real Debian mirror of this machine.

The expectation is never written down: apt itself, inside a container of the same image and
against the same mirror, says which packages are upgradable and from which archive
(``apt list --upgradable``); the reader must agree package by package. Three images:

* a bookworm minbase made here with debootstrap and *without* ``bookworm-security`` applied
  (what the security pocket has that the point release has not must show as pending);
* the same image after ``apt-get upgrade`` (nothing may be pending: the case of none);
* the project's own base image (whatever apt says).

Marked ``docker`` as well as ``mirror``: they need the engine, and unit runs stay off the network.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from debian.debian_support import Version

from hardening.aptsources import debian_mirror, read_sources, security_mirror
from hardening.archive.cache import ArchiveCache
from hardening.archive.fetch import Fetcher
from hardening.archive.outdated import ArchiveAccess
from hardening.archive.release import DEFAULT_KEYRING
from hardening.archive.snapshot import ArchiveTarget, Pocket, open_snapshot
from hardening.engine.client import Engine
from hardening.scan.trivy import OFFLINE_FLAGS
from tests.archive.test_local_repo import harden
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.mirror, pytest.mark.slow]

UNPATCHED = "hardening-archive-test/bookworm-unpatched:minbase"
UPGRADED = "hardening-archive-test/bookworm-upgraded:minbase"
_APT_LINE = re.compile(
    r"^(?P<name>[^/\s]+)/(?P<archives>\S+) (?P<version>\S+) (?P<arch>\S+) "
    r"\[upgradable from: (?P<old>[^\]]+)\]$"
)


def _docker(*args: str, timeout: float = 900) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def apt_upgradable(ref: str) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """package → (installed, candidate, archives) as apt inside the image sees the mirror now."""
    out = _docker(
        "run", "--rm", ref, "sh", "-c", "apt-get update -qq >/dev/null && apt list --upgradable 2>/dev/null"
    )
    found = {}
    for line in out.splitlines():
        match = _APT_LINE.match(line.strip())
        if match:
            found[match["name"]] = (match["old"], match["version"], tuple(match["archives"].split(",")))
    assert not [line for line in out.splitlines()[1:] if line.strip() and not _APT_LINE.match(line.strip())]
    return found


@pytest.fixture(scope="module")
def unpatched(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bookworm minbase from the machine's mirror, the security pocket not applied."""
    sources = read_sources()
    mirror, security = debian_mirror("bookworm", sources), security_mirror(sources)
    assert mirror and security, "this machine's apt configuration names no Debian mirror"
    work = tmp_path_factory.mktemp("unpatched")
    rootfs = work / "rootfs"
    subprocess.run(
        ["debootstrap", "--variant=minbase", "--components=main", "bookworm", str(rootfs), mirror],
        capture_output=True,
        check=True,
        timeout=1200,
    )
    # apt in the container (the oracle) must see all three pockets; the reader reads the labels.
    (rootfs / "etc/apt/sources.list").write_text(
        f"deb {mirror} bookworm main\ndeb {mirror} bookworm-updates main\n"
        f"deb {security} bookworm-security main\n"
    )
    tar = work / "rootfs.tar"
    subprocess.run(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tar), "."], check=True, timeout=600
    )
    shutil.rmtree(rootfs, ignore_errors=True)
    labels = {"org.hardening.base.suite": "bookworm", "org.hardening.base.mirror": mirror}
    changes = [f"LABEL {k}={json.dumps(v)}" for k, v in labels.items()] + ['CMD ["/bin/bash"]']
    repository, tag = UNPATCHED.rsplit(":", 1)
    engine.import_rootfs(tar, repository, tag, changes)
    try:
        yield UNPATCHED
    finally:
        engine.remove_image(UNPATCHED)


@pytest.fixture(scope="module")
def upgraded(unpatched: str, engine: Engine) -> Iterator[str]:
    name = "hardening-archive-test-upgrade"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    _docker("run", "--name", name, unpatched, "sh", "-c", "apt-get update -qq && apt-get -y -qq upgrade")
    try:
        _docker("commit", name, UPGRADED)
    finally:
        _docker("rm", "-f", name)
    try:
        yield UPGRADED
    finally:
        engine.remove_image(UPGRADED)


def outdated(ref: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    code, out, err = harden(
        [
            "outdated",
            "--image",
            ref,
            "--out",
            str(tmp_path / "out"),
            "--cache-dir",
            str(tmp_path.parent / "archive-cache"),
        ],
        capsys,
    )
    assert code == 0, err
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", ref).strip("._")
    record = json.loads((tmp_path / "out" / folder / "outdated.json").read_text())
    return record, out


def agree_with_apt(record: dict[str, Any], apt: dict[str, tuple[str, str, tuple[str, ...]]]) -> None:
    pending = {p["package"]: p for p in record["pending"]}
    assert {n: (p["installed_version"], p["candidate_version"]) for n, p in pending.items()} == {
        n: (old, new) for n, (old, new, _) in apt.items()
    }
    for name, (_, _, archives) in apt.items():
        from_security = any(a.endswith("-security") for a in archives)
        assert (pending[name]["pocket"] == "security") == from_security, (name, archives)
        if from_security:
            assert pending[name]["security"] is True


def test_unpatched_base_shows_the_security_pocket(
    unpatched: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apt = apt_upgradable(unpatched)
    record, out = outdated(unpatched, tmp_path, capsys)
    agree_with_apt(record, apt)
    assert record["origin"] == "labels" and record["compared"] > 80
    assert [p["suite"] for p in record["pockets"]] == ["bookworm", "bookworm-updates", "bookworm-security"]
    # No fault, and the changelogs name CVE ids. (Not every security upload does: xz-utils
    # 5.4.1-1+deb12u2 names its fix by a GHSA id only.)
    assert not [g for g in record["gaps"] if g["fault"]]
    security = [p for p in record["pending"] if p["security"]]
    if security:
        assert any(p["cves"] for p in security)
        assert all(re.fullmatch(r"CVE-\d{4}-\d{4,}", c) for p in security for c in p["cves"])
    print(out)  # the figures for the record: counts, pockets, index sizes


def test_upgraded_base_has_nothing_pending(
    upgraded: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apt_upgradable(upgraded) == {}
    record, out = outdated(upgraded, tmp_path, capsys)
    assert record["pending"] == []
    assert record["summary"]["pending"] == 0 and record["compared"] > 80
    assert "0 pending (0 security, 0 CVEs)" in out


def test_catalog_image_is_read_by_its_build_record(
    unpatched: str,
    engine: Engine,
    make_repo: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    catalog = make_repo()
    info = engine.image(unpatched)
    assert info is not None
    build = tmp_path / "scans" / "runs" / "20260101T000000000000Z-0000" / "demo" / "build.json"
    build.parent.mkdir(parents=True)
    build.write_text(json.dumps({"candidate_ref": unpatched, "image_id": info.id}))
    cache = str(tmp_path.parent / "archive-cache")
    code, out, err = harden(["--catalog", str(catalog), "outdated", "demo", "--cache-dir", cache], capsys)
    assert code == 0, err
    assert out.startswith("demo: bookworm (labels), ")
    runs = tmp_path / "scans" / "runs"
    records = [p for p in runs.glob("*/demo/outdated.json") if p.parts[-3] != "latest"]
    assert len(records) == 1 and (runs / "latest" / "demo" / "outdated.json").is_file()
    record = json.loads(records[0].read_text())
    assert record["image"] == unpatched and record["image_id"] == info.id
    code, _, err = harden(["--catalog", str(catalog), "outdated", "nothere"], capsys)
    assert code == 2 and "no image named nothere" in err


def test_project_base_agrees_with_apt(
    base_image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record, _ = outdated(base_image, tmp_path, capsys)
    agree_with_apt(record, apt_upgradable(base_image))


def test_advisories_agree_with_the_committed_derived_records(
    unpatched: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh derivation from this image agrees with advisories/debian/ (derived from the
    catalog's images, which share these source packages) on every CVE and package both name:
    a CVE's first fixing upload does not change when later uploads come."""
    out = tmp_path / "osv"
    code, _, err = harden(
        [
            "advisories",
            "--image",
            unpatched,
            "--output",
            str(out),
            "--cache-dir",
            str(tmp_path.parent / "archive-cache"),
        ],
        capsys,
    )
    assert code == 0, err
    derived = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert len(derived) > 100

    def fixes(record: dict[str, Any]) -> dict[tuple[str, str], str]:
        return {
            (a["package"]["ecosystem"], a["package"]["name"]): e["fixed"]
            for a in record["affected"]
            for r in a["ranges"]
            for e in r["events"]
            if "fixed" in e
        }

    compared = 0
    for path in sorted((REPO_ROOT / "advisories" / "debian").glob("DEBIAN-CVE-*.json")):
        fresh = derived.get(path.name)
        if fresh is None:
            continue
        committed, ours = fixes(json.loads(path.read_text())), fixes(fresh)
        for key in committed.keys() & ours.keys():
            assert committed[key] == ours[key], (path.name, key)
            compared += 1
    # glibc, perl, openssl and their neighbours: the records that replaced the hand-written ones
    assert compared >= 100
    code, _, err = harden(["db", "build", str(out), "--cache-dir", str(tmp_path / "trivy")], capsys)
    assert code == 0, err


def test_trixie_pockets_verify_with_the_host_keyring(tmp_path: Path) -> None:
    sources = read_sources()
    mirror, security = debian_mirror("trixie", sources), security_mirror(sources)
    assert mirror and security
    target = ArchiveTarget("trixie", mirror, security, "test")
    access = ArchiveAccess(Fetcher(), ArchiveCache(tmp_path), (DEFAULT_KEYRING,))
    snapshot = open_snapshot(
        target, access.fetcher, access.cache, access.keyrings, packages={"libc6", "base-files"}
    )
    assert snapshot.release.major == "13"
    assert [v.pocket for v in snapshot.pockets] == list(Pocket)
    for view in snapshot.pockets:
        assert view.release.signers, view.release.suite
        assert view.release.date <= datetime.now(UTC)
    assert snapshot.versions("base-files", "amd64")[0][0].version.startswith("13")


@pytest.mark.trivy
def test_trivy_with_the_derived_records_agrees_with_outdated(
    unpatched: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trivy, given only the changelog-derived records, flags what `outdated` says is fixed upstream.

    Trivy reports a CVE when the installed version is below the first fix; `outdated` names the CVEs
    of the entries after the installed version. So Trivy's set is within ours, and whatever ours
    has beyond it is a CVE named again after an earlier fix (a regression fix, say).
    """
    cache = str(tmp_path.parent / "archive-cache")
    osv = tmp_path / "osv"
    code, _, err = harden(
        ["advisories", "--image", unpatched, "--output", str(osv), "--cache-dir", cache], capsys
    )
    assert code == 0, err
    code, _, err = harden(["db", "build", str(osv), "--cache-dir", str(tmp_path / "trivy")], capsys)
    assert code == 0, err
    record, _ = outdated(unpatched, tmp_path, capsys)
    ours = {(p["package"], c) for p in record["pending"] for c in p["cves"]}

    tar = tmp_path / "image.tar"
    with tar.open("wb") as handle:
        engine.save(unpatched, handle)
    trivy = Path(sys.executable).parent / "trivy"
    result = subprocess.run(
        [
            *(str(trivy), "image", "--input", str(tar), "--cache-dir", str(tmp_path / "trivy")),
            *OFFLINE_FLAGS,
            *("--scanners", "vuln", "--format", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    found = {
        (v["PkgName"], v["VulnerabilityID"]): v.get("FixedVersion", "")
        for r in report.get("Results", [])
        for v in r.get("Vulnerabilities") or []
    }
    assert set(found) <= ours
    fixed = {
        (a["package"]["name"], json.loads(p.read_text())["upstream"][0]): a["ranges"][0]["events"][1]["fixed"]
        for p in osv.glob("*.json")
        for a in json.loads(p.read_text())["affected"]
    }
    pending = {p["package"]: p for p in record["pending"]}
    for package, cve in ours - set(found):
        source = pending[package]
        first = fixed[(source["source"], cve)]
        assert Version(first) <= Version(source["installed_source_version"]), (package, cve, first)
    for (package, cve), version in found.items():
        assert version == fixed[(pending[package]["source"], cve)]
    if any(p["cves"] for p in record["pending"]):
        assert found, "Trivy found none of the CVEs the pending updates fix"
    print(f"trivy: {len(found)} (package, CVE) pairs; outdated: {len(ours)}")
