"""Property tests for the inspector's parsers: never crash on arbitrary text, round-trip valid data."""

from __future__ import annotations

import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardening.errors import InspectError
from hardening.inspect.accounts import (
    GroupEntry,
    PasswdEntry,
    parse_group,
    parse_passwd,
    resolve_user,
)
from hardening.inspect.dpkg import DpkgPackage, parse_dpkg_status
from hardening.inspect.facts import inspect_stream
from hardening.inspect.gobuild import parse_modinfo, read_go_buildinfo
from hardening.inspect.pydist import normalise_name, parse_metadata_headers
from tests.unit.imagetar import directory, file, go_elf, legacy_save, whiteout

package_names = st.from_regex(r"[a-z0-9][a-z0-9+.-]{1,30}", fullmatch=True)
versions = st.from_regex(r"([1-9]:)?[0-9][A-Za-z0-9.+~]{0,12}(-[A-Za-z0-9.+~]{1,8})?", fullmatch=True)
field_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=":\n\r\x85\u2028\u2029"),
    max_size=20,
)
ids = st.integers(min_value=0, max_value=2**32 - 1)


class BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def size(self) -> int:
        return len(self._data)

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0:
            return b""
        return self._data[offset : offset + length]


@given(st.text())
def test_dpkg_parser_survives_any_text(text: str) -> None:
    for package in parse_dpkg_status(text):
        assert package.name and package.version


@st.composite
def dpkg_packages(draw: st.DrawFn) -> DpkgPackage:
    name = draw(package_names)
    version = draw(versions)
    source = draw(st.one_of(st.none(), package_names))
    source_version = draw(st.one_of(st.none(), versions)) if source else None
    return DpkgPackage(
        name=name,
        version=version,
        source_name=source or name,
        source_version=source_version or version,
        architecture=draw(st.sampled_from(["amd64", "all", "arm64"])),
        status="install ok installed",
    )


def render_status(packages: list[DpkgPackage]) -> str:
    paragraphs = []
    for p in packages:
        lines = [f"Package: {p.name}", f"Status: {p.status}", f"Architecture: {p.architecture}"]
        if p.source_name != p.name or p.source_version != p.version:
            source = p.source_name
            if p.source_version != p.version:
                source += f" ({p.source_version})"
            lines.append(f"Source: {source}")
        lines += [f"Version: {p.version}", "Description: something", " continued line: with colon"]
        paragraphs.append("\n".join(lines) + "\n")
    return "\n".join(paragraphs)


@given(st.lists(dpkg_packages(), max_size=8))
def test_dpkg_status_round_trips(packages: list[DpkgPackage]) -> None:
    assert list(parse_dpkg_status(render_status(packages))) == packages


def test_dpkg_source_forms() -> None:
    text = (
        "Package: a\nVersion: 1\nSource: src\n\n"
        "Package: b\nVersion: 2\nSource: src (1.5-1)\n\n"
        "Package: c\nVersion: 3\nStatus: purge ok not-installed\n\n"
        "Package: d\nVersion: 4\nStatus: install ok half-configured\n"
    )
    assert [(p.name, p.source_name, p.source_version) for p in parse_dpkg_status(text)] == [
        ("a", "src", "1"),
        ("b", "src", "1.5-1"),
        ("d", "d", "4"),
    ]


@given(st.text())
def test_account_parsers_survive_any_text(text: str) -> None:
    parse_passwd(text)
    parse_group(text)


@st.composite
def passwd_entries(draw: st.DrawFn) -> PasswdEntry:
    return PasswdEntry(
        name=draw(st.from_regex(r"[a-z_][a-z0-9_-]{0,15}", fullmatch=True)),
        uid=draw(ids),
        gid=draw(ids),
        home=draw(field_text),
        shell=draw(field_text),
        gecos=draw(field_text),
    )


@given(st.lists(passwd_entries(), max_size=8))
def test_passwd_round_trips(entries: list[PasswdEntry]) -> None:
    text = "".join(f"{e.name}:x:{e.uid}:{e.gid}:{e.gecos}:{e.home}:{e.shell}\n" for e in entries)
    assert list(parse_passwd("# comment\n\n" + text + "broken:line\n")) == entries


@given(
    st.lists(
        st.builds(
            GroupEntry,
            name=st.from_regex(r"[a-z_][a-z0-9_-]{0,15}", fullmatch=True),
            gid=ids,
            members=st.lists(st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), max_size=3).map(tuple),
        ),
        max_size=8,
    )
)
def test_group_round_trips(entries: list[GroupEntry]) -> None:
    text = "".join(f"{g.name}:x:{g.gid}:{','.join(g.members)}\n" for g in entries)
    assert list(parse_group(text)) == entries


@given(st.text(max_size=40), st.lists(passwd_entries(), max_size=4))
def test_resolve_user_survives_any_spec(spec: str, passwd: list[PasswdEntry]) -> None:
    result = resolve_user(spec, passwd, ())
    if result is not None:
        assert all(0 <= value < 2**32 for value in result)


@given(passwd_entries())
def test_resolve_user_by_name_and_uid_agree(entry: PasswdEntry) -> None:
    if entry.name.isdigit():
        return
    assert resolve_user(entry.name, [entry], ()) == (entry.uid, entry.gid)
    assert resolve_user(f"{entry.uid}", [entry], ()) == (entry.uid, entry.gid)
    assert resolve_user(f"{entry.name}:7", [entry], ()) == (entry.uid, 7)


@given(st.text())
def test_metadata_parser_survives_any_text(text: str) -> None:
    parse_metadata_headers(text)


@given(
    st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?", fullmatch=True),
    st.from_regex(r"[0-9]+(\.[0-9]+){0,3}(\.post[0-9]+|rc[0-9]+)?", fullmatch=True),
)
def test_metadata_round_trips(name: str, version: str) -> None:
    text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nName: body\n"
    headers = parse_metadata_headers(text)
    assert (headers["name"], headers["version"]) == (name, version)
    assert normalise_name(normalise_name(name)) == normalise_name(name)
    assert normalise_name(name.upper().replace("-", "_")) == normalise_name(name)


@given(st.binary(max_size=4096))
def test_go_buildinfo_reader_survives_any_bytes(data: bytes) -> None:
    read_go_buildinfo(BytesReader(b"\x7fELF" + data))
    read_go_buildinfo(BytesReader(data))


@given(st.text())
def test_modinfo_parser_survives_any_text(text: str) -> None:
    parse_modinfo("go1.22", text)


@given(st.binary(max_size=200), st.integers(min_value=0), st.integers(min_value=1, max_value=4))
def test_elf_with_corrupted_header_tables_never_crashes(noise: bytes, where: int, times: int) -> None:
    elf = bytearray(go_elf())
    for step in range(times):
        offset = (where + step * 7919) % len(elf)
        elf[offset : offset + len(noise)] = noise
    read_go_buildinfo(BytesReader(bytes(elf[: len(go_elf())])))


VALID = legacy_save(
    [
        [directory("etc"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), file("bin/x", go_elf(), 0o755)],
        [whiteout("bin/x"), file("var/lib/dpkg/status", "Package: a\nVersion: 1\n")],
    ]
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.binary(min_size=1, max_size=64), st.booleans())
def test_damaged_archives_raise_inspect_error_or_read(offset: int, noise: bytes, truncate: bool) -> None:
    data = bytearray(VALID)
    if truncate:
        data = data[:offset]
    else:
        data[offset : offset + len(noise)] = noise
    # Either facts or InspectError; any other exception is a bug.
    with contextlib.suppress(InspectError):
        inspect_stream(io.BytesIO(bytes(data)), reference="example/app:1")
