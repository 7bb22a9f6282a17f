"""Downloads from a Debian mirror: one deadline per file, a size cap, and hash checks.

A mirror that is down, answers with an error or dribbles bytes forever must end the command with
an error naming the URL, never a hang and never a partial file read as complete. The socket
timeout alone does not bound a slow mirror (every byte resets it), so each download also has a
deadline over the whole transfer.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hardening.errors import ArchiveError, ArchiveTrustError

DEFAULT_TIMEOUT = 60.0
_CHUNK = 1 << 16
_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class Transfer:
    """One completed download, for the figures a report prints."""

    url: str
    size: int
    seconds: float


@dataclass
class Fetcher:
    """HTTP(S) downloads with a per-file deadline of ``timeout`` seconds."""

    timeout: float = DEFAULT_TIMEOUT
    transfers: list[Transfer] = field(default_factory=list)

    def get(self, url: str, *, limit: int, what: str) -> bytes:
        """The body at ``url``, at most ``limit`` bytes; ``ArchiveError`` on any failure."""
        scheme = urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise ArchiveError(
                f"cannot fetch {what} from {url}: only http and https mirrors are supported",
                hint="give the mirror as an http:// or https:// URL",
            )
        started = time.monotonic()
        deadline = started + self.timeout
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 # nosec B310 - scheme checked
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise ArchiveError(
                        f"{what} at {url} is {int(declared)} bytes, more than the {limit} allowed",
                        hint="the mirror serves something other than a Debian archive file",
                    )
                body = self._read(response, url, what, limit, deadline)
                if declared is not None and declared.isdigit() and len(body) != int(declared):
                    raise ArchiveError(
                        f"{what} at {url} was cut short ({len(body)} of {declared} bytes)",
                        hint="the mirror closed the connection early; try again",
                    )
        except urllib.error.HTTPError as exc:
            raise ArchiveError(
                f"the mirror answered HTTP {exc.code} for {what} at {url}",
                hint="check the suite and the mirror URL (and that the mirror carries this suite)",
            ) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _timeout(url, what, self.timeout) from exc
            raise ArchiveError(
                f"the mirror did not answer for {what} at {url}: {exc.reason}",
                hint="check the network and the mirror in the apt configuration (or pass --mirror)",
            ) from exc
        except TimeoutError as exc:
            raise _timeout(url, what, self.timeout) from exc
        except (http.client.HTTPException, OSError) as exc:
            raise ArchiveError(
                f"reading {what} from {url} failed: {exc}",
                hint="the mirror closed the connection or sent a malformed answer; try again",
            ) from exc
        self.transfers.append(Transfer(url, len(body), time.monotonic() - started))
        return body

    def get_verified(self, url: str, *, sha256: str, size: int, what: str) -> bytes:
        """The body at ``url``, which must have exactly ``size`` bytes and the SHA-256 ``sha256``."""
        body = self.get(url, limit=size, what=what)
        check_hash(body, sha256=sha256, size=size, what=what, where=url)
        return body

    def _read(
        self, response: http.client.HTTPResponse, url: str, what: str, limit: int, deadline: float
    ) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _timeout(url, what, self.timeout)
            # One socket read per call (read1), each bounded by what is left of the deadline,
            # so a mirror sending a byte at a time cannot outlast it.
            _set_timeout(response, remaining)
            chunk = response.read1(_CHUNK)
            if not chunk:
                return b"".join(parts)
            total += len(chunk)
            if total > limit:
                raise ArchiveTrustError(
                    f"{what} at {url} is larger than the {limit} bytes expected",
                    hint="the mirror serves a different file than its index describes",
                )
            parts.append(chunk)


def check_hash(data: bytes, *, sha256: str, size: int, what: str, where: str) -> None:
    """``ArchiveTrustError`` unless ``data`` has ``size`` bytes and the SHA-256 ``sha256``."""
    if len(data) != size:
        raise ArchiveTrustError(
            f"{what} from {where} has {len(data)} bytes, the signed index says {size}",
            hint="the mirror may be mid-update or serving altered files; try again later",
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256.lower():
        raise ArchiveTrustError(
            f"{what} from {where} has SHA-256 {digest}, the signed index says {sha256}",
            hint="the mirror may be mid-update or serving altered files; try again later",
        )


def _set_timeout(response: http.client.HTTPResponse, seconds: float) -> None:
    sock = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(sock, "_sock", None)
    if isinstance(sock, socket.socket):
        sock.settimeout(max(seconds, 0.01))


def _timeout(url: str, what: str, seconds: float) -> ArchiveError:
    return ArchiveError(
        f"the mirror did not deliver {what} within {seconds:g} s ({url})",
        hint="the mirror is slow or unreachable; try again, pick another mirror, or raise --timeout",
    )
