"""Reproducible images, on the real engine: two builds with an empty build cache, one image id.

A throwaway git checkout of the catalog, templates and policies (committed at a fixed time, so
SOURCE_DATE_EPOCH is known) names every repository under a private prefix: nothing here touches
an image another test or a colleague's build uses, and everything created is removed at the end,
the engine's own (untagged) images of each build included. Every catalog image is built twice
with ``harden build --no-cache`` (every step runs again, as with an emptied build cache): the two
candidates must be the same image, and ``harden build-diff`` must say so. ``harden base --force``
twice gives the same base for every suite the catalog names.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hardening.catalog import load_catalog
from hardening.engine.client import Engine
from hardening.errors import HardeningError
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]

COMMIT_TIME = "2026-11-30T12:00:00+00:00"
EPOCH = 1796040000
LATER_TIME = "2026-12-01T06:00:00+00:00"
LATER_EPOCH = 1796104800
BUILD_TIMEOUT = 1800.0
CATALOG = load_catalog(REPO_ROOT / "hardening.toml")
IMAGES = tuple(spec.name for spec in CATALOG.images)
SUITES = tuple(sorted(CATALOG.bases))


@dataclass
class Checkout:
    root: Path
    prefix: str
    created: list[str] = field(default_factory=list)  # image ids and refs to remove at the end
    bases: dict[str, str] = field(default_factory=dict)  # suite → id of the base built first

    def harden(self, *args: str, timeout: float = BUILD_TIMEOUT) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HARDENING_", "GITHUB_"))}
        env["HARDENING_REPRO_CACHE"] = str(self.root.parent / "repro-cache")
        argv = [sys.executable, "-m", "hardening", "--catalog", str(self.root / "hardening.toml"), *args]
        return subprocess.run(argv, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)

    def git(self, *args: str, when: str = COMMIT_TIME) -> None:
        identity = ("-c", "user.name=hardening tests", "-c", "user.email=tests@example.invalid")
        env = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
        argv = ["git", *identity, "-c", "commit.gpgsign=false", *args]
        result = subprocess.run(argv, cwd=self.root, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"git {' '.join(args)} failed:\n{result.stderr}"

    def build(self, image: str, *, nocache: bool = True) -> dict[str, Any]:
        result = self.harden("build", *(["--no-cache"] if nocache else []), image)
        assert result.returncode == 0, _output(result)
        found = re.search(r"^build records: (.+)$", result.stdout, re.MULTILINE)
        assert found, _output(result)
        record: dict[str, Any] = json.loads((Path(found.group(1)) / image / "build.json").read_text())
        self.created += [record["raw_image_id"], record["image_id"], record["candidate_ref"]]
        return record


def _figures(record: dict[str, Any]) -> str:
    """One line of what a build took, printed for the README's table (``pytest -s``)."""
    normalisation = record["normalisation"]
    seconds = sum(normalisation["seconds"].values())
    return (
        f"{record['image']}: {record['image_id']} (engine {record['raw_image_id'][:19]}) "
        f"build {record['duration_seconds']:.1f} s, normalisation {seconds:.1f} s, "
        f"removed {normalisation['removed']}, {len(record['inputs']['debian_packages'])} Debian packages"
    )


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-8000:]}"
    )


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> Iterator[Checkout]:
    root = tmp_path_factory.mktemp("repro") / "repo"
    root.mkdir()
    shutil.copy(REPO_ROOT / "hardening.toml", root / "hardening.toml")
    shutil.copytree(REPO_ROOT / "policies", root / "policies")
    shutil.copytree(
        REPO_ROOT / "dockerfiles",
        root / "dockerfiles",
        ignore=shutil.ignore_patterns("wheels", "su-exec", "*.o"),
    )
    # su-exec's source, without a binary a local build may have left beside it.
    shutil.copytree(
        REPO_ROOT / "dockerfiles/postgres-secure/su-exec",
        root / "dockerfiles/postgres-secure/su-exec",
        ignore=shutil.ignore_patterns("su-exec"),
    )
    prefix = f"hardening-repro-{uuid.uuid4().hex[:8]}"
    catalog = root / "hardening.toml"
    catalog.write_text(catalog.read_text().replace('repository = "hardening/', f'repository = "{prefix}/'))
    checkout = Checkout(root, prefix)
    checkout.git("init", "--quiet")
    checkout.git("add", "-A")
    checkout.git("commit", "--quiet", "--message", "catalog")
    # The bases under the private names, built by this tree (so they carry the archive state);
    # the base test builds each once more and compares.
    for name, spec in CATALOG.bases.items():
        checkout.created.append(f"{prefix}/{spec.repository.split('/', 1)[1]}:{spec.tag}")
        made = checkout.harden("base", "--force", name)
        assert made.returncode == 0, _output(made)
        info = engine.image(checkout.created[-1])
        assert info is not None
        checkout.bases[name] = info.id
        checkout.created.append(info.id)
    rendered = checkout.harden("render", timeout=300)
    assert rendered.returncode == 0, _output(rendered)
    checkout.git("add", "-A")
    checkout.git("commit", "--quiet", "--message", "renderings")
    try:
        yield checkout
    finally:
        for ref in dict.fromkeys(reversed(checkout.created)):
            # An id still tagged elsewhere (a base equal to the shared one) is refused: kept.
            with contextlib.suppress(HardeningError):
                engine.remove_image(ref, missing_ok=True)


@pytest.mark.parametrize("image", IMAGES)
def test_two_builds_with_an_empty_cache_give_one_image(checkout: Checkout, image: str) -> None:
    first = checkout.build(image)
    second = checkout.build(image)
    print(f"\n{_figures(first)}\n{_figures(second)}")

    assert first["raw_image_id"] != second["raw_image_id"]  # the engine's own images differ
    assert first["image_id"] == second["image_id"], (first["normalisation"], second["normalisation"])
    assert first["normalisation"]["diff_ids"] == second["normalisation"]["diff_ids"]
    assert first["source_date_epoch"] == EPOCH
    inputs = first["inputs"]
    assert inputs["debian_packages"] and inputs["archive"] and inputs["base"]["archive"]
    assert inputs["debian_packages"] == second["inputs"]["debian_packages"]
    # The image's config carries the epoch, not the clock.
    info = checkout.harden("build-diff", *(str(p) for p in _records(checkout, image)))
    assert info.returncode == 0, _output(info)
    assert f"same image {first['image_id']}" in info.stdout


def _records(checkout: Checkout, image: str) -> list[Path]:
    runs = sorted((checkout.root / "scans" / "runs").glob(f"*/{image}/build.json"))
    return runs[-2:]


@pytest.mark.parametrize("suite", SUITES)
def test_the_base_built_again_is_the_same_image(checkout: Checkout, engine: Engine, suite: str) -> None:
    spec = CATALOG.bases[suite]
    ref = f"{checkout.prefix}/{spec.repository.split('/', 1)[1]}:{spec.tag}"
    made = checkout.harden("base", "--force", suite)
    assert made.returncode == 0, _output(made)
    info = engine.image(ref)
    assert info is not None
    checkout.created.append(info.id)
    print(f"\nbase {suite}: {info.id} both times")
    assert info.id == checkout.bases[suite]
    assert info.created.startswith("2026-11-30T12:00:00")
    states = json.loads(info.labels["org.hardening.base.archive"])
    assert {state["suite"] for state in states} >= {suite, f"{suite}-security"}


def test_a_build_from_the_cache_of_an_older_commit_is_the_fresh_build(checkout: Checkout) -> None:
    """Run last: it moves the checkout to a later commit (another SOURCE_DATE_EPOCH)."""
    image = IMAGES[0]
    checkout.git("commit", "--quiet", "--allow-empty", "--message", "later", when=LATER_TIME)
    # Every step but the labels comes from the engine's cache of the builds at the earlier
    # commit, its files stamped with their times; the fresh build's are stamped now.
    cached = checkout.build(image, nocache=False)
    fresh = checkout.build(image)
    print(f"\ncached: {_figures(cached)}\nfresh: {_figures(fresh)}")
    assert cached["source_date_epoch"] == fresh["source_date_epoch"] == LATER_EPOCH
    assert cached["image_id"] == fresh["image_id"], (cached["normalisation"], fresh["normalisation"])
