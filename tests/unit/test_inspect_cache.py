"""The ImageFacts cache: strict JSON round trip, keyed by image id, never trusting a bad entry."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hardening.inspect import cache
from hardening.inspect.cache import SUBDIR, decode, default_cache_dir, encode, inspect_cached
from hardening.inspect.facts import (
    Anomaly,
    AnomalyKind,
    Binary,
    BinaryMatch,
    DpkgPackage,
    GoBuildInfo,
    GoModule,
    HistoryEntry,
    ImageFacts,
    PythonDistribution,
    PythonEnvironment,
    SpecialFile,
    WritableDirectory,
    inspect_image_tar,
)
from tests.unit.imagetar import ImageSpec, device, directory, file, go_elf, legacy_save, oci_save, symlink
from tests.unit.test_inspect_facts import BASE, venv_layer
from tests.unit.test_policy_support import config, facts

REFERENCE = "example/app:1"
RICH_SPEC = ImageSpec(
    user="app",
    env=("PATH=/usr/bin:/bin", "EMPTY="),
    entrypoint=("/entrypoint.sh",),
    cmd=None,
    working_dir="/srv",
    labels={"org.opencontainers.image.version": "1.0"},
    exposed_ports=("5432/tcp",),
    healthcheck={"Test": ["CMD", "true"], "Interval": 30_000_000_000, "Retries": 3},
)
RICH_LAYERS = [
    BASE,
    venv_layer(),
    [
        directory("usr/local/bin"),
        file("usr/local/bin/gosu", go_elf(), mode=0o4755),
        symlink("usr/bin/cc", "gcc"),
        file("usr/bin/gcc", b"\x7fELF" + b"\x00" * 100, mode=0o755),
        directory("srv/drop", mode=0o777),
        device("dev/null"),
    ],
]


def rich_synthetic() -> ImageFacts:
    """Every kind of field: nested dataclasses, optional members, enums, fixed and open tuples."""
    replaced = GoModule("golang.org/x/sys", "v0.2.0", "h1:abc=")
    go = GoBuildInfo(
        go_version="go1.22.1",
        main_package="github.com/tianon/gosu",
        main_module=GoModule("github.com/tianon/gosu", "(devel)"),
        dependencies=(GoModule("golang.org/x/sys", "v0.1.0", "h1:x=", replaced_by=replaced),),
        settings=(("-compiler", "gc"), ("CGO_ENABLED", "0")),
    )
    return facts(
        config=config(
            entrypoint=("/bin/sh", "-c"),
            labels=(("a", "b"),),
            history=(HistoryEntry("RUN x", empty_layer=True, created="2024-01-01", comment="c"),),
        ),
        dpkg_packages=(DpkgPackage("libc6", "2.36-9", "glibc", "2.36-9", "amd64", "install ok installed"),),
        python_envs=(
            PythonEnvironment(
                "/opt/venv/lib/python3.11/site-packages",
                (PythonDistribution("pip", "24.0", "/opt/venv/x/pip-24.0.dist-info", "pip"),),
            ),
        ),
        setuid_files=(SpecialFile("/usr/bin/su", 0o4755, 0, 0, 0),),
        world_writable_dirs=(WritableDirectory("/tmp", 0o1777, 0, 0, 0),),
        binaries=(
            Binary("/usr/local/bin/gosu", "gosu", (BinaryMatch.NAME, BinaryMatch.GO_BUILDINFO), 0, go),
            Binary("/usr/bin/cc", "cc", (BinaryMatch.NAME,), 0, target="/usr/bin/gcc-12"),
        ),
        total_size=1 << 40,
        filesystem_size=12,
        anomalies=(
            Anomaly("", None, AnomalyKind.MISSING_END_OF_ARCHIVE),
            Anomaly("dev/null", 0, AnomalyKind.DEVICE_FILE, "1:3"),
        ),
    )


def write_image(tmp_path: Path, data: bytes, name: str = "image.tar") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def rich_tar(tmp_path: Path) -> Path:
    return write_image(tmp_path, legacy_save(RICH_LAYERS, RICH_SPEC, tag=REFERENCE))


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names the references ``inspect_image_tar`` was really called for."""
    calls: list[str] = []

    def counting(path: Path, **kwargs: object) -> ImageFacts:
        calls.append(str(kwargs["reference"]))
        return inspect_image_tar(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cache, "inspect_image_tar", counting)
    return calls


def entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / SUBDIR).glob("*.json"))


def test_round_trip_of_synthetic_facts() -> None:
    original = rich_synthetic()
    assert decode(ImageFacts, json.loads(json.dumps(encode(original)))) == original


def test_round_trip_of_inspected_facts(rich_tar: Path) -> None:
    original = inspect_image_tar(rich_tar, reference=REFERENCE)
    # The fixture must exercise the rich parts, or the round trip proves little.
    assert original.binaries and original.python_envs and original.dpkg_packages
    assert any(b.go is not None for b in original.binaries) and original.config.healthcheck
    assert original.anomalies and original.setuid_files and original.world_writable_dirs
    assert decode(ImageFacts, json.loads(json.dumps(encode(original)))) == original


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d.pop("total_size"), "missing field"),
        (lambda d: d.update(extra=1), "extra field"),
        (lambda d: d.update(total_size="1"), "string for int"),
        (lambda d: d.update(total_size=True), "bool for int"),
        (lambda d: d["anomalies"][0].update(kind="nonsense"), "unknown enum value"),
        (lambda d: d["config"]["env"][0].append("x"), "fixed tuple too long"),
        (lambda d: d["binaries"][0]["go"].update(main_module=[]), "list for a dataclass"),
        (lambda d: d.update(layers=None), "null for a tuple"),
    ],
)
def test_decoding_is_strict(change: Callable[[Any], object], why: str) -> None:
    data = encode(rich_synthetic())
    change(data)
    with pytest.raises(ValueError):
        decode(ImageFacts, data)


def test_hit_after_miss_does_not_read_the_image(rich_tar: Path, tmp_path: Path, counted: list[str]) -> None:
    cache_dir = tmp_path / "cache"
    first = inspect_cached(rich_tar, reference=REFERENCE, binary_names={"gosu", "cc"}, cache_dir=cache_dir)
    second = inspect_cached(rich_tar, reference="other:2", binary_names={"cc", "gosu"}, cache_dir=cache_dir)
    assert counted == [REFERENCE]
    assert second == dataclasses.replace(first, reference="other:2")
    assert first == inspect_image_tar(rich_tar, reference=REFERENCE, binary_names={"gosu", "cc"})
    (entry,) = entries(cache_dir)
    assert (cache_dir / SUBDIR).stat().st_mode & 0o777 == 0o700
    assert entry.stat().st_mode & 0o777 == 0o600


def test_oci_archive_hits_too(tmp_path: Path, counted: list[str]) -> None:
    path = write_image(tmp_path, oci_save(RICH_LAYERS, RICH_SPEC, tag=REFERENCE, compress=True))
    first = inspect_cached(path, reference=REFERENCE, cache_dir=tmp_path / "c")
    assert inspect_cached(path, reference=REFERENCE, cache_dir=tmp_path / "c") == first
    assert counted == [REFERENCE]


def test_another_image_misses(rich_tar: Path, tmp_path: Path, counted: list[str]) -> None:
    other = write_image(tmp_path, legacy_save([*RICH_LAYERS, [file("x", "y")]], RICH_SPEC), "other.tar")
    cache_dir = tmp_path / "cache"
    first = inspect_cached(rich_tar, reference=REFERENCE, cache_dir=cache_dir)
    second = inspect_cached(other, reference=REFERENCE, cache_dir=cache_dir)
    assert first.image_id != second.image_id
    assert second.layer_count == first.layer_count + 1
    assert counted == [REFERENCE, REFERENCE]
    assert len(entries(cache_dir)) == 2


def test_same_image_in_another_layout_misses(tmp_path: Path, counted: list[str]) -> None:
    # Same config (same image id), but the layer blobs the facts name differ.
    legacy = write_image(tmp_path, legacy_save(RICH_LAYERS, RICH_SPEC), "legacy.tar")
    oci = write_image(tmp_path, oci_save(RICH_LAYERS, RICH_SPEC), "oci.tar")
    first = inspect_cached(legacy, reference=REFERENCE, cache_dir=tmp_path / "c")
    second = inspect_cached(oci, reference=REFERENCE, cache_dir=tmp_path / "c")
    assert first.image_id == second.image_id
    assert second == inspect_image_tar(oci, reference=REFERENCE)
    assert len(counted) == 2


def test_binary_names_change_the_key(rich_tar: Path, tmp_path: Path, counted: list[str]) -> None:
    cache_dir = tmp_path / "cache"
    with_gcc = inspect_cached(rich_tar, reference=REFERENCE, binary_names={"gcc"}, cache_dir=cache_dir)
    without = inspect_cached(rich_tar, reference=REFERENCE, binary_names={"gosu"}, cache_dir=cache_dir)
    assert "gcc" in with_gcc.programs() and "gcc" not in without.programs()
    assert len(counted) == 2 and len(entries(cache_dir)) == 2


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"format": 1}).encode(),
    ],
)
def test_corrupt_entry_is_reinspected_and_replaced(
    rich_tar: Path, tmp_path: Path, counted: list[str], damage: bytes
) -> None:
    cache_dir = tmp_path / "cache"
    expected = inspect_cached(rich_tar, reference=REFERENCE, cache_dir=cache_dir)
    (entry,) = entries(cache_dir)
    entry.write_bytes(damage)
    assert inspect_cached(rich_tar, reference=REFERENCE, cache_dir=cache_dir) == expected
    assert len(counted) == 2
    assert json.loads(entry.read_bytes())["image_id"] == expected.image_id
    inspect_cached(rich_tar, reference=REFERENCE, cache_dir=cache_dir)
    assert len(counted) == 2


def test_entry_with_mangled_facts_is_reinspected(rich_tar: Path, tmp_path: Path, counted: list[str]) -> None:
    cache_dir = tmp_path / "cache"
    expected = inspect_cached(rich_tar, reference=REFERENCE, cache_dir=cache_dir)
    (entry,) = entries(cache_dir)
    document = json.loads(entry.read_bytes())
    document["facts"]["passwd"][0]["uid"] = "0"
    entry.write_text(json.dumps(document))
    assert inspect_cached(rich_tar, reference=REFERENCE, cache_dir=cache_dir) == expected
    assert len(counted) == 2


@pytest.mark.parametrize("where", ["document", "facts"])
def test_entry_of_another_image_is_ignored(
    rich_tar: Path, tmp_path: Path, counted: list[str], where: str
) -> None:
    cache_dir = tmp_path / "cache"
    expected = inspect_cached(rich_tar, reference=REFERENCE, cache_dir=cache_dir)
    (entry,) = entries(cache_dir)
    document = json.loads(entry.read_bytes())
    # Facts of another image planted under this image's key: the recorded id gives it away.
    forged = encode(dataclasses.replace(expected, image_id="sha256:" + "f" * 64, passwd=()))
    document["facts"] = forged
    if where == "document":
        document["image_id"] = forged["image_id"]
    entry.write_text(json.dumps(document))
    facts_now = inspect_cached(rich_tar, reference=REFERENCE, cache_dir=cache_dir)
    assert facts_now == expected and facts_now.passwd
    assert len(counted) == 2


def test_unwritable_cache_dir_still_inspects(rich_tar: Path, tmp_path: Path, counted: list[str]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    expected = inspect_image_tar(rich_tar, reference=REFERENCE)
    assert inspect_cached(rich_tar, reference=REFERENCE, cache_dir=blocker) == expected
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o500)
    try:
        assert inspect_cached(rich_tar, reference=REFERENCE, cache_dir=readonly) == expected
    finally:
        readonly.chmod(0o700)
    assert len(counted) == 2
    if os.geteuid() != 0:  # root writes through 0500
        assert not (readonly / SUBDIR).exists()


def test_none_disables_the_cache(rich_tar: Path, tmp_path: Path, counted: list[str]) -> None:
    for _ in range(2):
        inspect_cached(rich_tar, reference=REFERENCE, cache_dir=None)
    assert len(counted) == 2


def test_unreadable_archive_raises_the_inspectors_error(tmp_path: Path) -> None:
    from hardening.errors import InspectError

    path = write_image(tmp_path, b"not a tar")
    with pytest.raises(InspectError) as cached_error:
        inspect_cached(path, reference=REFERENCE, cache_dir=tmp_path / "c")
    with pytest.raises(InspectError) as plain_error:
        inspect_image_tar(path, reference=REFERENCE)
    assert str(cached_error.value) == str(plain_error.value)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARDENING_FACTS_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("HARDENING_FACTS_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() / SUBDIR == tmp_path / "home" / ".cache" / "hardening" / "facts"
