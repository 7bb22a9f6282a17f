"""Which state of the Debian archive a build used: the ``Date`` of each suite's signed Release.

The archive moves; a package version is an input only together with the archive state that
served it. For the base, the Release files apt itself verified in the root filesystem are read
before the apt lists are removed. For an image, whose ``apt-get update`` runs inside the engine
and leaves no lists behind, the three pockets of the base's suite are fetched and verified on the
host right after the build (``hardening.archive``): the state the build's own apt saw, unless the
archive changed during those minutes.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

_SIGNED_START = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE_START = "-----BEGIN PGP SIGNATURE-----"


@dataclass(frozen=True)
class ReleaseState:
    suite: str
    date: str  # RFC 3339, UTC
    sha256: str  # of the InRelease file as served
    mirror: str = ""

    def to_json(self) -> dict[str, str]:
        return {"suite": self.suite, "date": self.date, "sha256": self.sha256, "mirror": self.mirror}

    @classmethod
    def from_json(cls, doc: object) -> ReleaseState | None:
        if not isinstance(doc, dict):
            return None
        values = [doc.get(key) for key in ("suite", "date", "sha256")]
        if not all(isinstance(value, str) and value for value in values):
            return None
        return cls(str(doc["suite"]), str(doc["date"]), str(doc["sha256"]), str(doc.get("mirror") or ""))


def label_text(states: Sequence[ReleaseState]) -> str:
    """The states as a label value (images built on the base inherit it)."""
    return json.dumps([s.to_json() for s in states], sort_keys=True, separators=(",", ":"))


def parse_label(text: str | None) -> tuple[ReleaseState, ...]:
    try:
        doc = json.loads(text or "[]")
    except ValueError:
        return ()
    states = [ReleaseState.from_json(item) for item in doc] if isinstance(doc, list) else []
    return tuple(s for s in states if s is not None)


def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        if not line or line[0].isspace():
            continue
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    return ""


def _rfc3339(value: str) -> str:
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def releases_in_rootfs(rootfs: Path) -> tuple[ReleaseState, ...]:
    """The Release files apt verified in ``rootfs`` (``var/lib/apt/lists/*InRelease``), by suite."""
    lists = rootfs / "var/lib/apt/lists"
    states: list[ReleaseState] = []
    for path in sorted(lists.glob("*Release")) if lists.is_dir() else ():
        if path.name.endswith(".gpg"):
            continue
        data = path.read_bytes()
        text = data.decode("utf-8", "replace")
        if _SIGNED_START in text:
            text = text.split("\n\n", 1)[-1].split(_SIGNATURE_START, 1)[0]
        suite = _field(text, "Codename") or _field(text, "Suite")
        date = _rfc3339(_field(text, "Date"))
        if suite and date:
            states.append(ReleaseState(suite, date, hashlib.sha256(data).hexdigest()))
    return tuple(sorted(states, key=lambda s: s.suite))


def observe_archive(
    suite: str, mirror: str, security_mirror: str | None, *, timeout: float = 60.0
) -> tuple[ReleaseState, ...]:
    """The verified Release of every pocket of ``suite`` as the mirrors serve it now."""
    # The archive reader (python-debian, gpgv) loads only when a build needs it.
    from hardening.archive.fetch import Fetcher
    from hardening.archive.release import DEFAULT_KEYRING, fetch_release
    from hardening.archive.snapshot import Pocket

    fetcher = Fetcher(timeout=timeout)
    states = []
    for pocket in Pocket:
        where = security_mirror if pocket is Pocket.SECURITY else mirror
        if not where:
            continue
        release = fetch_release(fetcher, where, pocket.suite(suite), (DEFAULT_KEYRING,))
        date = release.date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        states.append(ReleaseState(release.suite, date, release.sha256, where))
    return tuple(states)
