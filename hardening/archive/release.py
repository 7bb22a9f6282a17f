"""A suite's ``InRelease``: signature checked with ``gpgv`` and the archive keyring, then parsed.

Everything read from the mirror afterwards is trusted only through this file: the ``Packages``
indexes by the SHA-256 sums it lists, the ``.deb`` files by the sums in those indexes. So it is
verified the way apt verifies it — ``gpgv`` against the keyring, at least one good signature and
no bad one, the signed text only (never what surrounds it), the suite it names being the suite
asked for (a mirror cannot answer ``bookworm-security`` with another suite's file) and not past
its ``Valid-Until``.
"""

from __future__ import annotations

import email.utils
import hashlib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from debian import deb822

from hardening.archive.fetch import Fetcher
from hardening.errors import ArchiveError, ArchiveTrustError
from hardening.process import run_program

# debian-archive-keyring on the host; it carries the keys of bookworm and trixie (and the
# security archive's) — the archive is signed ahead with the next release's key too.
DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
INRELEASE_LIMIT = 16 * 1024 * 1024
_GPGV_TIMEOUT = 60.0


@dataclass(frozen=True)
class IndexFile:
    """One file a Release lists: its path below ``dists/<suite>/``, SHA-256 and size."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Release:
    """The verified, parsed Release of one suite (pocket) on one mirror."""

    mirror: str
    suite: str
    codename: str
    version: str
    date: datetime
    valid_until: datetime | None
    by_hash: bool
    components: tuple[str, ...]
    architectures: tuple[str, ...]
    files: Mapping[str, IndexFile]
    signers: tuple[str, ...]
    sha256: str

    @property
    def url(self) -> str:
        return f"{self.mirror.rstrip('/')}/dists/{self.suite}/InRelease"

    @property
    def major(self) -> str | None:
        """The Debian release number (``12`` from ``Version: 12.8``), None for testing/unstable."""
        head = self.version.split(".", 1)[0]
        return head if head.isdigit() else None


def fetch_release(
    fetcher: Fetcher, mirror: str, suite: str, keyrings: Sequence[Path], *, now: datetime | None = None
) -> Release:
    """Download ``dists/<suite>/InRelease`` from ``mirror``, verify and parse it."""
    url = f"{mirror.rstrip('/')}/dists/{suite}/InRelease"
    data = fetcher.get(url, limit=INRELEASE_LIMIT, what=f"the Release file of {suite}")
    text, signers = verify_signature(data, keyrings, where=url)
    return parse_release(
        text,
        mirror=mirror,
        suite=suite,
        signers=signers,
        sha256=hashlib.sha256(data).hexdigest(),
        now=now or datetime.now(UTC),
    )


def verify_signature(data: bytes, keyrings: Sequence[Path], *, where: str) -> tuple[str, tuple[str, ...]]:
    """The signed text of a clear-signed file and the fingerprints of its good signatures."""
    missing = [str(k) for k in keyrings if not k.is_file()]
    if not keyrings or missing:
        raise ArchiveError(
            f"the archive keyring {', '.join(missing) or '(none given)'} does not exist",
            hint="install debian-archive-keyring (apt-get install debian-archive-keyring) or pass --keyring",
        )
    with tempfile.TemporaryDirectory(prefix="hardening-gpgv-") as tmp:
        signed = Path(tmp) / "InRelease"
        plain = Path(tmp) / "Release"
        signed.write_bytes(data)
        argv = ["gpgv", "--status-fd", "1", "--homedir", tmp]
        for keyring in keyrings:
            argv += ["--keyring", str(keyring.resolve())]
        argv += ["--output", str(plain), str(signed)]
        result = run_program(
            argv,
            what=f"gpgv (checking {where})",
            error=ArchiveError,
            timeout=_GPGV_TIMEOUT,
            start_hint="install gpgv (apt-get install gpgv)",
        )
        good, bad = _signatures(result.output)
        if bad or not good or not plain.is_file():
            raise ArchiveTrustError(
                f"the signature of {where} does not verify with {', '.join(map(str, keyrings))}",
                hint="the mirror serves a file the Debian archive did not sign; do not use it "
                "(or, for a private archive, pass its key with --keyring)",
                details=(result.stderr_tail or result.output).strip() or None,
            )
        try:
            text = plain.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ArchiveTrustError(f"the signed Release text of {where} is not UTF-8") from exc
    return text, good


def _signatures(status: str) -> tuple[tuple[str, ...], bool]:
    """(fingerprints with a good signature, whether any signature was bad) from gpg's status lines."""
    good_ids: set[str] = set()
    fingerprints: list[str] = []
    bad = False
    for line in status.splitlines():
        words = line.split()
        if len(words) < 3 or words[0] != "[GNUPG:]":
            continue
        if words[1] == "GOODSIG":
            good_ids.add(words[2])
        elif words[1] == "BADSIG":
            bad = True
        elif words[1] == "VALIDSIG" and any(words[2].endswith(key_id) for key_id in good_ids):
            # An expired or revoked key also yields VALIDSIG, but EXPKEYSIG/REVKEYSIG instead of
            # GOODSIG; only signatures gpg called good count.
            fingerprints.append(words[2])
    return tuple(fingerprints), bad


def parse_release(
    text: str, *, mirror: str, suite: str, signers: tuple[str, ...], sha256: str, now: datetime
) -> Release:
    """Parse a verified Release text; ``ArchiveTrustError`` when it is not the one asked for."""
    where = f"{mirror.rstrip('/')}/dists/{suite}/InRelease"
    fields = deb822.Release(text)
    codename = fields.get("Codename", "")
    if suite not in (codename, fields.get("Suite", "")):
        raise ArchiveTrustError(
            f"{where} is the Release of {codename or fields.get('Suite') or 'an unnamed suite'}, not {suite}",
            hint="the mirror answers one suite with another's files; check the mirror",
        )
    date = _date(fields.get("Date"), where, "Date")
    if date is None:
        raise ArchiveTrustError(f"{where} has no Date field")
    valid_until = _date(fields.get("Valid-Until"), where, "Valid-Until")
    if valid_until is not None and now > valid_until:
        raise ArchiveTrustError(
            f"{where} expired on {valid_until.isoformat()} (Valid-Until)",
            hint="the mirror has stopped updating; use a current mirror",
        )
    files: dict[str, IndexFile] = {}
    for entry in fields.get("SHA256") or ():
        try:
            files[entry["name"]] = IndexFile(entry["name"], entry["sha256"].lower(), int(entry["size"]))
        except (KeyError, ValueError) as exc:
            raise ArchiveTrustError(f"{where} has a malformed SHA256 entry: {entry}") from exc
    if not files:
        raise ArchiveTrustError(
            f"{where} lists no SHA256 sums", hint="indexes cannot be checked without them"
        )
    return Release(
        mirror=mirror,
        suite=suite,
        codename=codename,
        version=fields.get("Version", ""),
        date=date,
        valid_until=valid_until,
        by_hash=fields.get("Acquire-By-Hash", "").strip().lower() == "yes",
        # The security archive names its components "updates/main"; its files live under "main/".
        components=tuple(c.rsplit("/", 1)[-1] for c in fields.get("Components", "").split()),
        architectures=tuple(fields.get("Architectures", "").split()),
        files=files,
        signers=signers,
        sha256=sha256,
    )


def _date(value: str | None, where: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise ArchiveTrustError(f"{where} has an unreadable {name}: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
