"""A real apt repository for tests: a gpg key made here, .debs built with dpkg-deb, indexes
written by dpkg-scanpackages, a Release signed into InRelease, served over HTTP on 127.0.0.1.

The server can be told to misbehave per path (another body, an HTTP status, a delay, a trickle
of bytes), which is how the fault tests reach the reader through its real network code.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import lzma
import shutil
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

LOOPBACK = "127.0.0.1"


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    homedir: Path
    keyring: Path  # binary export, what gpgv reads
    fingerprint: str

    def clearsign(self, text: str, out: Path) -> None:
        source = out.with_suffix(".unsigned")
        source.write_text(text)
        _run(
            [
                *("gpg", "--batch", "--yes", "--homedir", str(self.homedir), "--digest-algo", "SHA256"),
                *("--local-user", self.fingerprint, "--clearsign", "-o", str(out), str(source)),
            ]
        )
        source.unlink()

    def close(self) -> None:
        subprocess.run(
            ["gpgconf", "--homedir", str(self.homedir), "--kill", "all"], capture_output=True, check=False
        )


def make_key(directory: Path, name: str = "Test Archive") -> SigningKey:
    """A fresh ed25519 signing key (no passphrase) in its own GnuPG home."""
    homedir = directory / "gnupg"
    homedir.mkdir(parents=True, mode=0o700)
    uid = f"{name} <archive@test.invalid>"
    _run(
        [
            *("gpg", "--batch", "--homedir", str(homedir), "--pinentry-mode", "loopback", "--passphrase", ""),
            *("--quick-gen-key", uid, "ed25519", "sign", "never"),
        ]
    )
    listing = _run(["gpg", "--batch", "--homedir", str(homedir), "--with-colons", "--list-keys"])
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    keyring = directory / "keyring.gpg"
    keyring.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--homedir", str(homedir), "--export", fingerprint],
            capture_output=True,
            check=True,
        ).stdout
    )
    return SigningKey(homedir, keyring, fingerprint)


# --- packages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One changelog entry."""

    version: str
    changes: Sequence[str] = ("New upstream release.",)
    distribution: str = "bookworm"
    date: str = "Mon, 01 Jan 2024 12:00:00 +0000"


def changelog(source: str, entries: Sequence[Entry]) -> str:
    """A debian/changelog, newest entry first (the order given)."""
    blocks = []
    for entry in entries:
        lines = "\n".join(f"  * {line}" for line in entry.changes)
        blocks.append(
            f"{source} ({entry.version}) {entry.distribution}; urgency=medium\n\n{lines}\n\n"
            f" -- Test Maintainer <maint@test.invalid>  {entry.date}\n"
        )
    return "\n".join(blocks)


@dataclass(frozen=True)
class Deb:
    package: str
    version: str
    source: str
    source_version: str
    architecture: str
    path: Path


def build_deb(
    workdir: Path,
    package: str,
    version: str,
    *,
    source: str | None = None,
    source_version: str | None = None,
    architecture: str = "amd64",
    changelog_text: str | None = None,
    changelog_gz: bytes | None = None,
    docs_link: str | None = None,
    padding: int = 0,
) -> Deb:
    """A real .deb (dpkg-deb --build) with /usr/share/doc/<package>/changelog.Debian.gz."""
    source = source or package
    source_version = source_version or version
    root = workdir / f"{package}_{version.replace(':', '%')}_{architecture}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "DEBIAN").mkdir(parents=True)
    control = {
        "Package": package,
        "Version": version,
        "Architecture": architecture,
        "Maintainer": "Test Maintainer <maint@test.invalid>",
        "Description": f"{package} for tests",
    }
    if source != package or source_version != version:
        control["Source"] = source if source_version == version else f"{source} ({source_version})"
    (root / "DEBIAN/control").write_text("".join(f"{k}: {v}\n" for k, v in control.items()))
    docs = root / "usr/share/doc" / package
    if docs_link is not None:
        docs.parent.mkdir(parents=True)
        docs.symlink_to(docs_link)
    else:
        docs.mkdir(parents=True)
        if changelog_gz is not None:
            (docs / "changelog.Debian.gz").write_bytes(changelog_gz)
        elif changelog_text is not None:
            (docs / "changelog.Debian.gz").write_bytes(gzip.compress(changelog_text.encode(), mtime=0))
    if padding:
        # Size decides which binary of a source is downloaded first.
        (root / "usr/share" / f"{package}.pad").write_bytes(b"\0" * padding)
    out = workdir / f"{root.name}.deb"
    _run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(out)])
    return Deb(package, version, source, source_version, architecture, out)


# --- the repository ---------------------------------------------------------------------------


@dataclass
class Pocket:
    archive: str  # "debian" or "debian-security": the mirror path
    suite: str
    debs: list[Deb]
    version: str = "12.9"
    date: datetime = field(default_factory=lambda: datetime(2026, 1, 10, 12, tzinfo=UTC))
    valid_until: datetime | None = None
    codename: str | None = None
    by_hash: bool = True


def publish(root: Path, pocket: Pocket, key: SigningKey) -> None:
    """Write pool files, Packages(.gz/.xz), Release and InRelease of one pocket under ``root``."""
    mirror = root / pocket.archive
    pool = mirror / "pool" / pocket.suite
    shutil.rmtree(pool, ignore_errors=True)
    for deb in pocket.debs:
        initial = deb.source[:4] if deb.source.startswith("lib") else deb.source[0]
        target = pool / "main" / initial / deb.source / deb.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(deb.path, target)
    dists = mirror / "dists" / pocket.suite
    shutil.rmtree(dists, ignore_errors=True)
    binary = dists / "main" / "binary-amd64"
    binary.mkdir(parents=True)
    packages = b""
    if pocket.debs:
        packages = subprocess.run(
            ["dpkg-scanpackages", "--multiversion", f"pool/{pocket.suite}", "/dev/null"],
            cwd=mirror,
            capture_output=True,
            check=True,
        ).stdout
    variants = {
        "Packages": packages,
        "Packages.gz": gzip.compress(packages, mtime=0),
        "Packages.xz": lzma.compress(packages),
    }
    for name, data in variants.items():
        (binary / name).write_bytes(data)
        by_hash = binary / "by-hash" / "SHA256"
        by_hash.mkdir(parents=True, exist_ok=True)
        (by_hash / hashlib.sha256(data).hexdigest()).write_bytes(data)
    sums = "".join(
        f" {hashlib.sha256(data).hexdigest()} {len(data):>8} main/binary-amd64/{name}\n"
        for name, data in variants.items()
    )
    fields = {
        "Origin": "Test",
        "Label": "Test",
        "Suite": pocket.suite,
        "Version": pocket.version,
        "Codename": pocket.codename or pocket.suite,
        "Date": format_datetime(pocket.date, usegmt=True),
    }
    if pocket.valid_until is not None:
        fields["Valid-Until"] = format_datetime(pocket.valid_until, usegmt=True)
    if pocket.by_hash:
        fields["Acquire-By-Hash"] = "yes"
    fields["Architectures"] = "amd64"
    fields["Components"] = "main"
    release = "".join(f"{k}: {v}\n" for k, v in fields.items()) + "SHA256:\n" + sums
    (dists / "Release").write_text(release)
    key.clearsign(release, dists / "InRelease")


def status_paragraph(
    package: str, version: str, *, source: str | None = None, architecture: str = "amd64"
) -> str:
    """One installed package as dpkg's status file records it."""
    lines = [f"Package: {package}", "Status: install ok installed", f"Version: {version}"]
    lines.append(f"Architecture: {architecture}")
    if source:
        lines.append(f"Source: {source}")
    return "\n".join(lines) + "\n"


def os_release(codename: str = "bookworm", version_id: str = "12") -> str:
    return textwrap.dedent(
        f"""\
        PRETTY_NAME="Debian GNU/Linux {version_id} ({codename})"
        NAME="Debian GNU/Linux"
        VERSION_ID="{version_id}"
        VERSION_CODENAME={codename}
        ID=debian
        """
    )


# --- the server -------------------------------------------------------------------------------


@dataclass
class Behaviour:
    """How the server misbehaves; keys are URL paths (``/debian/dists/…``)."""

    bodies: dict[str, bytes] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)
    trickle: dict[str, float] = field(default_factory=dict)  # seconds between single bytes
    requests: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.bodies.clear()
        self.statuses.clear()
        self.delay.clear()
        self.trickle.clear()
        self.requests.clear()


class _Handler(http.server.SimpleHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        behaviour = self.behaviour
        behaviour.requests.append(path)
        time.sleep(behaviour.delay.get(path, 0.0))
        if path in behaviour.statuses:
            self.send_error(behaviour.statuses[path])
            return
        body = behaviour.bodies.get(path)
        if body is None and path in behaviour.trickle:
            body = (Path(self.directory) / path.lstrip("/")).read_bytes()
        if body is None:
            # The client may give up (a timeout test): nothing to report then.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                super().do_GET()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        pause = behaviour.trickle.get(path)
        try:
            if pause is None:
                self.wfile.write(body)
                return
            for index in range(len(body)):
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            return


@dataclass
class RepoServer:
    root: Path
    port: int
    behaviour: Behaviour
    _server: http.server.ThreadingHTTPServer

    @property
    def mirror(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/debian"

    @property
    def security_mirror(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/debian-security"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve(root: Path) -> RepoServer:
    behaviour = Behaviour()

    class Handler(_Handler):
        pass

    Handler.behaviour = behaviour

    def factory(*args: object, **kwargs: object) -> Handler:
        return Handler(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), factory)  # type: ignore[arg-type]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return RepoServer(root, server.server_address[1], behaviour, server)


def served(root: Path) -> Iterator[RepoServer]:
    server = serve(root)
    try:
        yield server
    finally:
        server.stop()


def _run(argv: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result.stdout
