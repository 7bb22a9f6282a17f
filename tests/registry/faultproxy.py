"""A loopback proxy in front of the real registry that answers chosen requests with a fault.

Everything else is forwarded to the registry unchanged, so a pull through the proxy is a real
pull from distribution 2.8 except for the one failure under test: a rate limit, a server error,
a blob the registry has lost, a blob whose bytes do not match their digest.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.registry.server import LOOPBACK

FAULTS = ("manifest-429", "manifest-500", "blob-404", "blob-500", "blob-corrupt")
_FORWARDED_HEADERS = ("Content-Type", "Docker-Content-Digest", "Docker-Distribution-Api-Version")


class FaultProxy:
    def __init__(self, upstream: str, fault: str | None) -> None:
        assert fault is None or fault in FAULTS, fault
        self.upstream = upstream
        self.fault = fault
        self.requests: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy._handle(self, "GET")

            def do_HEAD(self) -> None:
                proxy._handle(self, "HEAD")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.address = f"{LOOPBACK}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = handler.path
        self.requests.append((method, path))
        kind = "manifest" if "/manifests/" in path else "blob" if "/blobs/" in path else "other"
        if self.fault and self.fault.startswith(kind) and not self.fault.endswith("corrupt"):
            status = int(self.fault.rsplit("-", 1)[1])
            body = b'{"errors":[{"code":"INJECTED","message":"fault injected by the test"}]}'
            handler.send_response(status)
            if status == 429:
                handler.send_header("Retry-After", "30")
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if method == "GET":
                handler.wfile.write(body)
            return
        request = urllib.request.Request(f"http://{self.upstream}{path}", method=method)
        for name in ("Accept", "Authorization"):
            if handler.headers.get(name):
                request.add_header(name, handler.headers[name])
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
                status, headers, data = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, data = error.code, error.headers, error.read()
        if self.fault == "blob-corrupt" and kind == "blob" and method == "GET" and data:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        handler.send_response(status)
        for name in _FORWARDED_HEADERS:
            if headers.get(name):
                handler.send_header(name, headers[name])
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if method == "GET":
            handler.wfile.write(data)

    def blob_downloads(self) -> int:
        return sum(1 for method, path in self.requests if method == "GET" and "/blobs/" in path)


@contextmanager
def fault_proxy(upstream: str, fault: str | None = None) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, fault)
    proxy.thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
