"""A real registry (Debian's docker-registry, distribution 2.8) on a loopback port, and a client.

The Docker engine treats registries on 127.0.0.0/8 as insecure by default, so it pushes to this
one over plain HTTP without any daemon configuration.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REGISTRY_BINARY = Path("/usr/bin/docker-registry")
LOOPBACK = "127.0.0.1"
READY_BUDGET_SECONDS = 20.0
STOP_BUDGET_SECONDS = 10.0
HTTP_TIMEOUT_SECONDS = 10.0
START_ATTEMPTS = 3

# What `docker push` (engine 20.10) uploads, and what a registry may answer for a tag.
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)

# repository → tag → manifest digest
Snapshot = dict[str, dict[str, str]]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_registry_binary() -> Path:
    """Install Debian's docker-registry when it is missing (a fresh CI machine has none)."""
    if REGISTRY_BINARY.is_file():
        return REGISTRY_BINARY
    from hardening.engine.provision import apt_install
    from hardening.errors import HardeningError

    try:
        apt_install(["docker-registry"])
    except HardeningError as exc:
        pytest.fail(
            f"tests marked registry need {REGISTRY_BINARY}; installing it failed:\n{exc.diagnostics()}"
        )
    if not REGISTRY_BINARY.is_file():
        pytest.fail(f"apt installed docker-registry but {REGISTRY_BINARY} does not exist")
    return REGISTRY_BINARY


def write_config(path: Path, storage: Path, port: int) -> None:
    """Filesystem storage, loopback only, no auth, deletes allowed. YAML is a superset of JSON."""
    config = {
        "version": "0.1",
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"{LOOPBACK}:{port}"},
    }
    path.write_text(json.dumps(config, indent=2) + "\n")


class RegistryClient:
    """The few read-only calls of the registry's HTTP API v2 the tests need."""

    def __init__(self, address: str, *, timeout: float = HTTP_TIMEOUT_SECONDS) -> None:
        self.address = address
        self.timeout = timeout

    def _request(self, path: str, *, method: str = "GET", accept: str | None = None) -> tuple[int, Any, str]:
        url = f"http://{self.address}{path}"
        if not url.startswith(f"http://{LOOPBACK}:"):
            raise ValueError(f"{url} is not on loopback")
        request = urllib.request.Request(url, method=method)
        if accept:
            request.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = response.read()
                digest = response.headers.get("Docker-Content-Digest", "")
                return response.status, json.loads(body) if body and method == "GET" else None, digest
        except urllib.error.HTTPError as exc:
            return exc.code, None, ""

    def ping(self) -> bool:
        try:
            status, _, _ = self._request("/v2/")
        except (OSError, ValueError):
            return False
        return status == 200

    def catalog(self) -> list[str]:
        status, body, _ = self._request("/v2/_catalog?n=1000")
        assert status == 200, f"GET /v2/_catalog answered {status}"
        return sorted(body.get("repositories") or [])

    def tags(self, repository: str) -> list[str]:
        status, body, _ = self._request(f"/v2/{repository}/tags/list")
        if status == 404:
            return []
        assert status == 200, f"GET /v2/{repository}/tags/list answered {status}"
        return sorted(body.get("tags") or [])

    def manifest_digest(self, repository: str, tag: str) -> str | None:
        status, _, digest = self._request(
            f"/v2/{repository}/manifests/{tag}", method="HEAD", accept=MANIFEST_TYPES
        )
        if status == 404:
            return None
        assert status == 200 and digest, f"HEAD /v2/{repository}/manifests/{tag} answered {status}"
        return digest

    def snapshot(self) -> Snapshot:
        """Everything the registry holds: every repository, every tag and its manifest digest."""
        result: Snapshot = {}
        for repository in self.catalog():
            digests: dict[str, str] = {}
            for tag in self.tags(repository):
                digest = self.manifest_digest(repository, tag)
                assert digest is not None, f"{repository}:{tag} is listed but has no manifest"
                digests[tag] = digest
            result[repository] = digests
        return result


@dataclass
class RegistryServer:
    process: subprocess.Popen[bytes]
    client: RegistryClient
    log: Path

    @property
    def address(self) -> str:
        return self.client.address

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_BUDGET_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_BUDGET_SECONDS)


def _start_once(binary: Path, workdir: Path, port: int) -> RegistryServer | None:
    """Start on ``port``; None when the process died before answering (the port was taken)."""
    config = workdir / "config.yml"
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    write_config(config, storage, port)
    log = workdir / f"registry-{port}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(binary), "serve", str(config)], stdout=handle, stderr=subprocess.STDOUT, cwd=workdir
        )
    server = RegistryServer(process, RegistryClient(f"{LOOPBACK}:{port}"), log)
    deadline = time.monotonic() + READY_BUDGET_SECONDS
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return None
            if server.client.ping():
                return server
            time.sleep(0.05)
    except BaseException:
        server.stop()
        raise
    tail = server.log_tail()
    server.stop()
    pytest.fail(
        f"docker-registry on port {port} did not answer GET /v2/ within {READY_BUDGET_SECONDS:.0f} s:\n{tail}"
    )


def start_registry(workdir: Path) -> RegistryServer:
    """A registry on a free loopback port, answering GET /v2/ with 200; the caller stops it."""
    binary = ensure_registry_binary()
    logs: list[str] = []
    for _ in range(START_ATTEMPTS):
        port = free_port()
        server = _start_once(binary, workdir, port)
        if server is not None:
            return server
        logs.append((workdir / f"registry-{port}.log").read_text(errors="replace")[-2000:])
    pytest.fail(f"docker-registry exited before answering, {START_ATTEMPTS} times:\n" + "\n---\n".join(logs))
