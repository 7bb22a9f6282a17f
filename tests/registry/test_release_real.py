"""`harden run` then `harden release` into a real registry: only what passed the gate is pushed.

Every test builds tiny images FROM the project's base in a throwaway git repository, with its own
catalog, policies, gate and Trivy DB, under repository names no other test uses; the CLI runs as
a subprocess, exactly as CI calls it.
"""

from __future__ import annotations

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

from hardening.db.build import build_db
from hardening.engine.client import Engine
from tests.conftest import REPO_ROOT, ReleaseKey
from tests.registry.server import RegistryServer, free_port

pytestmark = [pytest.mark.registry, pytest.mark.docker, pytest.mark.trivy]

RUN_TIMEOUT = 900.0
RELEASE_TIMEOUT = 300.0
TAGS = ("1", "1-bookworm")
IMAGES = ("good", "bad", "flip")

PASSING_TEMPLATE = """\
FROM {{ base_image }}
RUN echo {{ greeting }} > /srv/greeting
USER {{ uid }}:{{ uid }}
HEALTHCHECK --interval=30s --timeout=3s CMD ["test", "-f", "/srv/greeting"]
CMD ["sleep", "infinity"]
"""
# The non_root check (severity high, the policy's fail level) fails the gate.
FAILING_TEMPLATE = PASSING_TEMPLATE.replace("USER {{ uid }}:{{ uid }}", "USER root")

GATE = """\
version: 1
fail_on: high
only_fixable: true
suppressions:
  - policies/suppressions.yaml
"""
SUPPRESSIONS = "version: 1\nsuppressions: []\n"


def _catalog(token: str) -> str:
    head = """\
[project]
output_dir = "out"
source = "https://example.invalid/hardening-release-test"
default_base = "bookworm"

[base.bookworm]
repository = "hardening/debian"
tag = "bookworm"
suite = "bookworm"
"""
    tables = [
        f"""
[[image]]
name = "{name}"
template = "dockerfiles/{name}/Dockerfile.j2"
repository = "hardening-test/{name}-{token}"
tags = [{", ".join(f'"{tag}"' for tag in TAGS)}]
version = "1.0.0"
policies = ["policies/default.yaml"]

[image.variables]
greeting = "hello-{name}"
uid = 10001
"""
        for name in IMAGES
    ]
    return head + "".join(tables)


@dataclass
class ThrowawayRepo:
    """A git repository with a catalog of three images: good, bad (never passes) and flip."""

    root: Path
    cache_dir: Path
    token: str
    registries: list[str] = field(default_factory=list)
    key: ReleaseKey | None = None
    images: tuple[str, ...] = IMAGES

    @property
    def catalog(self) -> Path:
        return self.root / "hardening.toml"

    def repository(self, image: str) -> str:
        return f"hardening-test/{image}-{self.token}"

    def git(self, *args: str) -> None:
        identity = ("-c", "user.name=hardening tests", "-c", "user.email=tests@example.invalid")
        argv = ["git", *identity, "-c", "commit.gpgsign=false", *args]
        result = subprocess.run(argv, cwd=self.root, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"git {' '.join(args)} failed:\n{result.stderr}"

    def harden(
        self, *args: str, timeout: float = RUN_TIMEOUT, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARDENING_", "GITHUB_"))}
        env = {**clean, **(self.key.env if self.key else {}), **(env or {})}
        argv = [sys.executable, "-m", "hardening", "--catalog", str(self.catalog), *args]
        return subprocess.run(argv, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)

    def run(self, *images: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        """`harden run IMAGES`; returns the process and the run directory it reported."""
        result = self.harden("run", "--cache-dir", str(self.cache_dir), *images)
        found = re.search(r"^reports: (.+)$", result.stdout, re.MULTILINE)
        assert found, f"harden run reported no run directory (exit {result.returncode}):\n{_output(result)}"
        return result, Path(found.group(1))

    def release(self, registry: str, *images: str) -> subprocess.CompletedProcess[str]:
        """`harden release` with the session's release key (every release signs)."""
        self.registries.append(registry)
        key = self.key.args if self.key else []
        return self.harden("release", "--registry", registry, *key, *images, timeout=RELEASE_TIMEOUT)

    def set_template(self, image: str, text: str) -> None:
        """Write the template, render it and commit both, as a maintainer would."""
        path = self.root / "dockerfiles" / image / "Dockerfile.j2"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        rendered = self.harden("render", image, timeout=120)
        assert rendered.returncode == 0, _output(rendered)
        self.git("add", "-A")
        self.git("commit", "--quiet", "--message", f"{image}: template")

    def all_refs(self) -> list[str]:
        """Every local ref the tests may have created, for clean-up."""
        refs = []
        for image in self.images:
            repository = self.repository(image)
            refs.append(f"{repository}:candidate")
            for tag in TAGS:
                refs.append(f"{repository}:{tag}")
                refs.extend(f"{registry}/{repository}:{tag}" for registry in self.registries)
        return refs


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _tag_id(engine: Engine, ref: str) -> str | None:
    info = engine.image(ref)
    return None if info is None else info.id


@pytest.fixture(scope="module")
def trivy_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trivy's DB built from the project's advisories; the scan cache lands beside it."""
    cache_dir = tmp_path_factory.mktemp("trivy-cache")
    build_db([REPO_ROOT / "advisories"], cache_dir)
    return cache_dir


@pytest.fixture
def repo(
    tmp_path: Path, engine: Engine, base_image: str, trivy_db: Path, release_key: ReleaseKey
) -> Iterator[ThrowawayRepo]:
    root = tmp_path / "repo"
    (root / "policies").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "policies" / "default.yaml", root / "policies" / "default.yaml")
    (root / "policies" / "gate.yaml").write_text(GATE)
    (root / "policies" / "suppressions.yaml").write_text(SUPPRESSIONS)
    token = uuid.uuid4().hex[:10]
    (root / "hardening.toml").write_text(_catalog(token))
    for image in IMAGES:
        template = root / "dockerfiles" / image / "Dockerfile.j2"
        template.parent.mkdir(parents=True)
        template.write_text(FAILING_TEMPLATE if image == "bad" else PASSING_TEMPLATE)
    throwaway = ThrowawayRepo(root, trivy_db, token, key=release_key)
    throwaway.git("init", "--quiet")
    try:
        rendered = throwaway.harden("render", timeout=120)
        assert rendered.returncode == 0, _output(rendered)
        throwaway.git("add", "-A")
        throwaway.git("commit", "--quiet", "--message", "catalog, templates, renderings, policies")
        yield throwaway
    finally:
        for ref in throwaway.all_refs():
            engine.remove_image(ref, missing_ok=True)


def _evidence_tags(digest: str) -> list[str]:
    hex_digest = digest.removeprefix("sha256:")
    return [f"sha256-{hex_digest}.att", f"sha256-{hex_digest}.sig"]


def _assert_promoted(engine: Engine, repo: ThrowawayRepo, image: str, run_dir: Path) -> str:
    """The run promoted ``image``: every release tag points at the candidate it built."""
    build = _json(run_dir / image / "build.json")
    image_id = build["image_id"]
    assert _tag_id(engine, f"{repo.repository(image)}:candidate") == image_id
    promotion = _json(run_dir / image / "promotion.json")
    assert promotion["image_id"] == image_id
    assert sorted(promotion["refs"]) == sorted(f"{repo.repository(image)}:{tag}" for tag in TAGS)
    for tag in TAGS:
        assert _tag_id(engine, f"{repo.repository(image)}:{tag}") == image_id, f"{image}:{tag} not moved"
    assert _json(run_dir / image / "gate.json")["passed"] is True
    return str(image_id)


def test_a_passing_image_is_pushed_under_every_release_tag(
    repo: ThrowawayRepo, engine: Engine, registry: RegistryServer
) -> None:
    ran, run_dir = repo.run("good")
    assert ran.returncode == 0, _output(ran)
    assert "good: PASS" in ran.stdout
    image_id = _assert_promoted(engine, repo, "good", run_dir)
    assert registry.client.catalog() == []

    released = repo.release(registry.address, "good")

    assert released.returncode == 0, _output(released)
    repository = repo.repository("good")
    assert registry.client.catalog() == [repository]
    record = _json(run_dir / "good" / "release.json")
    (digest,) = {item["digest"] for item in record["pushed"]}  # every tag names the one manifest
    # The release tags, and the digest's signature and attestations (test_evidence_real.py).
    assert registry.client.tags(repository) == sorted([*TAGS, *_evidence_tags(digest)])
    assert record["registry"] == registry.address
    assert record["image_id"] == image_id
    recorded = {item["ref"]: item["digest"] for item in record["pushed"]}
    assert set(recorded) == {f"{registry.address}/{repository}:{tag}" for tag in TAGS}
    for tag in TAGS:
        digest = registry.client.manifest_digest(repository, tag)
        assert digest is not None and digest.startswith("sha256:")
        assert recorded[f"{registry.address}/{repository}:{tag}"] == digest
        assert f"pushed {registry.address}/{repository}:{tag}@{digest}" in released.stdout


def test_a_failing_image_gets_no_release_tags_and_nothing_of_it_is_pushed(
    repo: ThrowawayRepo, engine: Engine, registry: RegistryServer
) -> None:
    ran, run_dir = repo.run("good", "bad")
    assert ran.returncode == 1, _output(ran)
    assert "good: PASS" in ran.stdout
    assert "bad: FAIL" in ran.stdout and "(release tags untouched)" in ran.stdout
    _assert_promoted(engine, repo, "good", run_dir)
    bad = repo.repository("bad")
    # Built and scanned, but never promoted.
    assert _tag_id(engine, f"{bad}:candidate") == _json(run_dir / "bad" / "build.json")["image_id"]
    assert _json(run_dir / "bad" / "gate.json")["passed"] is False
    assert not (run_dir / "bad" / "promotion.json").exists()
    for tag in TAGS:
        assert _tag_id(engine, f"{bad}:{tag}") is None, f"{bad}:{tag} was created by a failing run"

    first = repo.release(registry.address, "good")
    assert first.returncode == 0, _output(first)
    before = registry.client.snapshot()
    assert set(before) == {repo.repository("good")}

    refused = repo.release(registry.address, "bad")
    assert refused.returncode == 1, _output(refused)
    assert "bad: not released (the gate failed in the latest run); nothing pushed" in refused.stderr
    assert registry.client.snapshot() == before
    assert not (run_dir / "bad" / "release.json").exists()

    # Releasing both pushes the passing image again (same digests) and still nothing of the other.
    mixed = repo.release(registry.address, "good", "bad")
    assert mixed.returncode == 1, _output(mixed)
    assert "good: pushed" in mixed.stdout and "bad: not released" in mixed.stderr
    assert registry.client.snapshot() == before
    for tag in TAGS:
        assert _tag_id(engine, f"{registry.address}/{bad}:{tag}") is None


def test_a_failing_rebuild_leaves_the_release_tags_and_the_registry_on_the_passing_image(
    repo: ThrowawayRepo, engine: Engine, registry: RegistryServer
) -> None:
    passed, passing_run = repo.run("flip")
    assert passed.returncode == 0, _output(passed)
    passing_id = _assert_promoted(engine, repo, "flip", passing_run)
    released = repo.release(registry.address, "flip")
    assert released.returncode == 0, _output(released)
    before = registry.client.snapshot()
    flip_digest = before[repo.repository("flip")][TAGS[0]]
    assert sorted(before[repo.repository("flip")]) == sorted([*TAGS, *_evidence_tags(flip_digest)])

    repo.set_template("flip", FAILING_TEMPLATE)
    failed, failing_run = repo.run("flip")

    assert failed.returncode == 1, _output(failed)
    assert "flip: FAIL" in failed.stdout
    # `harden release` takes the newest run directory; the failing run must sort after the other.
    assert sorted([passing_run.name, failing_run.name])[-1] == failing_run.name
    failing_id = _json(failing_run / "flip" / "build.json")["image_id"]
    assert failing_id != passing_id
    assert _tag_id(engine, f"{repo.repository('flip')}:candidate") == failing_id
    for tag in TAGS:
        assert _tag_id(engine, f"{repo.repository('flip')}:{tag}") == passing_id, f"flip:{tag} moved"
    assert not (failing_run / "flip" / "promotion.json").exists()

    refused = repo.release(registry.address, "flip")

    assert refused.returncode == 1, _output(refused)
    assert "flip: not released (the gate failed in the latest run)" in refused.stderr
    assert registry.client.snapshot() == before
    assert not (failing_run / "flip" / "release.json").exists()


def test_a_registry_that_is_down_fails_the_release_with_exit_3(repo: ThrowawayRepo, engine: Engine) -> None:
    ran, run_dir = repo.run("good")
    assert ran.returncode == 0, _output(ran)
    _assert_promoted(engine, repo, "good", run_dir)
    down = f"127.0.0.1:{free_port()}"

    released = repo.release(down, "good")

    assert released.returncode == 3, _output(released)
    assert "registry operation failed" in released.stderr
    assert down in released.stderr
    assert "connection refused" in released.stderr.lower()
    assert not (run_dir / "good" / "release.json").exists()
