"""``/etc/passwd`` and ``/etc/group`` of an image, and resolving a Docker ``USER`` value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    gecos: str = ""


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...] = ()


def _id(text: str) -> int | None:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if value < 2**32 else None


def parse_passwd(text: str) -> tuple[PasswdEntry, ...]:
    """Well-formed lines only; NIS ``+``/``-`` lines, comments and junk are skipped."""
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) != 7 or not fields[0] or fields[0][0] in "+-#":
            continue
        uid, gid = _id(fields[2]), _id(fields[3])
        if uid is None or gid is None:
            continue
        entries.append(PasswdEntry(fields[0], uid, gid, fields[5], fields[6], fields[4]))
    return tuple(entries)


def parse_group(text: str) -> tuple[GroupEntry, ...]:
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) != 4 or not fields[0] or fields[0][0] in "+-#":
            continue
        gid = _id(fields[2])
        if gid is None:
            continue
        members = tuple(m for m in fields[3].split(",") if m)
        entries.append(GroupEntry(fields[0], gid, members))
    return tuple(entries)


def resolve_user(
    spec: str, passwd: Sequence[PasswdEntry], group: Sequence[GroupEntry]
) -> tuple[int, int] | None:
    """(uid, gid) the engine would run ``USER spec`` as, or None if the image cannot say.

    Follows the engine's rules: empty means root; a numeric uid need not exist in passwd (its
    gid is then the passwd one if any, else 0); a name must exist; an explicit group, by name or
    number, overrides the primary group.
    """
    spec = spec.strip()
    if not spec:
        return (0, 0)
    user_part, has_group, group_part = spec.partition(":")
    if not user_part:
        return None
    uid = _id(user_part)
    by_name = {e.name: e for e in passwd}
    if uid is None:
        entry = by_name.get(user_part)
        if entry is None:
            return None
        uid, gid = entry.uid, entry.gid
    else:
        entry = next((e for e in passwd if e.uid == uid), None)
        gid = entry.gid if entry else 0
    if has_group:
        explicit = _id(group_part)
        if explicit is None:
            match = next((g for g in group if g.name == group_part), None)
            if match is None:
                return None
            explicit = match.gid
        gid = explicit
    return (uid, gid)
