"""The tool's own hygiene: no shell, bounded subprocesses, private temporary files, bandit clean."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.reliability import cases

PACKAGE = REPO_ROOT / "hardening"

# The one module that runs other programs: Popen in a process group of its own, then
# wait(timeout=...) and killpg on expiry or interrupt; and dockerd, meant to outlive
# `harden engine up`, whose readiness its caller polls with a deadline.
RUNNER = "hardening/process.py"
POPEN_ALLOWLIST = {RUNNER}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_shell() -> None:
    pattern = re.compile(r"shell\s*=\s*True|os\.system\s*\(|os\.popen\s*\(")
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)


def _subprocess_calls(tree: ast.AST) -> list[ast.Call]:
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if (
                isinstance(owner, ast.Name)
                and owner.id == "subprocess"
                and node.func.attr in {"run", "Popen", "call", "check_call", "check_output"}
            ):
                calls.append(node)
    return calls


def _imports_subprocess(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(alias.name == "subprocess" for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "subprocess":
            return True
    return False


def test_subprocess_list_and_timeout() -> None:
    problems = []
    for path in _sources():
        relative = path.relative_to(REPO_ROOT).as_posix()
        if relative != RUNNER and _imports_subprocess(ast.parse(path.read_text())):
            problems.append(f"{relative}: imports subprocess; run programs through {RUNNER}")
        for call in _subprocess_calls(ast.parse(path.read_text())):
            where = f"{relative}:{call.lineno}"
            argv = call.args[0] if call.args else None
            if isinstance(argv, ast.Constant):
                problems.append(f"{where}: a string command, not an argument list")
            keywords = {k.arg for k in call.keywords}
            if "shell" in keywords:
                problems.append(f"{where}: shell= given")
            if call.func.attr == "Popen":  # type: ignore[attr-defined]
                if relative not in POPEN_ALLOWLIST:
                    problems.append(f"{where}: Popen outside the allowlist")
            elif "timeout" not in keywords:
                problems.append(f"{where}: no timeout=")
    assert not problems, "\n".join(problems)


def test_private_temp_files() -> None:
    """mkdtemp and mkstemp are 0700/0600 by construction; NamedTemporaryFile/TemporaryDirectory
    too. What is not allowed: the insecure mktemp, and fixed names in shared /tmp."""
    problems = []
    for path in _sources():
        text = path.read_text()
        relative = path.relative_to(REPO_ROOT).as_posix()
        if re.search(r"tempfile\.mktemp\s*\(", text):
            problems.append(f"{relative}: tempfile.mktemp")
        for match in re.finditer(r"""["']/tmp/[^"']*["']""", text):
            problems.append(f"{relative}: fixed path {match.group(0)}")
    assert not problems, "\n".join(problems)


def test_bandit() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-c", "pyproject.toml", "-r", "hardening"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_check_is_registered() -> None:
    names = {c.id.replace("-", "_") for c in cases.SELF_SECURITY}
    defined = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert names == defined - {"every_check_is_registered"}
