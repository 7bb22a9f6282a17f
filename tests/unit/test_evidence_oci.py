"""The registry client's own parts: bounded retries, timeouts, plain HTTP only on loopback; and
`harden verify`'s bad input, which never reaches a registry."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardening.cli import main
from hardening.errors import RegistryError
from hardening.evidence.keys import generate
from hardening.evidence.oci import OrasRegistry, is_loopback


class Stub:
    """A loopback HTTP server answering from a script of statuses, then 404 (or a manifest)."""

    def __init__(self, statuses: list[int], *, hang: float = 0.0) -> None:
        self.statuses = statuses
        self.requests: list[str] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.requests.append(self.path)
                if hang:
                    time.sleep(hang)
                status = stub.statuses.pop(0) if stub.statuses else 200
                body = b'{"schemaVersion": 2}' if status == 200 else b""
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, as the timeout test wants

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub(request: pytest.FixtureRequest) -> Iterator[Stub]:
    statuses, hang = request.param
    server = Stub(list(statuses), hang=hang)
    yield server
    server.close()


@pytest.mark.parametrize("stub", [([503, 502], 0.0)], indirect=True)
def test_transient_answers_are_retried(stub: Stub) -> None:
    manifest = OrasRegistry(stub.host, backoff=0).manifest("a/b", "1")
    assert manifest is not None and manifest.digest.startswith("sha256:")
    assert len(stub.requests) == 3


@pytest.mark.parametrize("stub", [([503, 503, 503, 503], 0.0)], indirect=True)
def test_retries_are_bounded(stub: Stub) -> None:
    with pytest.raises(RegistryError, match=r"answered 503 .*\(tried 3 times\)"):
        OrasRegistry(stub.host, backoff=0).manifest("a/b", "1")
    assert len(stub.requests) == 3


@pytest.mark.parametrize("stub", [([404], 0.0)], indirect=True)
def test_not_found_is_an_answer_not_a_fault(stub: Stub) -> None:
    assert OrasRegistry(stub.host, backoff=0).manifest("a/b", "1") is None
    assert len(stub.requests) == 1


@pytest.mark.parametrize("stub", [([403], 0.0)], indirect=True)
def test_forbidden_says_to_log_in(stub: Stub) -> None:
    with pytest.raises(RegistryError) as info:
        OrasRegistry(stub.host, backoff=0).manifest("a/b", "1")
    assert "docker login" in info.value.diagnostics()


@pytest.mark.parametrize("stub", [([200], 3.0)], indirect=True)
def test_a_registry_that_never_answers_times_out(stub: Stub) -> None:
    started = time.monotonic()
    with pytest.raises(RegistryError, match="tried 1 times"):
        OrasRegistry(stub.host, timeout=0.5, attempts=1).manifest("a/b", "1")
    assert time.monotonic() - started < 2.5


def test_plain_http_only_on_loopback() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost:5000") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example:5000") and not is_loopback("10.0.0.1")


def _verify(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(["verify", *argv])
    _, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), err


def test_verify_bad_input_exits_2_before_asking_any_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pair = generate(tmp_path / "keys", b"unit-test passphrase, long enough")
    code, err = _verify(["python-secure:3.11", "--key", str(pair.public)], capsys)
    assert code == 2 and "HOST[:PORT]/REPOSITORY" in err
    code, err = _verify(["127.0.0.1:9/a/b:1", "--key", str(pair.private)], capsys)
    assert code == 2 and "this is a private key" in err
    code, err = _verify(["127.0.0.1:9/a/b:1", "--key", str(tmp_path / "none.pub")], capsys)
    assert code == 2 and "no public key here" in err


def test_verify_against_a_registry_that_is_down_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pair = generate(tmp_path / "keys", b"unit-test passphrase, long enough")
    code, err = _verify(["127.0.0.1:9/a/b:1", "--key", str(pair.public)], capsys)
    assert code == 3 and "registry operation failed" in err and "127.0.0.1:9" in err
