"""The nightly rebuild, step by step, on the real engine, registry, Trivy and this machine's mirror.

A "released" image lacking a security update is pushed to a loopback registry: the project's base
with one package put back to the point release's version (chosen from the live indexes: a
package of the base whose security pocket version is newer). Then, as
.github/workflows/rebuild.yml does:

1. `harden outdated --released --registry` pulls the release, names the image stale and records
   the update's first sighting in the update history;
2. `harden run --record-history` rebuilds it on the fresh base and gates it;
3. `harden release --record-history` pushes it and records that this release ships the update;
4. `harden trend` reports the patch latency from those two records.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from debian.debian_support import Version

from hardening.catalog import load_catalog
from hardening.cli import main
from hardening.db.build import build_db
from hardening.engine.client import Engine
from hardening.pending.updates import Released, Seen, load_updates
from hardening.render import render, write_rendered
from tests.archive.stale import behind, docker
from tests.conftest import REPO_ROOT, ReleaseKey
from tests.registry.server import RegistryServer

pytestmark = [
    pytest.mark.registry,
    pytest.mark.docker,
    pytest.mark.trivy,
    pytest.mark.mirror,
    pytest.mark.slow,
]

REPOSITORY = "hardening-rebuild-test/nightly"  # this test's own
TEMPLATE = """\
FROM {{ base_image }}
USER {{ uid }}:{{ uid }}
HEALTHCHECK CMD ["true"]
"""
GATE = "version: 1\nfail_on: critical\npolicy_findings: false\nmax_pending_security_days: 2\n"


@pytest.fixture
def repo(tmp_path: Path, base_image: str, engine: Engine) -> Iterator[Path]:
    root = tmp_path / "repo"
    (root / "dockerfiles/demo").mkdir(parents=True)
    (root / "dockerfiles/demo/Dockerfile.j2").write_text(TEMPLATE)
    (root / "policies").mkdir()
    (root / "policies/gate.yaml").write_text(GATE)
    (root / "hardening.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            output_dir = "scans"
            source = "https://example.invalid/hardening-rebuild-test"

            [base.bookworm]
            repository = "hardening/debian"
            tag = "bookworm"
            suite = "bookworm"

            [[image]]
            name = "demo"
            template = "dockerfiles/demo/Dockerfile.j2"
            repository = "{REPOSITORY}"
            tags = ["1"]

            [image.variables]
            uid = 65534
            """
        )
    )
    catalog = load_catalog(root / "hardening.toml")
    for spec in catalog.images:
        write_rendered(render(spec, root), root)
    identity = [
        "-c",
        "user.name=tests",
        "-c",
        "user.email=tests@example.invalid",
        "-c",
        "commit.gpgsign=false",
    ]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "catalog"]):
        subprocess.run(["git", *identity, *argv], cwd=root, check=True, capture_output=True, timeout=60)
    try:
        yield root
    finally:
        for ref in (f"{REPOSITORY}:candidate", f"{REPOSITORY}:1"):
            engine.remove_image(ref, noprune=True)


def _harden(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_the_nightly_rebuild_releases_a_stale_image_and_measures_its_latency(
    repo: Path,
    base_image: str,
    registry: RegistryServer,
    release_key: ReleaseKey,
    engine: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(repo)
    monkeypatch.setenv("HARDENING_ARCHIVE_CACHE", str(tmp_path / "archive-cache"))
    monkeypatch.setenv("HARDENING_KEY_PASSPHRASE", release_key.passphrase)
    package, source, old = behind(base_image)
    # What was shipped: the base with that package at the point release's version.
    context = tmp_path / "released"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN apt-get update -qq && apt-get install -y -qq --allow-downgrades "
        f"{package}={old} && rm -rf /var/lib/apt/lists/*\nUSER 65534:65534\n"
    )
    shipped = f"{registry.address}/{REPOSITORY}:1"
    docker("build", "-q", "-t", shipped, str(context))
    docker("push", "-q", shipped)
    docker("rmi", shipped)  # the nightly job starts without it: it must pull

    stale = tmp_path / "stale"
    code, out, err = _harden(
        ["outdated", "demo", "--released", "--registry", registry.address, "--history-dir", "scans/history",
         "--stale-list", str(stale), "--changelogs", "security", "--out", str(tmp_path / "outdated")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert stale.read_text() == "demo\n"
    assert f"{package} {old} → " in out
    # Anything else the archive published since the base was built is recorded too; this test
    # follows the update it put back.
    (seen,) = [
        e for e in load_updates(repo / "scans/history")["demo"] if isinstance(e, Seen) and e.source == source
    ]
    assert (seen.security, seen.packages) == (True, (package,))

    cache = tmp_path / "trivy-cache"
    build_db([REPO_ROOT / "advisories"], cache)
    code, out, err = _harden(["run", "demo", "--record-history", "--cache-dir", str(cache)], capsys)
    assert code == 0, out + err
    printed = [line.strip() for line in (out + err).splitlines()]
    assert [line for line in printed if line.startswith("pending updates (bookworm, debian-archive")], out
    assert not [line for line in printed if f"{package} {old} →" in line], out + err

    code, out, err = _harden(
        ["release", "demo", "--registry", registry.address, *release_key.args, "--record-history"], capsys
    )
    assert code == 0, out + err
    assert f"demo: ships {source} {seen.version} (bookworm-security)" in out
    events = load_updates(repo / "scans/history")["demo"]
    (released,) = [e for e in events if isinstance(e, Released) and e.key == seen.key]
    assert released.key == seen.key and released.installed is not None
    assert Version(released.installed) >= Version(seen.version)
    assert released.refs == (f"{registry.address}/{REPOSITORY}:1",)

    code, out, err = _harden(
        ["trend", "--history", "scans/history", "--out", str(tmp_path / "trend")], capsys
    )
    assert code == 0, err
    hours = (released.released - seen.first_seen).total_seconds() / 3600
    print(out, f"latency {hours:.1f} h")  # the figure for the record
    assert "patch latency: 1 security update released" in out
    table = (tmp_path / "trend" / "trend-demo.md").read_text()
    assert f"| `{source}` | `{seen.version}` |" in table
    history = [json.loads(line) for line in (repo / "scans/history/demo.jsonl").read_text().splitlines()]
    assert [h["gate"] for h in history] == ["pass"]


def test_an_image_never_released_needs_its_first_release(
    repo: Path,
    registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(repo)
    stale = tmp_path / "stale"
    code, out, err = _harden(
        ["outdated", "demo", "--released", "--registry", registry.address, "--stale-list", str(stale),
         "--out", str(tmp_path / "outdated")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert f"demo: {registry.address}/{REPOSITORY}:1 does not exist: no release yet" in out
    assert stale.read_text() == "demo\n"
    # --registry alone is a usage error: it names where the releases are.
    code, _, err = _harden(["outdated", "demo", "--registry", registry.address], capsys)
    assert code == 2 and "--registry goes with --released" in err
