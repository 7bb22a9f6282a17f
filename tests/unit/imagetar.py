"""Build synthetic ``docker save`` archives in memory for the inspector's tests.

Both layouts: the legacy one (``manifest.json`` + ``<id>/layer.tar``, docker 20.10) and the OCI
one (``index.json`` + ``blobs/sha256/…``, newer engines, optionally with gzip layers). Entries are
described with small helpers (``file``, ``directory``, ``whiteout`` …) so a test reads like the
layer it describes. Also: a minimal ELF file carrying Go build information in the real format.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Entry = tuple[tarfile.TarInfo, bytes | None]


def _info(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = uid
    info.gid = gid
    info.mtime = 1_700_000_000
    return info


def file(path: str, data: bytes | str = b"", mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    payload = data.encode() if isinstance(data, str) else data
    info = _info(path, tarfile.REGTYPE, mode, uid, gid)
    info.size = len(payload)
    return info, payload


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    return _info(path, tarfile.DIRTYPE, mode, uid, gid), None


def symlink(path: str, target: str) -> Entry:
    info = _info(path, tarfile.SYMTYPE, 0o777)
    info.linkname = target
    return info, None


def hardlink(path: str, target: str, mode: int = 0o755) -> Entry:
    info = _info(path, tarfile.LNKTYPE, mode)
    info.linkname = target
    return info, None


def device(path: str, major: int = 1, minor: int = 3, kind: bytes = tarfile.CHRTYPE) -> Entry:
    info = _info(path, kind, 0o666)
    info.devmajor, info.devminor = major, minor
    return info, None


def whiteout(path: str) -> Entry:
    parent, _, name = path.rstrip("/").rpartition("/")
    return file(f"{parent}/.wh.{name}" if parent else f".wh.{name}")


def opaque(directory_path: str) -> Entry:
    return file(f"{directory_path.rstrip('/')}/.wh..wh..opq")


def layer_tar(
    entries: Iterable[Entry], *, compress: bool = False, tar_format: int = tarfile.PAX_FORMAT
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class ImageSpec:
    """What goes into the image config besides the layers."""

    user: str = ""
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = ("/bin/sh",)
    working_dir: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: Sequence[str] = ()
    healthcheck: dict[str, object] | None = None
    history: Sequence[dict[str, object]] | None = None


def image_config(raw_layers: Sequence[bytes], spec: ImageSpec | None = None) -> bytes:
    spec = spec or ImageSpec()
    config: dict[str, object] = {
        "User": spec.user,
        "Env": list(spec.env),
        "Entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
        "Cmd": list(spec.cmd) if spec.cmd is not None else None,
        "WorkingDir": spec.working_dir,
        "Labels": spec.labels or None,
    }
    if spec.exposed_ports:
        config["ExposedPorts"] = {port: {} for port in spec.exposed_ports}
    if spec.healthcheck is not None:
        config["Healthcheck"] = spec.healthcheck
    history = spec.history
    if history is None:
        history = [{"created_by": f"layer {i}"} for i in range(len(raw_layers))]
    document = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [sha256(_uncompressed(raw)) for raw in raw_layers]},
        "history": list(history),
    }
    return json.dumps(document, sort_keys=True).encode()


def _uncompressed(blob: bytes) -> bytes:
    return gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = _info(name, tarfile.REGTYPE, 0o644)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def legacy_save(
    layers: Sequence[Sequence[Entry]],
    spec: ImageSpec | None = None,
    *,
    tag: str = "example/app:1",
    extra: Iterable[Entry] = (),
) -> bytes:
    """A docker 20.10 style archive; a repeated layer is stored once and symlinked."""
    raw_layers = [layer_tar(entries) for entries in layers]
    config = image_config(raw_layers, spec)
    config_name = sha256(config).split(":")[1] + ".json"
    buffer = io.BytesIO()
    names: list[str] = []
    stored: dict[bytes, str] = {}
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for index, raw in enumerate(raw_layers):
            layer_id = hashlib.sha256(f"{index}".encode() + raw).hexdigest()
            names.append(f"{layer_id}/layer.tar")
            tar.addfile(directory(layer_id)[0])
            add_member(tar, f"{layer_id}/VERSION", b"1.0")
            add_member(tar, f"{layer_id}/json", json.dumps({"id": layer_id}).encode())
            if raw in stored:
                tar.addfile(symlink(f"{layer_id}/layer.tar", f"../{stored[raw]}")[0])
            else:
                stored[raw] = f"{layer_id}/layer.tar"
                add_member(tar, f"{layer_id}/layer.tar", raw)
        add_member(tar, config_name, config)
        manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": names}]
        add_member(tar, "manifest.json", json.dumps(manifest).encode())
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def oci_save(
    layers: Sequence[Sequence[Entry]],
    spec: ImageSpec | None = None,
    *,
    tag: str = "example/app:1",
    compress: bool = False,
    docker_manifest: bool = False,
    nested_index: bool = False,
) -> bytes:
    """An OCI image layout archive, as newer engines write (optionally with manifest.json too)."""
    blobs = [layer_tar(entries, compress=compress) for entries in layers]
    config = image_config(blobs, spec)
    layer_type = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": layer_type, "digest": sha256(blob), "size": len(blob)} for blob in blobs
            ],
        }
    ).encode()
    descriptor = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha256(manifest),
        "size": len(manifest),
        "annotations": {"io.containerd.image.name": tag, "org.opencontainers.image.ref.name": "1"},
    }
    documents = [manifest]
    if nested_index:
        inner = json.dumps({"schemaVersion": 2, "manifests": [descriptor]}).encode()
        documents.append(inner)
        descriptor = {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": sha256(inner),
            "size": len(inner),
            "annotations": {"io.containerd.image.name": tag},
        }
    index = json.dumps({"schemaVersion": 2, "manifests": [descriptor]}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_member(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        for blob in [*blobs, config, *documents]:
            add_member(tar, "blobs/sha256/" + sha256(blob).split(":")[1], blob)
        add_member(tar, "index.json", index)
        if docker_manifest:
            entry = {
                "Config": "blobs/sha256/" + sha256(config).split(":")[1],
                "RepoTags": [tag],
                "Layers": ["blobs/sha256/" + sha256(blob).split(":")[1] for blob in blobs],
            }
            add_member(tar, "manifest.json", json.dumps([entry]).encode())
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Go build information inside a minimal ELF executable.

# The sentinels cmd/go wraps around the module information (modload infoStart / infoEnd).
MODINFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
MODINFO_END = bytes.fromhex("f932433186182072008242104116d8f2")
GO_MAGIC = b"\xff Go buildinf:"

GOSU_MODINFO = (
    "path\tgithub.com/tianon/gosu\n"
    "mod\tgithub.com/tianon/gosu\t(devel)\t\n"
    "dep\tgithub.com/moby/sys/user\tv0.1.0\th1:WmZ93f5Ux6het5iituh9x2zAG7NFY9Aqi49jjE1PaQg=\n"
    "dep\tgolang.org/x/sys\tv0.1.0\th1:kunALQeHf1/185U1i0GOB/fy1IPRDDpuoOOqRReG57U=\n"
    "build\t-buildmode=exe\n"
    "build\t-compiler=gc\n"
    "build\tCGO_ENABLED=0\n"
    "build\tGOARCH=amd64\n"
    "build\tGOOS=linux\n"
)

_TEXT_VADDR = 0x400000
_DATA_OFFSET = 0x1000
_DATA_VADDR = 0x500000 + _DATA_OFFSET


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def go_elf(
    go_version: str = "go1.19.8",
    modinfo: str = GOSU_MODINFO,
    *,
    sections: bool = True,
    inline: bool = True,
    text_size: int = 0x800,
    data_prefix: int = 0,
) -> bytes:
    """A 64-bit little-endian ELF whose data segment starts with Go build information.

    ``inline`` writes the Go 1.18+ layout (varint-prefixed strings after the 32-byte header);
    otherwise the older layout with two pointers to Go string headers. ``sections`` adds a
    section table with ``.go.buildinfo``; without it readers must fall back to the first
    writable PT_LOAD segment. ``data_prefix`` puts that many bytes before the blob (kept
    16-byte aligned) to exercise the search.
    """
    framed = MODINFO_START + modinfo.encode() + MODINFO_END
    header_pad = b"\x00" * 16
    if inline:
        blob = (
            GO_MAGIC
            + bytes([8, 2])
            + header_pad
            + _uvarint(len(go_version))
            + go_version.encode()
            + _uvarint(len(framed))
            + framed
        )
    else:
        # Pointers to two string headers (ptr, len) placed after the 32-byte header.
        base = _DATA_VADDR + data_prefix
        headers_at = base + 32
        strings_at = headers_at + 32
        version_at = strings_at
        modinfo_at = version_at + len(go_version)
        blob = (
            GO_MAGIC
            + bytes([8, 0])
            + struct.pack("<QQ", headers_at, headers_at + 16)
            + struct.pack("<QQ", version_at, len(go_version))
            + struct.pack("<QQ", modinfo_at, len(framed))
            + go_version.encode()
            + framed
        )
    data = b"\x00" * data_prefix + blob
    data += b"\x00" * (-len(data) % 16)
    text = b"\x90" * text_size
    data_offset = max(_DATA_OFFSET, (64 + 2 * 56 + len(text) + 0xFFF) & ~0xFFF)
    data_vaddr = 0x500000 + data_offset
    if not inline and data_vaddr != _DATA_VADDR:
        raise ValueError("keep text_size small with inline=False")
    body = bytearray(data_offset + len(data))
    body[64 + 2 * 56 : 64 + 2 * 56 + len(text)] = text
    body[data_offset:] = data
    shoff = 0
    shnum = 0
    shstrndx = 0
    if sections:
        names = b"\x00.go.buildinfo\x00.shstrtab\x00"
        strtab_offset = len(body)
        body += names
        body += b"\x00" * (-len(body) % 8)
        shoff = len(body)
        null = b"\x00" * 64
        buildinfo = struct.pack(
            "<IIQQQQIIQQ",
            1,
            1,
            3,
            data_vaddr + data_prefix,
            data_offset + data_prefix,
            len(blob),
            0,
            0,
            16,
            0,
        )
        strtab = struct.pack("<IIQQQQIIQQ", 15, 3, 0, 0, strtab_offset, len(names), 0, 0, 1, 0)
        body += null + buildinfo + strtab
        shnum, shstrndx = 3, 2
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\x00" * 8
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, _TEXT_VADDR + 64, 64, shoff, 0, 64, 56, 2, 64, shnum, shstrndx
    )
    text_segment = struct.pack(
        "<IIQQQQQQ", 1, 5, 0, _TEXT_VADDR, _TEXT_VADDR, data_offset, data_offset, 0x1000
    )
    data_segment = struct.pack(
        "<IIQQQQQQ", 1, 6, data_offset, data_vaddr, data_vaddr, len(data), len(data), 0x1000
    )
    body[0:64] = header
    body[64 : 64 + 112] = text_segment + data_segment
    return bytes(body)


def plain_elf(size: int = 4096) -> bytes:
    """An ELF header followed by padding: an executable that is not a Go binary."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\x00" * 8
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x400000, 0, 0, 0, 64, 56, 0, 64, 0, 0)
    return header + b"\x00" * (size - len(header))
