"""A loopback proxy in front of a real registry that fails the requests a test chooses.

The Docker engine's requests (User-Agent ``docker/…``) always pass, so an image push lands whole;
the other requests — `harden release`'s evidence client — are answered with a status when the
test's ``decide`` says so: the registry failing between the image push and the evidence push.
Loopback only; every wait is bounded.
"""

from __future__ import annotations

import http.client
import http.server
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
)
TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    from_engine: bool
    answered: int | None  # the status we made up, None when forwarded


# (method, path, from the engine?) → a status to answer instead of forwarding, or None.
Decide = Callable[[str, str, bool], int | None]


@dataclass
class FaultyProxy:
    backend: str  # HOST:PORT of the real registry
    decide: Decide
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        proxy = self
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                from_engine = self.headers.get("User-Agent", "").startswith("docker/")
                status = proxy.decide(self.command, self.path, from_engine)
                with lock:
                    proxy.seen.append(Seen(self.command, self.path, from_engine, status))
                if status is not None:
                    self.send_response(status)
                    self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                connection = http.client.HTTPConnection(proxy.backend, timeout=TIMEOUT_SECONDS)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    if self.command not in ("GET", "HEAD") or body:
                        headers["Content-Length"] = str(len(body))
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                finally:
                    connection.close()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
