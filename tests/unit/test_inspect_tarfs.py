"""The merged filesystem view of a docker save archive: layouts, overlay rules, hostile input."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from hardening.errors import InspectError
from hardening.inspect.tarfs import (
    AnomalyKind,
    FileKind,
    ImageArchive,
    ImageFilesystem,
    read_descriptors,
    read_image_stream,
    read_image_tar,
)
from tests.unit.imagetar import (
    Entry,
    add_member,
    device,
    directory,
    file,
    hardlink,
    layer_tar,
    legacy_save,
    oci_save,
    opaque,
    symlink,
    whiteout,
)

Save = Callable[[list[list[Entry]]], bytes]

SAVES: dict[str, Save] = {
    "legacy": lambda layers: legacy_save(layers),
    "oci": lambda layers: oci_save(layers),
    "oci-gzip": lambda layers: oci_save(layers, compress=True),
    "oci+manifest.json": lambda layers: oci_save(layers, docker_manifest=True),
    "oci-nested-index": lambda layers: oci_save(layers, nested_index=True),
}


@pytest.fixture(params=sorted(SAVES))
def save(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[list[list[Entry]]], ImageArchive[object]]:
    """Write an archive in one layout and read it back; every overlay test runs on every layout."""
    writer = SAVES[request.param]

    def run(layers: list[list[Entry]]) -> ImageArchive[object]:
        path = tmp_path / "image.tar"
        path.write_bytes(writer(layers))
        return read_image_tar(path, reference="example/app:1")

    return run


@pytest.mark.parametrize("layout", sorted(SAVES))
def test_descriptors_name_the_same_config_and_blobs_as_a_full_read(layout: str, tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    path.write_bytes(SAVES[layout]([[file("a", "1")], [file("b", "2")]]))
    full = read_image_tar(path, reference="example/app:1")
    descriptors = read_descriptors(path, reference="example/app:1")
    assert descriptors.config_bytes == full.config_bytes
    assert [(d.blob, d.size, d.compressed) for d in descriptors.layers] == [
        (layer.blob, layer.blob_size, layer.compressed) for layer in full.layers
    ]
    assert descriptors.layers[0].compressed is (layout == "oci-gzip")
    assert descriptors.anomalies == ()


BASE = [
    directory("etc"),
    file("etc/hostname", "base\n"),
    directory("usr"),
    directory("usr/bin"),
    file("usr/bin/tool", b"#!/bin/sh\n", mode=0o755),
    directory("opt/app", mode=0o755),
    file("opt/app/one", "1"),
    file("opt/app/two", "2"),
]


def test_layers_merge_and_remember_who_wrote_what(save: Callable[..., ImageArchive[object]]) -> None:
    archive = save([BASE, [file("etc/hostname", "override\n"), file("etc/new", "n")]])
    fs = archive.filesystem
    assert [layer.index for layer in archive.layers] == [0, 1]
    assert all(layer.diff_id.startswith("sha256:") for layer in archive.layers)
    hostname = fs.get("/etc/hostname")
    assert hostname is not None and hostname.layer == 1 and hostname.size == len("override\n")
    tool = fs.get("/usr/bin/tool")
    assert tool is not None and tool.layer == 0 and tool.is_executable
    assert fs.listdir("/etc") == ("hostname", "new")
    assert archive.anomalies == ()


def test_whiteout_hides_the_lower_file_only(save: Callable[..., ImageArchive[object]]) -> None:
    fs = save([BASE, [whiteout("usr/bin/tool"), whiteout("etc/never-existed")]]).filesystem
    assert fs.get("/usr/bin/tool") is None
    assert fs.get("/usr/bin") is not None
    assert all(".wh." not in entry.path for entry in fs.walk())


def test_whiteout_of_a_directory_removes_its_tree(save: Callable[..., ImageArchive[object]]) -> None:
    fs = save([BASE, [whiteout("opt/app")]]).filesystem
    assert fs.get("/opt/app") is None
    assert fs.get("/opt/app/one") is None
    assert fs.listdir("/opt") == ()


def test_file_recreated_after_whiteout_in_a_later_layer_is_back(
    save: Callable[..., ImageArchive[object]],
) -> None:
    fs = save([BASE, [whiteout("usr/bin/tool")], [file("usr/bin/tool", "new", mode=0o700)]]).filesystem
    tool = fs.get("/usr/bin/tool")
    assert tool is not None and tool.layer == 2 and tool.mode == 0o700


def test_whiteout_does_not_hide_an_entry_of_its_own_layer(
    save: Callable[..., ImageArchive[object]],
) -> None:
    # The tar order puts the new file before the whiteout; whiteouts only ever hide lower layers.
    fs = save([BASE, [file("usr/bin/tool", "replaced"), whiteout("usr/bin/tool")]]).filesystem
    tool = fs.get("/usr/bin/tool")
    assert tool is not None and tool.layer == 1


def test_opaque_directory_hides_lower_children_but_keeps_its_own(
    save: Callable[..., ImageArchive[object]],
) -> None:
    fs = save([BASE, [file("opt/app/three", "3"), directory("opt/app"), opaque("opt/app")]]).filesystem
    assert fs.listdir("/opt/app") == ("three",)
    app = fs.get("/opt/app")
    assert app is not None and app.layer == 1


def test_directory_over_directory_keeps_children_and_takes_new_mode(
    save: Callable[..., ImageArchive[object]],
) -> None:
    fs = save([BASE, [directory("opt/app", mode=0o700)]]).filesystem
    assert fs.listdir("/opt/app") == ("one", "two")
    app = fs.get("/opt/app")
    assert app is not None and app.mode == 0o700 and app.layer == 1


def test_file_replacing_a_directory_drops_the_tree(save: Callable[..., ImageArchive[object]]) -> None:
    fs = save([BASE, [file("opt/app", "now a file")]]).filesystem
    entry = fs.get("/opt/app")
    assert entry is not None and entry.kind is FileKind.FILE
    assert fs.get("/opt/app/one") is None


def test_implicit_parents_are_created_and_marked(save: Callable[..., ImageArchive[object]]) -> None:
    fs = save([[file("srv/deep/down/file", "x")]]).filesystem
    parent = fs.get("/srv/deep")
    assert parent is not None and parent.kind is FileKind.DIRECTORY and parent.implicit


def test_symlinks_resolve_inside_the_image_only(save: Callable[..., ImageArchive[object]]) -> None:
    fs = save(
        [
            BASE,
            [
                symlink("bin", "usr/bin"),
                symlink("usr/bin/abs", "/etc/hostname"),
                symlink("usr/bin/up", "../../../../../../etc/hostname"),
                symlink("usr/bin/dangling", "/nope"),
            ],
        ]
    ).filesystem
    assert fs.resolve("/bin/tool") == "/usr/bin/tool"
    assert fs.resolve("/bin/abs") == "/etc/hostname"
    assert fs.resolve("/bin/up") == "/etc/hostname"
    assert fs.resolve("/usr/bin/dangling") is None
    assert fs.resolve("/bin", follow_last=False) == "/bin"
    entry = fs.lookup("/bin/abs")
    assert entry is not None and entry.path == "/etc/hostname"


def test_symlink_loops_and_escapes_are_anomalies(save: Callable[..., ImageArchive[object]]) -> None:
    archive = save(
        [
            [
                symlink("a", "b"),
                symlink("b", "a"),
                symlink("self", "self/x"),
                symlink("etc-out", "../../../etc"),
            ]
        ]
    )
    fs = archive.filesystem
    assert fs.resolve("/a") is None
    assert fs.resolve("/self") is None
    kinds = {(a.path, a.kind) for a in archive.anomalies}
    assert ("/a", AnomalyKind.SYMLINK_LOOP) in kinds
    assert ("/b", AnomalyKind.SYMLINK_LOOP) in kinds
    assert ("/self", AnomalyKind.SYMLINK_LOOP) in kinds
    assert ("/etc-out", AnomalyKind.SYMLINK_ESCAPES_ROOT) in kinds


def test_hostile_names_are_reported_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    image = tmp_path / "deep" / "image.tar"
    image.write_bytes(
        legacy_save(
            [
                [
                    file("../escape.txt", "boom"),
                    file("../../../../etc/cron.d/evil", "* * * * * root sh"),
                    file("ok/../../escape2.txt", "boom"),
                    file("/etc/absolute", "abs"),
                    hardlink("etc/link", "../../etc/shadow"),
                    device("dev/mem", 1, 1),
                    device("dev/sda", 8, 0, kind=b"4"),
                    hardlink("usr/bin/ghost", "usr/bin/missing"),
                    file("etc/dup", "1"),
                    file("etc/dup", "2"),
                ]
            ]
        )
    )
    before = sorted(os.walk(tmp_path))
    archive: ImageArchive[object] = read_image_tar(image, reference="example/app:1")
    assert sorted(os.walk(tmp_path)) == before
    fs = archive.filesystem
    kinds = sorted((a.kind, a.path) for a in archive.anomalies)
    assert (AnomalyKind.PATH_TRAVERSAL, "../escape.txt") in kinds
    assert (AnomalyKind.PATH_TRAVERSAL, "../../../../etc/cron.d/evil") in kinds
    assert (AnomalyKind.PATH_TRAVERSAL, "ok/../../escape2.txt") in kinds
    assert (AnomalyKind.PATH_TRAVERSAL, "../../etc/shadow") in kinds
    assert (AnomalyKind.ABSOLUTE_PATH, "/etc/absolute") in kinds
    assert (AnomalyKind.DEVICE_FILE, "/dev/mem") in kinds
    assert (AnomalyKind.DEVICE_FILE, "/dev/sda") in kinds
    assert (AnomalyKind.HARDLINK_MISSING_TARGET, "/usr/bin/ghost") in kinds
    assert (AnomalyKind.DUPLICATE_ENTRY, "/etc/dup") in kinds
    assert all(a.layer == 0 for a in archive.anomalies)
    # Absolute names land inside the image, as the engine would put them.
    assert fs.get("/etc/absolute") is not None
    assert fs.get("/escape.txt") is None and fs.get("/etc/cron.d/evil") is None
    assert fs.get("/etc/link") is None
    mem = fs.get("/dev/mem")
    assert mem is not None and mem.kind is FileKind.CHAR_DEVICE


def test_hardlink_reports_the_target_file() -> None:
    data = legacy_save(
        [[file("usr/sbin/gosu", b"x" * 100, mode=0o4755), hardlink("usr/bin/runas", "usr/sbin/gosu")]]
    )
    archive: ImageArchive[object] = read_image_stream(io.BytesIO(data), reference="example/app:1")
    link = archive.filesystem.get("/usr/bin/runas")
    assert link is not None
    assert link.kind is FileKind.FILE and link.size == 100 and link.mode == 0o4755
    assert link.hardlink_to == "/usr/sbin/gosu"


def test_non_directory_parent_is_replaced_like_overlay_does() -> None:
    data = legacy_save([[symlink("lib", "usr/lib")], [file("lib/x.so", "x")]])
    archive: ImageArchive[object] = read_image_stream(io.BytesIO(data), reference="example/app:1")
    assert (AnomalyKind.NON_DIRECTORY_PARENT, "/lib") in {(a.kind, a.path) for a in archive.anomalies}
    lib = archive.filesystem.get("/lib")
    assert lib is not None and lib.kind is FileKind.DIRECTORY


def test_repeated_layer_stored_once_via_symlink_in_legacy_layout(tmp_path: Path) -> None:
    same = [file("a", "same")]
    path = tmp_path / "image.tar"
    path.write_bytes(legacy_save([same, [whiteout("a")], same]))
    archive: ImageArchive[object] = read_image_tar(path, reference="example/app:1")
    assert len(archive.layers) == 3
    assert archive.layers[2].blob_size == archive.layers[0].blob_size > 0
    entry = archive.filesystem.get("/a")
    assert entry is not None and entry.layer == 2


def test_extract_sees_bounded_content_only_for_wanted_files(tmp_path: Path) -> None:
    big = b"A" * 5_000_000
    layers = [[file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), file("big.bin", big)]]
    seen: list[str] = []

    def wants(entry: object) -> int:
        path = getattr(entry, "path", "")
        return 1000 if path in ("/etc/passwd", "/big.bin") else 0

    def extract(entry: object, reader: object) -> bytes:
        seen.append(getattr(entry, "path", ""))
        return reader.read_at(0, 10**9)  # type: ignore[attr-defined, no-any-return]

    for compress in (False, True):
        path = tmp_path / f"image-{compress}.tar"
        path.write_bytes(oci_save(layers, compress=compress))
        fs = read_image_tar(path, wants=wants, extract=extract).filesystem
        assert fs.extracted("/etc/passwd") == b"root:x:0:0:root:/root:/bin/sh\n"
        assert fs.extracted("/big.bin") == b"A" * 1000
    assert sorted(seen) == ["/big.bin", "/big.bin", "/etc/passwd", "/etc/passwd"]


def test_non_seekable_stream_is_read(tmp_path: Path) -> None:
    class Pipe(io.RawIOBase):  # a pipe: readable, not seekable
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            chunk = self._data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    data = legacy_save([BASE])
    pipe = io.BufferedReader(Pipe(data))  # type: ignore[type-var]
    archive: ImageArchive[object] = read_image_stream(pipe, reference="example/app:1")
    assert archive.filesystem.get("/usr/bin/tool") is not None
    assert archive.repo_tags == ("example/app:1",)


def _end_of_members(data: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        last = tar.getmembers()[-1]
    return last.offset_data + (last.size + 511) // 512 * 512


@pytest.mark.parametrize("cut", ["start", "first-member", "middle", "last-member", "end-marker"])
@pytest.mark.parametrize("layout", ["legacy", "oci"])
def test_truncated_archive_raises(tmp_path: Path, cut: str, layout: str) -> None:
    data = (legacy_save if layout == "legacy" else oci_save)([BASE, [file("x", b"y" * 4000)]])
    end = _end_of_members(data)
    length = {
        "start": 100,
        "first-member": 1024,
        "middle": end // 2,
        "last-member": end - 10,
        "end-marker": end + 100,
    }[cut]
    path = tmp_path / "cut.tar"
    path.write_bytes(data[:length])
    with pytest.raises(InspectError) as raised:
        read_image_tar(path, reference="example/app:1")
    assert raised.value.diagnostics().startswith("error: cannot inspect image")


def test_archive_without_end_marker_is_readable_but_flagged(tmp_path: Path) -> None:
    data = legacy_save([BASE])
    path = tmp_path / "no-end.tar"
    path.write_bytes(data[: _end_of_members(data)])
    archive: ImageArchive[object] = read_image_tar(path, reference="example/app:1")
    assert (AnomalyKind.MISSING_END_OF_ARCHIVE, None) in {(a.kind, a.layer) for a in archive.anomalies}


@pytest.mark.parametrize(
    "content",
    [b"", b"not a tar at all\n" * 100, b"\x1f\x8b\x08\x00garbage", b"PK\x03\x04" + b"\x00" * 2000],
)
def test_non_tar_input_raises(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.tar"
    path.write_bytes(content)
    with pytest.raises(InspectError, match="not a readable tar archive"):
        read_image_tar(path, reference="x")


def test_tar_without_manifest_raises(tmp_path: Path) -> None:
    path = tmp_path / "plain.tar"
    path.write_bytes(layer_tar(BASE))
    with pytest.raises(InspectError, match=r"neither manifest\.json nor index\.json"):
        read_image_tar(path, reference="x")


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(InspectError, match="cannot open image archive"):
        read_image_tar(tmp_path / "absent.tar", reference="x")


def test_corrupt_layer_raises(tmp_path: Path) -> None:
    data = legacy_save([BASE])
    buffer = io.BytesIO(data)
    # Rewrite the archive with a layer that is not a tar.
    with tarfile.open(fileobj=buffer) as original:
        members = [(m, original.extractfile(m).read() if m.isfile() else None) for m in original]  # type: ignore[union-attr]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for member, payload in members:
            if member.name.endswith("layer.tar"):
                add_member(tar, member.name, b"\x00garbage" * 200)
            else:
                tar.addfile(member, io.BytesIO(payload) if payload is not None else None)
    path = tmp_path / "corrupt.tar"
    path.write_bytes(out.getvalue())
    with pytest.raises(InspectError, match="layer 0"):
        read_image_tar(path, reference="example/app:1")


def test_multi_image_archive_needs_a_matching_reference(tmp_path: Path) -> None:
    data = legacy_save([BASE])
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as original, tarfile.open(fileobj=out, mode="w") as tar:
        for member in original:
            payload = original.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name == "manifest.json":
                assert payload is not None
                entries = json.loads(payload)
                second = dict(entries[0], RepoTags=["other/app:2"])
                payload = json.dumps([*entries, second]).encode()
                member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload) if payload is not None else None)
    path = tmp_path / "two.tar"
    path.write_bytes(out.getvalue())
    assert read_image_tar(path, reference="other/app:2").repo_tags == ("other/app:2",)
    with pytest.raises(InspectError, match="holds 2 images") as raised:
        read_image_tar(path, reference="third:3")
    assert raised.value.hint is not None and "other/app:2" in raised.value.hint


def _archive_with_layer(tmp_path: Path, layer: bytes) -> Path:
    """A legacy archive around a hand-made layer blob."""
    data = legacy_save([[file("placeholder", "x")]])
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as original, tarfile.open(fileobj=out, mode="w") as tar:
        for member in original:
            payload = original.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name.endswith("layer.tar"):
                payload = layer
                member.size = len(layer)
            tar.addfile(member, io.BytesIO(payload) if payload is not None else None)
    path = tmp_path / "custom.tar"
    path.write_bytes(out.getvalue())
    return path


def test_gnu_long_names_and_base256_ids(tmp_path: Path) -> None:
    deep = "usr/share/" + "/".join(["a-rather-long-directory-name"] * 8) + "/file.txt"
    target = "usr/lib/" + "x" * 150
    layer = layer_tar(
        [
            file(deep, "deep", uid=3_000_000_000, gid=2**31),
            file(target, "t"),
            symlink("usr/lib/link", "/" + target),
        ],
        tar_format=tarfile.GNU_FORMAT,
    )
    fs: ImageFilesystem[object] = read_image_tar(_archive_with_layer(tmp_path, layer)).filesystem
    entry = fs.get("/" + deep)
    assert entry is not None and (entry.uid, entry.gid, entry.size) == (3_000_000_000, 2**31, 4)
    assert fs.resolve("/usr/lib/link") == "/" + target


def test_pax_global_header_applies_to_following_members(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"uid": "4242"}
    ) as tar:
        info, data = file("etc/owned", "x")
        tar.addfile(info, io.BytesIO(data or b""))
    fs: ImageFilesystem[object] = read_image_tar(_archive_with_layer(tmp_path, buffer.getvalue())).filesystem
    entry = fs.get("/etc/owned")
    assert entry is not None and entry.uid == 4242


def test_layer_with_bad_header_checksum_raises(tmp_path: Path) -> None:
    layer = bytearray(layer_tar([file("a", "x"), file("b", "y")]))
    # Flip a byte of the second header's name: its checksum no longer matches.
    second = layer.index(b"b\x00")
    layer[second] = ord("c")
    with pytest.raises(InspectError, match="bad header checksum"):
        read_image_tar(_archive_with_layer(tmp_path, bytes(layer)))


def test_layer_cut_inside_a_member_raises(tmp_path: Path) -> None:
    layer = layer_tar([file("a", b"x" * 5000)])
    with pytest.raises(InspectError, match="truncated"):
        read_image_tar(_archive_with_layer(tmp_path, layer[:2048]))


def test_layer_without_end_marker_is_flagged(tmp_path: Path) -> None:
    layer = layer_tar([file("a", b"x" * 100)])
    archive: ImageArchive[object] = read_image_tar(_archive_with_layer(tmp_path, layer[:1024]))
    assert (AnomalyKind.MISSING_END_OF_ARCHIVE, 0) in {(a.kind, a.layer) for a in archive.anomalies}
    assert archive.filesystem.get("/a") is not None
