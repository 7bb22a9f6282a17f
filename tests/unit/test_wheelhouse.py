from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from hardening.build import wheelhouse
from hardening.build.wheelhouse import (
    parse_lock,
    platform_variants,
    prepare_wheelhouse,
    sha256_file,
)
from hardening.errors import BuildError, ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON_SECURE = REPO_ROOT / "dockerfiles" / "python-secure"


def make_wheel(name: str, version: str, *, tag: str = "py3-none-any", payload: str = "") -> bytes:
    """A minimal but valid wheel: pip reads its metadata when it downloads from find-links."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = {payload!r}\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"),
    }
    record = "".join(f"{path},,\n" for path in files) + f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            # a fixed timestamp keeps the bytes, and so the hash, stable across runs
            archive.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


class FakePip:
    """Stands in for the pip subprocess: copies wheels from a fake index into dest."""

    def __init__(self, index: dict[str, bytes]) -> None:
        self.index = index
        self.calls = 0

    def __call__(self, lock_file: Path, dest: Path, *args: object) -> None:
        self.calls += 1
        for filename, data in self.index.items():
            target = dest / filename
            if not target.exists():
                target.write_bytes(data)


# ---------------------------------------------------------------------------------------------
# lock parsing


def test_parse_lock_handles_continuations_comments_markers_and_options(tmp_path: Path) -> None:
    h1, h2, h3 = "a" * 64, "b" * 64, "c" * 128
    lock = write(
        tmp_path / "requirements.lock",
        "#\n"
        "# header comment\n"
        "--index-url https://index.example/simple\n"
        "\n"
        f"Foo_Bar==1.2.0 \\\n"
        f"    --hash=sha256:{h1} \\\n"
        f"    --hash=sha256:{h2}\n"
        "    # via something\n"
        f'baz[extra]==2.0 ; python_version >= "3.8" --hash sha512:{h3}  # trailing\n',
    )
    first, second = parse_lock(lock)
    assert (first.name, str(first.version), first.line) == ("foo-bar", "1.2.0", 5)
    assert first.hashes == {f"sha256:{h1}", f"sha256:{h2}"}
    assert first.marker is None
    assert (second.name, second.line) == ("baz", 9)
    assert second.hashes == {f"sha512:{h3}"}
    assert second.marker == 'python_version >= "3.8"'


@pytest.mark.parametrize("python_version", ["3.11", "3.13"])
def test_the_python_secure_lock_is_fully_pinned_and_hashed(python_version: str) -> None:
    requirements = parse_lock(PYTHON_SECURE / f"requirements-{python_version}.lock")
    names = {req.name for req in requirements}
    assert {"fastapi", "uvicorn", "structlog", "prometheus-client", "httpx", "tenacity"} <= names
    versions = {str(req.name): req.version for req in requirements}
    assert versions["pip"].release >= (24, 3)
    assert versions["setuptools"].release >= (75,)
    assert all(req.hashes for req in requirements)


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("requests>=2.0 --hash=sha256:" + "a" * 64, "not pinned"),
        ("requests --hash=sha256:" + "a" * 64, "not pinned"),
        ("requests==2.* --hash=sha256:" + "a" * 64, "not pinned"),
        ("requests==2.0,<3 --hash=sha256:" + "a" * 64, "not pinned"),
        ("requests==2.31.0", "has no --hash"),
        ("requests==2.31.0 --hash=md5:" + "a" * 32, "unusable hash"),
        ("requests==2.31.0 --hash=sha256:abc", "unusable hash"),
        ("requests==2.31.0 --no-binary requests", "unexpected option"),
        ("requests @ https://example.org/requests.whl --hash=sha256:" + "a" * 64, "direct URL"),
        ("-r other.txt", "not allowed"),
        ("-e .", "not allowed"),
        ("this is not a requirement", "not a valid requirement"),
    ],
)
def test_bad_lock_entries_name_file_and_line(tmp_path: Path, entry: str, needle: str) -> None:
    good = "ok==1.0 \\\n    --hash=sha256:" + "d" * 64 + "\n"
    lock = write(tmp_path / "req.lock", "# comment\n" + good + entry + "\n")
    with pytest.raises(ConfigError) as info:
        parse_lock(lock)
    error = info.value
    assert needle in error.message
    assert error.location is not None
    assert error.location.path == lock
    assert error.location.line == 4
    assert f"{lock}:4" in error.diagnostics()


def test_duplicate_entries_are_rejected(tmp_path: Path) -> None:
    entry = "ok==1.0 --hash=sha256:" + "d" * 64 + "\n"
    lock = write(tmp_path / "req.lock", entry + entry.replace("ok", "OK"))
    with pytest.raises(ConfigError, match="listed twice") as info:
        parse_lock(lock)
    assert info.value.location is not None and info.value.location.line == 2


def test_missing_lock_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the lock file"):
        parse_lock(tmp_path / "absent.lock")


def test_platform_variants_add_pep600_spellings() -> None:
    assert platform_variants("manylinux2014_x86_64") == (
        "manylinux2014_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux_2_28_x86_64",
    )
    assert platform_variants("manylinux_2_28_aarch64") == ("manylinux_2_28_aarch64",)
    assert platform_variants("musllinux_1_2_x86_64") == ("musllinux_1_2_x86_64",)


# ---------------------------------------------------------------------------------------------
# cache reuse and hash verification (pip replaced by a fake)


@pytest.fixture
def fake_index() -> dict[str, bytes]:
    return {
        "alpha-1.0-py3-none-any.whl": make_wheel("alpha", "1.0"),
        "beta-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": make_wheel(
            "beta", "2.0", tag="cp311-cp311-manylinux2014_x86_64"
        ),
    }


def lock_for(path: Path, index: dict[str, bytes]) -> Path:
    lines = []
    for filename, data in index.items():
        name, version = filename.split("-")[:2]
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{sha256(data)}\n")
    return write(path, "".join(lines))


def test_first_run_downloads_then_everything_is_reused(
    tmp_path: Path, fake_index: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePip(fake_index)
    monkeypatch.setattr(wheelhouse, "_run_pip_download", fake)
    lock = lock_for(tmp_path / "req.lock", fake_index)
    dest = tmp_path / "wheels"

    first = prepare_wheelhouse(lock, dest)
    assert (first.downloaded, first.reused, fake.calls) == (2, 0, 1)
    assert first.wheels == tuple(sorted(fake_index))
    assert first.dest == dest

    second = prepare_wheelhouse(lock, dest)
    assert (second.downloaded, second.reused, fake.calls) == (0, 2, 1)
    assert second.wheels == first.wheels


def test_a_tampered_wheel_is_removed_and_downloaded_again(
    tmp_path: Path, fake_index: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePip(fake_index)
    monkeypatch.setattr(wheelhouse, "_run_pip_download", fake)
    lock = lock_for(tmp_path / "req.lock", fake_index)
    dest = tmp_path / "wheels"
    prepare_wheelhouse(lock, dest)

    tampered = dest / "alpha-1.0-py3-none-any.whl"
    tampered.write_bytes(make_wheel("alpha", "1.0", payload="evil"))
    result = prepare_wheelhouse(lock, dest)

    assert (result.downloaded, result.reused, fake.calls) == (1, 1, 2)
    assert sha256_file(tampered) == sha256(fake_index[tampered.name])


def test_a_tampered_wheel_that_pip_does_not_replace_is_rejected(
    tmp_path: Path, fake_index: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = lock_for(tmp_path / "req.lock", fake_index)
    dest = tmp_path / "wheels"
    monkeypatch.setattr(wheelhouse, "_run_pip_download", FakePip(fake_index))
    prepare_wheelhouse(lock, dest)

    (dest / "alpha-1.0-py3-none-any.whl").write_bytes(b"not the locked wheel")
    monkeypatch.setattr(wheelhouse, "_run_pip_download", FakePip({}))
    with pytest.raises(BuildError, match=r"no verified wheel .* for: alpha==1\.0") as info:
        prepare_wheelhouse(lock, dest)
    assert info.value.location is not None and info.value.location.line == 1
    # the bad file is gone, so nothing unverified can reach the build context
    assert not (dest / "alpha-1.0-py3-none-any.whl").exists()


def test_wheels_for_another_platform_are_not_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the lock may list hashes for several platforms; only a wheel the image can install counts
    mac = make_wheel("beta", "2.0", tag="cp311-cp311-macosx_11_0_arm64")
    linux = make_wheel("beta", "2.0", tag="cp311-cp311-manylinux2014_x86_64")
    mac_name = "beta-2.0-cp311-cp311-macosx_11_0_arm64.whl"
    linux_name = "beta-2.0-cp311-cp311-manylinux2014_x86_64.whl"
    lock = write(
        tmp_path / "req.lock",
        f"beta==2.0 --hash=sha256:{sha256(mac)} --hash=sha256:{sha256(linux)}\n",
    )
    dest = tmp_path / "wheels"
    dest.mkdir()
    (dest / mac_name).write_bytes(mac)
    fake = FakePip({linux_name: linux})
    monkeypatch.setattr(wheelhouse, "_run_pip_download", fake)

    result = prepare_wheelhouse(lock, dest)
    assert result.wheels == (linux_name,)
    assert (result.downloaded, result.reused, fake.calls) == (1, 0, 1)
    assert not (dest / mac_name).exists()


def test_stale_versions_go_and_unrelated_files_stay(
    tmp_path: Path, fake_index: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wheelhouse, "_run_pip_download", FakePip(fake_index))
    lock = lock_for(tmp_path / "req.lock", fake_index)
    dest = tmp_path / "wheels"
    dest.mkdir()
    (dest / "alpha-0.9-py3-none-any.whl").write_bytes(make_wheel("alpha", "0.9"))
    (dest / "gamma-1.0-py3-none-any.whl").write_bytes(make_wheel("gamma", "1.0"))
    (dest / "notes.txt").write_text("kept")

    prepare_wheelhouse(lock, dest)
    assert not (dest / "alpha-0.9-py3-none-any.whl").exists()
    assert (dest / "gamma-1.0-py3-none-any.whl").exists()
    assert (dest / "notes.txt").exists()


def test_requirements_whose_marker_excludes_the_image_are_skipped(
    tmp_path: Path, fake_index: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakePip(fake_index)
    monkeypatch.setattr(wheelhouse, "_run_pip_download", fake)
    lock = lock_for(tmp_path / "req.lock", fake_index)
    with lock.open("a") as handle:
        handle.write('colorama==0.4.6 ; sys_platform == "win32" --hash=sha256:' + "e" * 64 + "\n")
    result = prepare_wheelhouse(lock, tmp_path / "wheels")
    assert result.wheels == tuple(sorted(fake_index))


def test_bad_python_version_is_a_config_error(tmp_path: Path) -> None:
    lock = write(tmp_path / "req.lock", "ok==1.0 --hash=sha256:" + "d" * 64 + "\n")
    with pytest.raises(ConfigError, match="python_version"):
        prepare_wheelhouse(lock, tmp_path / "wheels", python_version="three")


# ---------------------------------------------------------------------------------------------
# the real pip, offline: a find-links directory stands in for the index


@pytest.fixture
def local_index(tmp_path: Path) -> Path:
    index = tmp_path / "index"
    index.mkdir()
    (index / "alpha-1.0-py3-none-any.whl").write_bytes(make_wheel("alpha", "1.0"))
    return index


def test_real_pip_downloads_from_find_links(tmp_path: Path, local_index: Path) -> None:
    digest = sha256_file(local_index / "alpha-1.0-py3-none-any.whl")
    lock = write(
        tmp_path / "req.lock",
        f"--no-index\n--find-links {local_index}\nalpha==1.0 --hash=sha256:{digest}\n",
    )
    dest = tmp_path / "wheels"
    result = prepare_wheelhouse(lock, dest, timeout=120)
    assert (result.wheels, result.downloaded, result.reused) == (
        ("alpha-1.0-py3-none-any.whl",),
        1,
        0,
    )
    # tampering in dest: the verified copy comes back from the index
    (dest / "alpha-1.0-py3-none-any.whl").write_bytes(b"tampered")
    again = prepare_wheelhouse(lock, dest, timeout=120)
    assert (again.downloaded, again.reused) == (1, 0)
    assert sha256_file(dest / "alpha-1.0-py3-none-any.whl") == digest


def test_real_pip_hash_mismatch_is_a_build_error_with_pip_output(tmp_path: Path, local_index: Path) -> None:
    lock = write(
        tmp_path / "req.lock",
        f"--no-index\n--find-links {local_index}\nalpha==1.0 --hash=sha256:{'0' * 64}\n",
    )
    with pytest.raises(BuildError, match="pip download failed") as info:
        prepare_wheelhouse(lock, tmp_path / "wheels", timeout=120)
    assert info.value.details is not None
    assert "HASH" in info.value.details.upper()
    assert "pip download" in (info.value.hint or "")


def test_pip_timeout_is_a_build_error(tmp_path: Path, local_index: Path) -> None:
    digest = sha256_file(local_index / "alpha-1.0-py3-none-any.whl")
    lock = write(
        tmp_path / "req.lock",
        f"--no-index\n--find-links {local_index}\nalpha==1.0 --hash=sha256:{digest}\n",
    )
    with pytest.raises(BuildError, match="did not finish"):
        prepare_wheelhouse(lock, tmp_path / "wheels", timeout=0.01)


# ---------------------------------------------------------------------------------------------
# the real index: the python-secure lock resolves to installable wheels for the image


@pytest.mark.slow
@pytest.mark.parametrize("python_version", ["3.11", "3.13"])
def test_python_secure_wheelhouse_from_pypi(tmp_path: Path, python_version: str) -> None:
    lock = PYTHON_SECURE / f"requirements-{python_version}.lock"
    assert f"autogenerated by pip-compile with Python {python_version}" in lock.read_text()
    result = prepare_wheelhouse(lock, tmp_path / "wheels", python_version=python_version, timeout=600)
    locked = {req.name for req in parse_lock(lock)}
    assert len(result.wheels) == len(locked)
    assert result.downloaded == len(locked)
    tag = "cp" + python_version.replace(".", "")
    assert any(tag in name and "manylinux" in name for name in result.wheels)
    assert prepare_wheelhouse(lock, tmp_path / "wheels", python_version=python_version).reused == len(locked)
