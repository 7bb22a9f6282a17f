"""A saved image rewritten (config, manifest, layers), the remembered rewrites and the archive state."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from hardening.inspect.tarfs import read_image_tar
from hardening.repro.archivestate import ReleaseState, label_text, parse_label, releases_in_rootfs
from hardening.repro.config import epoch_text, normalise_config, parse_time
from hardening.repro.image import Normalisation, _remembered, remember
from hardening.repro.rewrite import rewrite_archive
from tests.unit.imagetar import ImageSpec, directory, file, legacy_save, sha256

EPOCH = 1_800_000_000
DPKG = b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u9\nArchitecture: amd64\n\n"
BASE = [
    directory("etc"),
    file("var/lib/dpkg/status", DPKG),
    file("var/lib/dpkg/info/libc6.list", b"/var/log/keep\n"),
]


def _saved(tmp_path: Path, top: list[object], created: str = "2026-12-01T07:07:34.7Z") -> Path:
    spec = ImageSpec(history=[{"created": "2020-01-01T00:00:00Z", "comment": "base"}, {"created": created}])
    path = tmp_path / f"saved-{created}.tar"
    path.write_bytes(legacy_save([BASE, top], spec, tag="example/app:candidate"))  # type: ignore[list-item]
    config = json.loads(_member(path, "manifest.json"))[0]["Config"]
    doc = json.loads(_member(path, config))
    doc.update({"container": "abc", "container_config": {"Hostname": "abc"}, "docker_version": "20.10"})
    doc["config"]["Image"] = "sha256:" + "9" * 64
    doc["created"] = created
    _replace(path, config, json.dumps(doc).encode())
    return path


def _member(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        return tar.extractfile(name).read()  # type: ignore[union-attr]


def _replace(path: Path, name: str, data: bytes) -> None:
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]  # type: ignore[union-attr]
    with tarfile.open(path, "w") as out:
        for member, content in members:
            if member.name == name:
                member.size = len(data)
                content = data
            out.addfile(member, io.BytesIO(content) if content is not None else None)


def _rewrite(saved: Path, tmp_path: Path) -> tuple[Path, object]:
    out_path = tmp_path / f"out-{saved.name}"
    with out_path.open("w+b") as out:
        result = rewrite_archive(saved, out, epoch=EPOCH, keep=1, tag="example/app:candidate")
    return out_path, result


def test_two_builds_differing_in_clock_and_container_give_one_image(tmp_path: Path) -> None:
    top = [file("app/run", b"#!/bin/sh\n", mode=0o755), file("var/log/dpkg.log", b"installed at 07:07")]
    first_path, first = _rewrite(_saved(tmp_path, top, "2027-03-01T00:00:01.5Z"), tmp_path)
    _, second = _rewrite(_saved(tmp_path, list(reversed(top)), "2027-04-04T00:00:00Z"), tmp_path)
    assert first.image_id == second.image_id  # type: ignore[attr-defined]
    assert first.removed == {"logs": 1}  # type: ignore[attr-defined]
    config = json.loads(first.config_bytes)  # type: ignore[attr-defined]
    assert "container" not in config and "container_config" not in config and "docker_version" not in config
    assert config["config"]["Image"] == ""
    assert config["created"] == epoch_text(EPOCH)
    assert [h["created"] for h in config["history"]] == ["2020-01-01T00:00:00Z", epoch_text(EPOCH)]
    assert first.image_id == sha256(first.config_bytes)  # type: ignore[attr-defined]
    # The base layer is named but not copied: the engine has it and does not open its file.
    with tarfile.open(first_path) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    base_file, top_file = manifest[0]["Layers"]
    assert base_file not in names and top_file in names
    assert manifest[0]["RepoTags"] == ["example/app:candidate"]


def test_the_contents_feed_the_rules_and_the_inputs(tmp_path: Path) -> None:
    top = [file("var/log/keep", b"owned by libc6"), file("var/log/other", b"x")]
    _, result = _rewrite(_saved(tmp_path, top), tmp_path)
    assert result.removed == {"logs": 1}  # type: ignore[attr-defined]
    assert result.kept_owned == 1  # type: ignore[attr-defined]
    (package,) = result.contents.packages  # type: ignore[attr-defined]
    assert (package.name, package.version, package.architecture) == ("libc6", "2.36-9+deb12u9", "amd64")


def test_config_times_after_the_base_are_the_epoch() -> None:
    config = {
        "created": "2019-05-05T05:05:05Z",
        "history": [
            {"created": "2010-01-01T00:00:00Z", "comment": "base"},
            {"created": "2019-01-01T00:00:00.123456789Z", "empty_layer": True},  # cached step
            {"created": "2030-01-01T00:00:00Z"},
            {"created": "garbage"},
        ],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:old"]},
    }
    doc = json.loads(normalise_config(config, epoch=EPOCH, diff_ids=["sha256:new"], keep=1))
    assert doc["created"] == epoch_text(EPOCH)
    assert [h["created"] for h in doc["history"]] == ["2010-01-01T00:00:00Z"] + [epoch_text(EPOCH)] * 3
    assert doc["rootfs"]["diff_ids"] == ["sha256:new"]
    assert parse_time("2026-12-01T08:05:06+01:00") == parse_time("2026-12-01T07:05:06Z")


def test_a_remembered_rewrite_is_used_only_for_the_same_image_epoch_and_version(tmp_path: Path) -> None:
    entry = Normalisation("sha256:" + "1" * 64, "sha256:" + "2" * 64, EPOCH, ("sha256:a",), (), ())
    remember(tmp_path, entry)
    found = _remembered(tmp_path, entry.raw_image_id, EPOCH)
    assert found is not None and found.image_id == entry.image_id and found.cached
    assert _remembered(tmp_path, entry.raw_image_id, EPOCH + 1) is None
    (path,) = tmp_path.iterdir()
    path.write_text(path.read_text().replace('"version": 2', '"version": 1'))
    assert _remembered(tmp_path, entry.raw_image_id, EPOCH) is None
    path.write_text("{not json")
    assert _remembered(tmp_path, entry.raw_image_id, EPOCH) is None


INRELEASE = """\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Origin: Debian
Suite: stable-security
Codename: bookworm-security
Date: Sat, 29 Nov 2026 00:53:13 UTC
SHA256:
 0000 1 main/binary-amd64/Packages
-----BEGIN PGP SIGNATURE-----

iQ==
-----END PGP SIGNATURE-----
"""


def test_the_release_files_apt_verified_name_the_archive_state(tmp_path: Path) -> None:
    lists = tmp_path / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    (lists / "deb.example_debian-security_dists_bookworm-security_InRelease").write_text(INRELEASE)
    (lists / "lock").write_text("")
    (state,) = releases_in_rootfs(tmp_path)
    assert (state.suite, state.date) == ("bookworm-security", "2026-11-29T00:53:13Z")
    assert parse_label(label_text([state])) == (state,)
    assert parse_label("not json") == ()
    assert ReleaseState.from_json({"suite": "x"}) is None


def test_the_rewritten_archive_reads_back_with_the_project_reader(tmp_path: Path) -> None:
    top = [directory("app"), file("app/run", b"x" * 3000, mode=0o755)]
    saved = _saved(tmp_path, top)
    out_path, result = _rewrite(saved, tmp_path)
    # Put the base layer back (the engine would have it) and read the image as the inspector does.
    with tarfile.open(out_path) as rewritten:
        wanted = json.loads(rewritten.extractfile("manifest.json").read())[0]["Layers"][0]  # type: ignore[union-attr]
    with tarfile.open(saved) as original, tarfile.open(out_path, "a") as out:
        manifest = json.loads(original.extractfile("manifest.json").read())  # type: ignore[union-attr]
        base = original.getmember(manifest[0]["Layers"][0])
        data = original.extractfile(base).read()  # type: ignore[union-attr]
        member = tarfile.TarInfo(wanted)
        member.size = len(data)
        out.addfile(member, io.BytesIO(data))
    archive = read_image_tar(out_path)
    run = archive.filesystem.get("/app/run")
    assert run is not None and run.size == 3000 and run.mode == 0o755
    assert [layer.diff_id for layer in archive.layers] == list(result.diff_ids)  # type: ignore[attr-defined]
