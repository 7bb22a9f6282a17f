"""Tool and infrastructure faults through the CLI: exit 3 (130 when interrupted), a message that
says what failed and what to do, no verdict on disk, no tag moved."""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ReleaseKey
from tests.reliability import cases
from tests.reliability.cases import Case, params
from tests.reliability.harness import (
    CANDIDATE_REF,
    RELEASE_REF,
    REPOSITORY,
    Result,
    assert_fails_closed,
    harden,
    harden_argv,
    harden_env,
    image_id,
    make_repo,
    partial_files,
    repository_tags,
    stand_in,
    trivy_cache,
    verdicts,
)

pytestmark = pytest.mark.docker

ENGINE_SOCKET = "/var/run/docker.sock"
SLOW_TEMPLATE = """\
FROM {{ base_image }}
RUN echo {{ greeting }} > /greeting
RUN sleep 30 && echo NONCE
USER 10001:10001
"""


@pytest.fixture(scope="module")
def passed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run that passed and promoted: the release tag every fault below must leave alone."""
    root = tmp_path_factory.mktemp("passed")
    catalog = make_repo(root / "repo", greeting="passed")
    trivy = stand_in(root / "bin", "ok")
    result = harden(catalog, "run", "--trivy", str(trivy), "--cache-dir", str(trivy_cache(root / "cache")))
    assert result.code == 0, result.output
    assert image_id(RELEASE_REF) is not None
    return catalog


@pytest.fixture
def tags(passed: Path) -> Iterator[dict[str, str]]:
    """The repository's tags before the test; afterwards the release tag must be where it was."""
    before = repository_tags(REPOSITORY)
    yield before
    assert image_id(RELEASE_REF) == before[RELEASE_REF], "a failed command moved the release tag"


def _unmoved(before: dict[str, str], *, candidate_may_be: str | None = None) -> None:
    after = repository_tags(REPOSITORY)
    assert after.get(RELEASE_REF) == before[RELEASE_REF]
    # A failed build removes the candidate; a scan fault after a good build leaves the image it
    # was scanning. The candidate never points at anything else.
    allowed = {before.get(CANDIDATE_REF), None, candidate_may_be}
    assert after.get(CANDIDATE_REF) in allowed, (before, after)


def _fault_repo(root: Path, template: str | None = None) -> Path:
    if template is None:
        return make_repo(root)
    return make_repo(root, template=template.replace("NONCE", uuid.uuid4().hex))


# --- engine down or dying ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", params(cases.ENGINE_DOWN[:-1]))
def test_no_engine_exits_3(
    tmp_path: Path, tags: dict[str, str], passed: Path, case: Case, release_key: ReleaseKey
) -> None:
    catalog = _fault_repo(tmp_path / "repo") if case.text("command") != "release" else passed
    trivy = stand_in(tmp_path / "bin", "ok")
    cache = str(trivy_cache(tmp_path / "cache"))
    args = {
        "run": ["run", "--trivy", str(trivy), "--cache-dir", cache],
        "build": ["build"],
        "scan": [
            "scan",
            "--image",
            RELEASE_REF,
            "--out",
            str(tmp_path / "out"),
            "--trivy",
            str(trivy),
            "--cache-dir",
            cache,
        ],
        "check": ["check", "--image", RELEASE_REF],
        "release": ["release", "--registry", "127.0.0.1:9", *release_key.args],
    }[case.text("command")]
    env = {"DOCKER_HOST": f"unix://{tmp_path}/nonexistent.sock", **release_key.env}
    result = harden(catalog, *args, env=env)
    assert_fails_closed(result, 3, ("no docker engine answers", "nonexistent.sock", "harden engine up"), None)
    assert not verdicts(catalog.parent / "scans") or case.text("command") == "release"
    assert not (tmp_path / "out" / "scan.json").exists()
    _unmoved(tags)


class CuttingProxy:
    """A Unix socket in front of the engine that passes everything through, except that it hangs
    up on a build as soon as the engine has started it: the engine dying mid-build, as the client
    sees it. Loopback only; every wait is bounded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cut = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        deadline = time.monotonic() + 300
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by close()
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(ENGINE_SOCKET)
        building = threading.Event()

        def pump(src: socket.socket, dst: socket.socket, to_engine: bool) -> None:
            deadline = time.monotonic() + 300
            src.settimeout(1.0)
            with contextlib.suppress(OSError):
                while time.monotonic() < deadline and not self._stop.is_set():
                    try:
                        data = src.recv(65536)
                    except TimeoutError:
                        continue
                    if not data:
                        break
                    if to_engine and b"POST /" in data and b"/build?" in data:
                        building.set()
                    if not to_engine and building.is_set() and b"Step 2/" in data:
                        dst.sendall(data)
                        self.cut.set()
                        break
                    dst.sendall(data)
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

        threading.Thread(target=pump, args=(client, upstream, True), daemon=True).start()
        pump(upstream, client, False)

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(timeout=5)


def test_engine_dying_mid_build_exits_3(tmp_path: Path, tags: dict[str, str]) -> None:
    (case,) = [c for c in cases.ENGINE_DOWN if c.id == "dies-mid-build"]
    assert case.klass == "engine-down"
    catalog = _fault_repo(tmp_path / "repo", SLOW_TEMPLATE)
    trivy = stand_in(tmp_path / "bin", "ok")
    proxy = CuttingProxy(tmp_path / "engine.sock")
    try:
        result = harden(
            catalog,
            "run",
            "--trivy",
            str(trivy),
            "--cache-dir",
            str(trivy_cache(tmp_path / "c")),
            env={"DOCKER_HOST": f"unix://{proxy.path}"},
            timeout=120,
        )
    finally:
        proxy.close()
    assert proxy.cut.is_set(), "the proxy never saw the build start"
    assert_fails_closed(
        result, 3, ("engine failed during the build", "harden engine up"), catalog.parent / "scans"
    )
    time.sleep(1)  # the engine notices the hang-up and cancels the build
    _unmoved(tags)


# --- builds failing ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", params(cases.BUILD_FAILURE))
def test_failing_build(tmp_path: Path, tags: dict[str, str], case: Case) -> None:
    catalog = _fault_repo(tmp_path / "repo", case.text("template"))
    trivy = stand_in(tmp_path / "bin", "ok")
    result = harden(catalog, "run", "--trivy", str(trivy), "--cache-dir", str(trivy_cache(tmp_path / "c")))
    code = case.data["code"]
    assert isinstance(code, int)
    assert_fails_closed(result, code, case.words(), catalog.parent / "scans")
    _unmoved(tags)


# --- Trivy -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_image(passed: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build the fault repository's image once so every Trivy case reuses the cached build."""
    root = tmp_path_factory.mktemp("fault-image")
    catalog = _fault_repo(root / "repo")
    result = harden(catalog, "build")
    assert result.code == 0, result.output
    ident = image_id(CANDIDATE_REF)
    assert ident is not None
    return ident


@pytest.mark.trivy
@pytest.mark.parametrize("case", params(cases.TRIVY_FAULT))
def test_trivy_fault(tmp_path: Path, tags: dict[str, str], fault_image: str, case: Case) -> None:
    behaviour = case.text("behaviour")
    trivy = (
        tmp_path / "nowhere" / "trivy" if behaviour == "missing" else stand_in(tmp_path / "bin", behaviour)
    )
    cache = trivy_cache(
        tmp_path / "cache",
        present=behaviour != "db-missing",
        version=1 if behaviour == "db-schema-1" else 2,
    )
    common = ["--trivy", str(trivy), "--cache-dir", str(cache), "--timeout", "1"]
    catalog = _fault_repo(tmp_path / "repo")
    out = tmp_path / "out"
    if case.text("command") == "run":
        result = harden(catalog, "run", *common)
    else:
        result = harden(catalog, "scan", "--image", CANDIDATE_REF, "--out", str(out), *common)
    assert_fails_closed(result, 3, case.words(), catalog.parent / "scans")
    assert not (out / "scan.json").exists() and not (out / "sbom.cdx.json").exists()
    assert (
        not list((cache / "hardening-results").glob("*")) if (cache / "hardening-results").exists() else True
    )
    _unmoved(tags, candidate_may_be=fault_image)


# --- disk full -----------------------------------------------------------------------------------


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str = "64k") -> Iterator[Path]:
    """A real ENOSPC: a 64 KiB tmpfs (the tests run as root, as CI does)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True, timeout=30)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)


def _big_trivy_report(path: Path, count: int = 600) -> Path:
    vulns = ",".join(
        f'{{"VulnerabilityID": "CVE-2024-{i}", "PkgName": "pkg{i}", "InstalledVersion": "1.0", '
        f'"FixedVersion": "1.1", "Severity": "LOW", "Title": "{"x" * 100}"}}'
        for i in range(count)
    )
    os_info = '"Metadata": {"OS": {"Family": "debian", "Name": "12"}}'
    head = f'{{"SchemaVersion": 2, "ArtifactName": "demo.tar", {os_info}'
    result = '{"Target": "demo", "Class": "os-pkgs", "Packages": [{"Name": "bash"}], "Vulnerabilities": ['
    path.write_text(f'{head}, "Results": [{result}{vulns}]}}]}}')
    return path


@pytest.mark.parametrize("case", params(cases.DISK_FULL))
def test_disk_full(tmp_path: Path, tags: dict[str, str], fault_image: str, case: Case) -> None:
    command = case.text("command")
    catalog = _fault_repo(tmp_path / "repo")
    trivy = stand_in(tmp_path / "bin", "big-sbom")
    cache = str(trivy_cache(tmp_path / "cache"))
    full = tmp_path / "full"
    with tiny_tmpfs(full):
        # Most of the space is taken already, as on a disk that is nearly full.
        (full / "filler").write_bytes(b"\0" * 40 * 1024)
        if command == "run":
            (catalog.parent / "scans").symlink_to(full)
            result = harden(catalog, "run", "--trivy", str(trivy), "--cache-dir", cache)
        elif command == "scan":
            result = harden(
                catalog,
                "scan",
                "--image",
                CANDIDATE_REF,
                "--out",
                str(full / "scan"),
                "--trivy",
                str(trivy),
                "--cache-dir",
                cache,
            )
        elif command == "sarif":
            report = _big_trivy_report(tmp_path / "report.json")
            result = harden(
                None, "sarif", "--from-trivy", str(report), "-o", str(full / "out.sarif"), cwd=tmp_path
            )
        elif command == "diff":
            from hardening.report.jsonreport import build_report, write_report
            from hardening.scan.trivy import parse_report

            parsed = parse_report(
                _big_trivy_report(tmp_path / "r.json").read_bytes(),
                image="demo",
                artifact_name=None,
                image_id=None,
            )
            write_report(
                tmp_path / "new" / "demo" / "findings.json", build_report("demo", list(parsed.findings))
            )
            write_report(tmp_path / "old" / "demo" / "findings.json", build_report("demo", []))
            result = harden(
                None,
                "diff",
                str(tmp_path / "old"),
                str(tmp_path / "new"),
                "--json",
                str(full / "diff.json"),
                cwd=tmp_path,
            )
        else:
            advisories = Path(__file__).resolve().parents[2] / "advisories"
            result = harden(
                None, "db", "build", str(advisories), "--cache-dir", str(full / "cache"), cwd=tmp_path
            )
        leftovers = sorted(p.relative_to(full).as_posix() for p in full.rglob("*") if p.is_file())
        half = partial_files(full)
        found_verdicts = verdicts(full)
    _print_on_fail(result)
    assert result.code == 3, f"exit {result.code}\n{result.output}"
    assert "no space left on device" in result.output.lower(), result.output
    assert "free space" in result.output.lower(), result.output
    assert "Traceback" not in result.output
    assert not half, f"half-written files left: {half}"
    assert not found_verdicts, found_verdicts
    # Whatever is left is complete: small records written before the disk filled up.
    assert all(not name.endswith((".sarif", "scan.json", "trivy.db", "diff.json")) for name in leftovers), (
        leftovers
    )
    _unmoved(tags, candidate_may_be=fault_image)


def _print_on_fail(result: Result) -> None:
    print(result.output)  # shown by pytest only when the test fails


# --- registry ------------------------------------------------------------------------------------


class RefusingRegistry:
    """Answers every request with one status, as a broken or locked registry does. Loopback only."""

    def __init__(self, status: int) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def _refuse(self) -> None:
                self.send_response(status)
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="reliability"')
                self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _refuse

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 1
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("case", params(cases.REGISTRY_FAULT))
def test_registry_fault(
    tmp_path: Path, tags: dict[str, str], passed: Path, case: Case, release_key: ReleaseKey
) -> None:
    status = case.data["status"]
    assert isinstance(status, int)
    registry = RefusingRegistry(status) if status else None
    port = registry.port if registry else _closed_port()
    try:
        result = harden(
            passed,
            "release",
            "--registry",
            f"127.0.0.1:{port}",
            *release_key.args,
            env=release_key.env,
            timeout=180,
        )
    finally:
        if registry:
            registry.close()
        for ref in repository_tags(f"127.0.0.1:{port}/{REPOSITORY}"):
            subprocess.run(["docker", "rmi", ref], capture_output=True, timeout=60, check=False)
    assert_fails_closed(result, 3, ("push of", f"127.0.0.1:{port}", "registry"), None)
    assert not list((passed.parent / "scans").rglob("release.json"))
    _unmoved(tags)


# --- interrupts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", params(cases.INTERRUPT))
def test_interrupted_run_exits_130(tmp_path: Path, tags: dict[str, str], case: Case) -> None:
    catalog = _fault_repo(tmp_path / "repo", SLOW_TEMPLATE)
    trivy = stand_in(tmp_path / "bin", "ok")
    argv = harden_argv(
        catalog, ["run", "--trivy", str(trivy), "--cache-dir", str(trivy_cache(tmp_path / "c"))]
    )
    log = tmp_path / "stderr.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=err, env=harden_env(), cwd=catalog.parent
        )
        try:
            deadline = time.monotonic() + 60
            while b"RUN sleep 30" not in log.read_bytes() and time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                time.sleep(0.1)
            assert b"RUN sleep 30" in log.read_bytes(), "the build never started"
            time.sleep(1)
            process.send_signal(getattr(signal, case.text("signal")))
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    output = log.read_text()
    assert code == 130, f"exit {code}\n{output}"
    assert "interrupted" in output
    assert "Traceback" not in output
    assert not verdicts(catalog.parent / "scans")
    time.sleep(1)
    _unmoved(tags)
    assert os.environ.get("DOCKER_HOST", "") == os.environ.get("DOCKER_HOST", "")
