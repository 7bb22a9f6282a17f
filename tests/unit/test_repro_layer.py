"""The canonical rewrite of one layer: order, times, owners, header noise, build records."""

from __future__ import annotations

import io
import tarfile

import pytest

from hardening.errors import BuildError
from hardening.inspect.tarstream import BLOCK, TarEnd, WindowSource, members
from hardening.repro import rules
from hardening.repro.layer import normalise_layer
from hardening.repro.tarwrite import Header, encode
from tests.unit.imagetar import Entry, directory, file, hardlink, layer_tar, opaque, symlink, whiteout

EPOCH = 1_800_000_000


def _stamp(entry: Entry, mtime: float, uname: str = "", atime: float | None = None) -> Entry:
    info, data = entry
    info.mtime = mtime
    info.uname = info.gname = uname
    if atime is not None:
        info.pax_headers = {**info.pax_headers, "atime": str(atime), "ctime": str(atime)}
    return info, data


def _normalise(raw: bytes, **kwargs: object) -> tuple[bytes, object]:
    out = io.BytesIO()
    with io.BytesIO(raw) as handle:
        result = normalise_layer(WindowSource(handle, 0, len(raw)), out, epoch=EPOCH, **kwargs)  # type: ignore[arg-type]
    data = out.getvalue()
    assert result.diff_id == "sha256:" + __import__("hashlib").sha256(data).hexdigest()
    assert result.size == len(data)
    return data, result


def _entries(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def _build(order: list[Entry]) -> bytes:
    return layer_tar(order)


def test_two_builds_that_differ_only_in_noise_give_one_layer() -> None:
    # The second build's times are before the epoch: a layer the engine took from its cache.
    def build(late: float, uname: str, reverse: bool) -> bytes:
        entries = [
            _stamp(directory("etc"), late, uname, atime=late + 5),
            _stamp(file("etc/app.conf", b"port=1\n"), late, uname, atime=late + 7),
            _stamp(file("usr/lib/libx.so", b"\x7fELF..."), 1_600_000_000, uname),
            _stamp(symlink("usr/lib/libx.so.1", "libx.so"), late, uname),
            _stamp(directory("usr/lib"), late, uname),
        ]
        return _build(list(reversed(entries)) if reverse else entries)

    first, _ = _normalise(build(EPOCH + 100.25, "root", False))
    second, _ = _normalise(build(EPOCH - 86400 * 3 + 0.5, "", True))
    assert first == second
    found = _entries(first)
    assert [m.name for m in found] == [
        "etc",
        "etc/app.conf",
        "usr/lib",
        "usr/lib/libx.so",
        "usr/lib/libx.so.1",
    ]
    assert {m.mtime for m in found} == {EPOCH}
    assert all(m.uname == "" and m.gname == "" for m in found)
    assert all("atime" not in m.pax_headers and "ctime" not in m.pax_headers for m in found)


def test_rewriting_a_canonical_layer_changes_nothing() -> None:
    raw = _build([_stamp(file("b", b"2"), EPOCH + 1), _stamp(file("a", b"1"), EPOCH + 1)])
    once, _ = _normalise(raw)
    twice, _ = _normalise(once)
    assert once == twice


def test_build_records_are_removed_and_counted() -> None:
    raw = _build(
        [
            directory("var/log"),
            directory("var/log/apt"),
            file("var/log/dpkg.log", b"2026-12-01 07:07:29 install python3.11"),
            file("var/log/apt/history.log", b"Start-Date: 2026-12-01"),
            symlink("var/log/alternatives.log", "/dev/null"),
            file("var/cache/ldconfig/aux-cache", b"inode numbers"),
            file("var/lib/dpkg/status-old", b"Package: x"),
            file("var/lib/dpkg/status", b"Package: x"),
            file("var/cache/debconf/config.dat-old", b"old"),
            file("tmp/build-leftover", b"x"),
            directory("tmp", mode=0o1777),
            file("etc/ld.so.cache", b"cache"),
        ]
    )
    data, result = _normalise(raw)
    names = [m.name for m in _entries(data)]
    assert names == [
        "etc/ld.so.cache",
        "tmp",
        "var/lib/dpkg/status",
        "var/log",
        "var/log/alternatives.log",
        "var/log/apt",
    ]
    stats = result.stats  # type: ignore[attr-defined]
    assert stats.removed == {
        "ldconfig-aux-cache": 1,
        "logs": 2,
        "package-database-backups": 2,
        "temporary-files": 1,
    }
    assert "/var/log/dpkg.log" in stats.removed_paths


def test_a_path_a_package_lists_is_never_removed() -> None:
    raw = _build([file("var/log/faillog", b""), file("var/log/other.log", b"x")])
    data, result = _normalise(raw, owned=frozenset({"/var/log/faillog"}))
    assert [m.name for m in _entries(data)] == ["var/log/faillog"]
    assert result.stats.kept_owned == 1  # type: ignore[attr-defined]


def test_whiteouts_and_opaque_markers_are_kept_even_where_rules_remove_files() -> None:
    raw = _build([whiteout("var/log/dpkg.log"), opaque("var/log/postgresql"), whiteout("tmp/x")])
    data, _ = _normalise(raw)
    assert [m.name for m in _entries(data)] == [
        "tmp/.wh.x",
        "var/log/.wh.dpkg.log",
        "var/log/postgresql/.wh..wh..opq",
    ]


def _pyc(source_mtime: int, flags: int = 0) -> bytes:
    return (
        b"\xa7\r\r\n"
        + flags.to_bytes(4, "little")
        + source_mtime.to_bytes(4, "little")
        + b"\x10\x00\x00\x00code"
    )


def test_bytecode_stays_and_records_the_epoch_as_its_sources_mtime() -> None:
    raw = _build(
        [
            file("usr/lib/python3.11/json/__init__.py", b"x = 1\n"),
            file("usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc", _pyc(1_700_000_000)),
            file("opt/app/main.py", b"print(1)\n"),
            file("opt/app/__pycache__/main.cpython-311.opt-1.pyc", _pyc(EPOCH - 60)),
            file("opt/app/__pycache__/hashed.cpython-311.pyc", _pyc(123, flags=1)),
            file("opt/other/__pycache__/lower.cpython-311.pyc", _pyc(1_600_000_000)),  # source below
        ]
    )
    data, result = _normalise(raw)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:

        def mtime_in(name: str) -> int:
            return int.from_bytes(tar.extractfile(name).read()[8:12], "little")  # type: ignore[union-attr]

        assert mtime_in("usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc") == EPOCH
        assert mtime_in("opt/app/__pycache__/main.cpython-311.opt-1.pyc") == EPOCH
        assert mtime_in("opt/app/__pycache__/hashed.cpython-311.pyc") == 123  # hash-based: no time
        assert mtime_in("opt/other/__pycache__/lower.cpython-311.pyc") == 1_600_000_000
        assert {m.mtime for m in tar.getmembers()} == {EPOCH}
    assert result.stats.removed == {}  # type: ignore[attr-defined]
    assert rules.pyc_source("a/__pycache__/m.cpython-313.pyc") == "a/m.py"
    assert rules.pyc_source("a/m.pyc") is None


def test_dangling_certificate_links_go_only_when_dangling() -> None:
    raw = _build(
        [symlink("etc/ssl/certs/106d9c7f.0", "ssl-cert-snakeoil.pem"), symlink("etc/ssl/certs/a.0", "a.pem")]
    )
    data, _ = _normalise(raw, dangling=frozenset({"/etc/ssl/certs/106d9c7f.0"}))
    assert [m.name for m in _entries(data)] == ["etc/ssl/certs/a.0"]


def test_shadow_last_change_days_are_the_epoch_day() -> None:
    day = EPOCH // 86400
    shadow = f"root:*:{day - 30}:0:99999:7:::\napp:!:{day + 3}::::::\nnew:!:0::::::\nbad:x:::::::\n".encode()
    data, _ = _normalise(_build([file("etc/shadow", shadow, mode=0o640), file("etc/shadow-", shadow)]))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        text = tar.extractfile("etc/shadow").read().decode()  # type: ignore[union-attr]
    assert text == f"root:*:{day}:0:99999:7:::\napp:!:{day}::::::\nnew:!:0::::::\nbad:x:::::::\n"


def test_hard_links_are_ordered_so_the_first_path_carries_the_data() -> None:
    # The engine wrote z first and linked a to it; sorted, a comes first and must hold the data.
    raw = _build([file("z", b"payload", mode=0o755), hardlink("a", "z"), hardlink("m", "z")])
    data, _ = _normalise(raw)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        found = {m.name: m for m in tar.getmembers()}
        assert [m.name for m in tar.getmembers()] == ["a", "m", "z"]
        assert found["a"].isfile() and tar.extractfile("a").read() == b"payload"  # type: ignore[union-attr]
        assert found["m"].islnk() and found["m"].linkname == "a"
        assert found["z"].islnk() and found["z"].linkname == "a"


def test_a_hard_link_whose_file_a_rule_removed_becomes_the_file() -> None:
    raw = _build([file("var/log/x.log", b"log"), hardlink("keep/x", "var/log/x.log")])
    data, _ = _normalise(raw)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert [m.name for m in tar.getmembers()] == ["keep/x"]
        assert tar.extractfile("keep/x").read() == b"log"  # type: ignore[union-attr]


def test_xattrs_long_names_and_large_ids_survive_byte_for_byte() -> None:
    info, payload = file("usr/bin/ping", b"\x7fELF", mode=0o755, uid=3_000_000, gid=70)
    capability = b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff"
    info.pax_headers = {"SCHILY.xattr.security.capability": capability.decode("latin-1")}
    long_name = "usr/share/" + "x" * 150 + "/ünïcode"
    raw = layer_tar([(info, payload), file(long_name, b"y"), symlink("l", "t" * 120)])
    data, _ = _normalise(raw)
    with io.BytesIO(data) as handle:
        found = {m.name: m for m in members(WindowSource(handle, 0, len(data)), TarEnd())}
    assert found["usr/bin/ping"].uid == 3_000_000
    assert found[long_name].size == 1
    assert found["l"].linkname == "t" * 120
    # tarfile hands PAX values over as text; the raw bytes are what the layer carried.
    assert dict(found["usr/bin/ping"].xattrs)["security.capability"] == capability.decode("latin-1").encode()


def test_a_layer_with_an_escaping_path_is_refused() -> None:
    raw = encode(Header("../etc/passwd", b"0", 0o644, 0, 0, 0, 0)) + bytes(2 * BLOCK)
    with pytest.raises(BuildError, match="leaves the layer"):
        _normalise(raw)


def test_every_rule_says_why() -> None:
    assert len({rule.name for rule in rules.RULES}) == len(rules.RULES)
    for rule in rules.RULES:
        assert len(rule.why) > 40 and rule.patterns and rule.kinds
