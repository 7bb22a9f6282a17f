"""Shared pieces of the reliability suite: throwaway repositories, a Trivy stand-in, the CLI as a
subprocess, and the engine state a failed command must leave untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO_ROOT

# Our own repository names: nothing else on the engine uses them, so before/after comparisons
# see only what these tests did.
REPOSITORY = "hardening-reliability/demo"
RELEASE_TAG = "1"
CANDIDATE_REF = f"{REPOSITORY}:candidate"
RELEASE_REF = f"{REPOSITORY}:{RELEASE_TAG}"

# The files a run writes that a reader could take for a verdict.
VERDICT_FILES = (
    "findings.json",
    "gate.json",
    "results.sarif",
    "summary.md",
    "promotion.json",
    "release.json",
)

TEMPLATE = """\
FROM {{ base_image }}
RUN echo {{ greeting }} > /greeting
USER 10001:10001
"""

POLICY = """\
version: 1
fail_level: high
checks:
  non_root: {severity: high}
  forbidden_binaries: {severity: critical, names: [gosu, sudo]}
  secrets: {severity: high, names: [PASSWORD, TOKEN, SECRET]}
"""

GATE = """\
version: 1
fail_on: high
max:
  critical: 0
policy_findings: true
"""


def catalog_toml(greeting: str, *, repository: str = REPOSITORY) -> str:
    return textwrap.dedent(
        f"""\
        [project]
        output_dir = "scans"
        gate = "policies/gate.yaml"

        [base.bookworm]
        repository = "hardening/debian"
        tag = "bookworm"
        suite = "bookworm"

        [[image]]
        name = "demo"
        template = "dockerfiles/demo/Dockerfile.j2"
        repository = "{repository}"
        tags = ["{RELEASE_TAG}"]
        policies = ["policies/policy.yaml"]

        [image.variables]
        greeting = "{greeting}"
        """
    )


def make_repo(
    root: Path,
    *,
    greeting: str = "fault",
    template: str = TEMPLATE,
    policy: str = POLICY,
    gate: str = GATE,
    repository: str = REPOSITORY,
    render: bool = True,
) -> Path:
    """A repository with a catalog, a template (rendered and "committed"), a policy and a gate."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dockerfiles" / "demo").mkdir(parents=True, exist_ok=True)
    (root / "dockerfiles" / "demo" / "Dockerfile.j2").write_text(template)
    (root / "policies").mkdir(exist_ok=True)
    (root / "policies" / "policy.yaml").write_text(policy)
    (root / "policies" / "gate.yaml").write_text(gate)
    catalog = root / "hardening.toml"
    catalog.write_text(catalog_toml(greeting, repository=repository))
    if render:
        from hardening.catalog import load_catalog
        from hardening.render import render as render_template
        from hardening.render import write_rendered

        loaded = load_catalog(catalog)
        for spec in loaded.images:
            write_rendered(render_template(spec, loaded.root), loaded.root)
    return catalog


# --- the Trivy stand-in --------------------------------------------------------------------------

# Answers `version` like Trivy 0.76, `convert` with a CycloneDX document, and `image` as its
# BEHAVIOUR says. The clean report names the tarball it was given and leaves out the image id,
# so it is accepted for whatever image the run built.
STAND_IN = """\
#!{python}
import json, sys, time
BEHAVIOUR = {behaviour!r}
args = sys.argv[1:]
if args[0] == "version":
    sys.stdout.write(json.dumps({{"Version": "0.76.0"}}))
    sys.exit(0)
if args[0] == "convert":
    count = 4000 if BEHAVIOUR == "big-sbom" else 0
    components = [{{"type": "library", "name": "package-%d" % i, "version": "1.0.%d" % i}}
                  for i in range(count)]
    sys.stdout.write(json.dumps({{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": components}}))
    sys.exit(0)
tar = args[args.index("--input") + 1]
report = {{
    "SchemaVersion": 2, "Trivy": {{"Version": "0.76.0"}}, "ArtifactName": tar,
    "ArtifactType": "container_image", "Metadata": {{"OS": {{"Family": "debian", "Name": "12"}}}},
    "Results": [{{"Target": "demo (debian 12)", "Class": "os-pkgs", "Type": "debian",
                 "Packages": [{{"Name": "bash"}}], "Vulnerabilities": []}}],
}}
if BEHAVIOUR in ("ok", "big-sbom"):
    sys.stdout.write(json.dumps(report))
elif BEHAVIOUR == "crash":
    sys.stderr.write("2026-01-01T00:00:00Z\\tFATAL\\tscan error: panic: runtime error\\n")
    sys.exit(2)
elif BEHAVIOUR == "hang":
    time.sleep(120)
elif BEHAVIOUR == "garbage":
    sys.stdout.write("\\x1b[32mLoading vulnerability DB... 100%\\x1b[0m done\\n")
elif BEHAVIOUR == "empty":
    pass
elif BEHAVIOUR == "empty-object":
    sys.stdout.write("{{}}")
elif BEHAVIOUR == "saw-nothing":
    report["Metadata"] = {{}}
    report["Results"] = []
    sys.stdout.write(json.dumps(report))
else:
    sys.exit(99)
"""


def stand_in(directory: Path, behaviour: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "trivy"
    path.write_text(STAND_IN.format(python=sys.executable, behaviour=behaviour))
    path.chmod(0o755)
    return path


def trivy_cache(directory: Path, *, version: object = 2, present: bool = True) -> Path:
    """A cache directory with a DB the scanner's checks accept (the stand-in never reads it)."""
    directory.mkdir(parents=True, exist_ok=True)
    if present:
        (directory / "db").mkdir(exist_ok=True)
        (directory / "db" / "trivy.db").write_bytes(b"\0" * 4096)
        meta = {"Version": version, "UpdatedAt": "2026-01-01T00:00:00Z"}
        (directory / "db" / "metadata.json").write_text(json.dumps(meta))
    return directory


# --- the CLI -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def harden_argv(catalog: Path | None, args: Sequence[str]) -> list[str]:
    head = [sys.executable, "-m", "hardening"]
    if catalog is not None:
        head += ["--catalog", str(catalog)]
    return [*head, *args]


def harden_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARDENING_", "GITHUB_"))}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(extra or {})
    return env


def harden(
    catalog: Path | None,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> Result:
    completed = subprocess.run(
        harden_argv(catalog, args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=harden_env(env),
        cwd=cwd or (catalog.parent if catalog else None),
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


# --- what must not change -----------------------------------------------------------------------


def image_id(ref: str) -> str | None:
    """The id a reference points at right now, or None (asked of the real engine, not our code)."""
    completed = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.stdout.strip() if completed.returncode == 0 else None


def repository_tags(repository: str) -> dict[str, str]:
    """Every tag of ``repository`` (and of any registry-prefixed copy) → image id."""
    completed = subprocess.run(
        ["docker", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    tags: dict[str, str] = {}
    for line in completed.stdout.splitlines():
        ref, _, ident = line.partition(" ")
        if ref.rsplit(":", 1)[0].endswith(repository):
            tags[ref] = ident
    return tags


def assert_fails_closed(result: Result, code: int, words: Sequence[str], output_root: Path | None) -> None:
    """The exit code, a message that says what failed and what to do, and no verdict on disk."""
    assert result.code == code, f"exit {result.code}, expected {code}\n{result.output}"
    text = result.output.lower()
    for word in words:
        assert word.lower() in text, f"{word!r} not in the message:\n{result.output}"
    assert "Traceback" not in result.output, result.output
    if output_root is not None:
        assert not verdicts(output_root), f"a failed command left verdicts: {verdicts(output_root)}"
        assert not partial_files(output_root), f"half-written files: {partial_files(output_root)}"


def verdicts(root: Path) -> list[Path]:
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.name in VERDICT_FILES and p.is_file())


def partial_files(root: Path) -> list[Path]:
    """Temporary files of an atomic write that was not completed."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob(".*.tmp"))
