"""python-secure on the real engine: who it runs as, what its venv holds, and what must not be in it."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import time
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from hardening.catalog import ImageSpec, load_catalog
from tests.images.conftest import CatalogImage

pytestmark = pytest.mark.docker

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTEXT = REPO_ROOT / "dockerfiles" / "python-secure"
# Every image the catalog makes from the python-secure template: 3.11 on bookworm, 3.13 on trixie.
PYTHON_SPECS = {
    spec.name: spec
    for spec in load_catalog(REPO_ROOT / "hardening.toml").images
    if spec.template.parent.name == "python-secure"
}
PIP_FLOOR = Version("24.3")
SETUPTOOLS_FLOOR = Version("75")
SERVICE_SET = ("fastapi", "uvicorn", "structlog", "prometheus_client", "httpx", "tenacity")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\s+(.+?)\s+-----END CERTIFICATE-----", re.DOTALL)
HEALTHY_BUDGET_SECONDS = 40.0

# Runs inside the image (as root, so that no directory is unreadable; without network) and
# reports facts as JSON.
PROBE = r"""
import importlib.metadata, json, os, re, shutil, stat, sys, sysconfig, hashlib, base64

SKIP = ("/proc", "/sys", "/dev")
TOOLS = ("gcc", "cc", "c++", "g++", "cpp", "make", "ld", "as", "curl", "wget")
PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s+(.+?)\s+-----END CERTIFICATE-----", re.DOTALL)
facts = {
    "prefix": sys.prefix,
    "purelib": sysconfig.get_paths()["purelib"],
    "venv": {name: importlib.metadata.version(name) for name in ("pip", "setuptools")},
    "which": {tool: shutil.which(tool) for tool in TOOLS},
    "env": dict(os.environ),
    "dists": [], "wheels": [], "world_writable": [], "setuid": [], "cert_files": {}, "errors": [],
}
for root, dirs, files in os.walk("/", onerror=lambda error: facts["errors"].append(str(error))):
    if root.startswith(SKIP):
        dirs[:] = []
        continue
    for name in dirs + files:
        path = os.path.join(root, name)
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            continue
        if info.st_mode & stat.S_IWOTH and not (stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX):
            facts["world_writable"].append(path)
        if stat.S_ISREG(info.st_mode) and info.st_mode & (stat.S_ISUID | stat.S_ISGID):
            facts["setuid"].append(path)
        if name.endswith((".dist-info", ".egg-info")):
            facts["dists"].append(path)
        elif name.endswith(".whl"):
            facts["wheels"].append(path)
        elif name.endswith((".pem", ".crt", ".cer")) and stat.S_ISREG(info.st_mode):
            try:
                with open(path, "rb") as handle:
                    blocks = PEM.findall(handle.read())
            except OSError:
                continue
            facts["cert_files"][path] = sorted(
                hashlib.sha256(base64.b64decode(b"".join(block.split()))).hexdigest() for block in blocks
            )
json.dump(facts, sys.stdout)
"""


def _docker(*args: str, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, check=False, timeout=timeout
    )


def _remove_container(name: str) -> None:
    subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False, timeout=60)


def _run(
    image: str, *command: str, run_args: tuple[str, ...] = (), stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A foreground, network-less container; removed whatever happens."""
    name = f"pysec-test-{uuid.uuid4().hex[:12]}"
    interactive = ("--interactive",) if stdin is not None else ()
    try:
        return _docker(
            "run", "--name", name, "--network", "none", *interactive, *run_args, image, *command, stdin=stdin
        )
    finally:
        _remove_container(name)


def _cert_digests(pem: bytes) -> set[str]:
    return {
        hashlib.sha256(base64.b64decode(b"".join(body.split()))).hexdigest()
        for body in PEM_BLOCK.findall(pem)
    }


@pytest.fixture(scope="module", params=sorted(PYTHON_SPECS))
def spec(request: pytest.FixtureRequest) -> ImageSpec:
    return PYTHON_SPECS[request.param]


@pytest.fixture(scope="module")
def python_image(spec: ImageSpec, catalog_images: Mapping[str, CatalogImage]) -> str:
    """The image as the build driver built it (its wheelhouse included); returns its image id."""
    return catalog_images[spec.name].ref


def test_interpreter_is_the_catalog_python(python_image: str, spec: ImageSpec) -> None:
    result = _run(
        python_image, "python", "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.base_prefix)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(spec.variables["python_version"]), "/usr"]


@pytest.fixture(scope="module")
def facts(python_image: str) -> dict[str, Any]:
    result = _run(python_image, "python", "-", run_args=("--user", "0:0"), stdin=PROBE)
    if result.returncode != 0:
        pytest.fail(f"probe failed in {python_image}:\n{result.stderr[-4000:]}")
    parsed: dict[str, Any] = json.loads(result.stdout)
    assert parsed["errors"] == [], "the probe could not read the whole file system"
    return parsed


@pytest.fixture(scope="module")
def config(python_image: str) -> dict[str, Any]:
    result = _docker("image", "inspect", "--format", "{{json .Config}}", python_image)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_runs_as_the_configured_non_root_ids(
    python_image: str, spec: ImageSpec, config: dict[str, Any]
) -> None:
    variables = spec.variables
    uid, gid = variables["uid"], variables["gid"]
    assert isinstance(uid, int) and isinstance(gid, int)
    assert uid != 0 and gid != 0
    assert config["User"] == f"{uid}:{gid}"
    result = _run(python_image, "python", "-c", "import os; print(os.getuid(), os.getgid())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(uid), str(gid)]
    passwd = _run(python_image, "python", "-c", f"import pwd; print(pwd.getpwuid({uid}).pw_name)")
    assert passwd.stdout.strip() == variables["user"]


def test_venv_holds_pip_and_setuptools_at_or_above_the_floors(facts: dict[str, Any]) -> None:
    assert facts["prefix"] == "/opt/venv"
    assert Version(facts["venv"]["pip"]) >= PIP_FLOOR
    assert Version(facts["venv"]["setuptools"]) >= SETUPTOOLS_FLOOR


def test_no_pip_or_setuptools_below_the_floors_anywhere(facts: dict[str, Any]) -> None:
    floors = {"pip": PIP_FLOOR, "setuptools": SETUPTOOLS_FLOOR}
    low = []
    for path in facts["dists"] + facts["wheels"]:
        match = re.match(
            r"([A-Za-z0-9_.]+)-([0-9][^-]*?)(?:\.dist-info|\.egg-info|-.*\.whl)$", Path(path).name
        )
        if (
            match
            and match.group(1).lower() in floors
            and Version(match.group(2)) < floors[match.group(1).lower()]
        ):
            low.append(path)
    assert low == []
    # Debian's bundles for ensurepip/venv would bring pip 23.0.1 and setuptools 66.1.1 back
    assert not [w for w in facts["wheels"] if w.startswith("/usr/share/python-wheels/")]
    assert not [d for d in facts["dists"] if d.startswith("/usr/lib/python3/dist-packages/")]
    assert not [w for w in facts["wheels"] if "/ensurepip/" in w]


def test_no_compilers_or_build_tools(facts: dict[str, Any]) -> None:
    assert {tool: path for tool, path in facts["which"].items() if path} == {}


def test_the_service_set_imports(python_image: str) -> None:
    result = _run(python_image, "python", "-c", f"import {', '.join(SERVICE_SET)}")
    assert result.returncode == 0, result.stderr


def test_environment(facts: dict[str, Any], config: dict[str, Any]) -> None:
    env = facts["env"]
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].split(":")[0] == "/opt/venv/bin"
    # a CA override in the image would be how the host's interception CA leaks into production
    overrides = {"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE"}
    assert overrides.isdisjoint(env)
    assert not any(key.startswith("PIP_") for key in env)
    assert config["Healthcheck"]["Test"][0] == "CMD"


def test_healthcheck_passes_and_fails_on_a_dead_url(python_image: str, config: dict[str, Any]) -> None:
    probe = config["Healthcheck"]["Test"][1:]
    assert "curl" not in " ".join(probe) and probe[0] == "python"
    assert _run(python_image, *probe).returncode == 0
    dead = _run(python_image, *probe, run_args=("--env", "HEALTHCHECK_URL=http://127.0.0.1:9/healthz"))
    assert dead.returncode != 0


def test_engine_reports_healthy_for_a_serving_container(python_image: str) -> None:
    name = f"pysec-test-{uuid.uuid4().hex[:12]}"
    try:
        started = _docker(
            "run", "--detach", "--name", name, "--network", "none",
            "--health-interval", "1s", "--health-start-period", "1s",
            "--env", "HEALTHCHECK_URL=http://127.0.0.1:8000/",
            python_image, "python", "-m", "http.server", "8000", "--bind", "127.0.0.1",
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + HEALTHY_BUDGET_SECONDS
        status = ""
        while time.monotonic() < deadline:
            status = _docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
            if status in ("healthy", "unhealthy"):
                break
            time.sleep(0.5)
        assert status == "healthy"
    finally:
        _remove_container(name)


def test_no_ca_bundle_of_ours_in_the_image(facts: dict[str, Any], spec: ImageSpec) -> None:
    cert_files: dict[str, list[str]] = facts["cert_files"]
    # Debian's ca-certificates is not installed: every bundle comes, unchanged, from a locked wheel
    published: dict[str, set[str]] = {}
    for wheel in (CONTEXT / "wheels" / str(spec.variables["python_version"])).glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.endswith((".pem", ".crt", ".cer")):
                    published[member] = _cert_digests(archive.read(member))
    for path, digests in cert_files.items():
        member = path.removeprefix(f"{facts['purelib']}/")
        assert member in published, f"{path} does not come from a wheel"
        assert set(digests) == published[member], f"{path} differs from the wheel's copy"
    if HOST_CA_BUNDLE.exists():
        # the host trusts an interception CA; none of the host-only roots may be in the image
        known = set().union(*published.values())
        host_only = _cert_digests(HOST_CA_BUNDLE.read_bytes()) - known
        image_certs = {digest for digests in cert_files.values() for digest in digests}
        assert host_only.isdisjoint(image_certs)


def test_nothing_world_writable_and_no_setuid(facts: dict[str, Any]) -> None:
    assert facts["world_writable"] == []
    assert facts["setuid"] == []
