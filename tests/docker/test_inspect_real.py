"""The inspector on an image the real engine built and saved.

The image is built FROM the project's base (``hardening/debian:bookworm``) with the docker CLI;
when that base is absent a tiny base is imported from the host's own shell tools instead, so the
test never depends on building Debian. A missing engine fails the test: CI always has one.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardening.inspect import ImageFacts, inspect_image_tar, inspect_stream
from hardening.inspect.tarfs import ImageFilesystem, read_image_tar

pytestmark = pytest.mark.docker

DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").is_file() else (shutil.which("docker") or "docker")
BASE = "hardening/debian:bookworm"
TAG = f"hardening-inspect-test:{os.getpid()}"
TINY_BASE = f"hardening-inspect-test-base:{os.getpid()}"
# Set to "tiny" to exercise the fallback base even when the project's base exists.
BASE_CHOICE = os.environ.get("HARDENING_INSPECT_TEST_BASE", "project")

DOCKERFILE = """\
FROM {base}
LABEL org.opencontainers.image.title="inspect-test"
ENV APP_MODE=test
RUN cp /bin/rm /usr/local/bin/suid-gone && chmod 4755 /usr/local/bin/suid-gone
RUN rm /etc/issue /usr/bin/chsh /usr/local/bin/suid-gone \\
 && cp /bin/rm /usr/local/bin/suid-probe && chmod 4755 /usr/local/bin/suid-probe \\
 && mkdir -p /srv/drop && chmod 0777 /srv/drop \\
 && echo 'app:x:10001:10001::/home/app:/usr/sbin/nologin' >> /etc/passwd \\
 && echo 'app:x:10001:' >> /etc/group \\
 && mkdir -p /opt/venv/lib/python3.11/site-packages/Demo_Pkg-1.2.3.dist-info \\
 && printf 'Metadata-Version: 2.1\\nName: Demo_Pkg\\nVersion: 1.2.3\\n' \\
      > /opt/venv/lib/python3.11/site-packages/Demo_Pkg-1.2.3.dist-info/METADATA
EXPOSE 8080
WORKDIR /srv
USER app
HEALTHCHECK --interval=30s CMD ["/bin/sh", "-c", "exit 0"]
CMD ["/bin/sh"]
"""


def _docker(
    *args: str, timeout: float = 600, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [DOCKER, *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )


def _must(result: subprocess.CompletedProcess[bytes], what: str) -> None:
    if result.returncode != 0:
        pytest.fail(f"{what} failed ({result.returncode}): {result.stderr.decode(errors='replace')[-2000:]}")


@pytest.fixture(scope="module")
def docker_engine() -> None:
    try:
        # `docker version` puts the reason (no socket, no daemon) on stderr; `docker info` does not.
        result = _docker("version", timeout=60)
    except FileNotFoundError:
        pytest.fail(f"tests marked docker need the docker CLI; {DOCKER} is missing")
    if result.returncode != 0:
        pytest.fail(
            "tests marked docker need a running Docker engine, and `docker version` failed: "
            f"{result.stderr.decode(errors='replace').strip()}. "
            "Start one (`harden engine up` or `make test`)."
        )


def _tiny_base_tar() -> bytes:
    """A minimal root filesystem: the host's dash, rm, cp, chmod, mkdir, cat and their libraries."""
    tools = ["/bin/sh", "/bin/rm", "/bin/cp", "/bin/chmod", "/bin/mkdir", "/bin/cat"]
    files: dict[str, Path] = {}
    for tool in tools:
        real = Path(tool).resolve()
        files[tool] = real
        ldd = subprocess.run(["ldd", str(real)], capture_output=True, text=True, check=False)
        for line in ldd.stdout.splitlines():
            for word in line.split():
                if word.startswith("/") and Path(word).is_file():
                    files[word] = Path(word).resolve()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text, mode in [
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644),
            ("etc/group", "root:x:0:\n", 0o644),
            ("etc/issue", "tiny\n", 0o644),
            ("usr/bin/chsh", "#!/bin/sh\n", 0o4755),
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(text), mode
            tar.addfile(info, io.BytesIO(text.encode()))
        for directory in ["tmp", "usr/local/bin"]:
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        for name, real in sorted(files.items()):
            tar.add(str(real), arcname=name.lstrip("/"), recursive=False)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def base_ref(docker_engine: None) -> Iterator[str]:
    if BASE_CHOICE != "tiny" and _docker("image", "inspect", BASE, timeout=60).returncode == 0:
        yield BASE
        return
    _must(_docker("import", "-", TINY_BASE, stdin=_tiny_base_tar()), "docker import of the tiny base")
    yield TINY_BASE
    _docker("image", "rm", "-f", TINY_BASE)


@pytest.fixture(scope="module")
def saved(base_ref: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(built image archive, base image archive)."""
    workdir = tmp_path_factory.mktemp("inspect-real")
    (workdir / "Dockerfile").write_text(DOCKERFILE.format(base=base_ref))
    _must(_docker("build", "-t", TAG, str(workdir)), "docker build")
    image_tar, base_tar = workdir / "image.tar", workdir / "base.tar"
    try:
        _must(_docker("save", "-o", str(image_tar), TAG), "docker save")
        _must(_docker("save", "-o", str(base_tar), base_ref), "docker save of the base")
        yield image_tar, base_tar
    finally:
        _docker("image", "rm", "-f", TAG)


@pytest.fixture(scope="module")
def facts(saved: tuple[Path, Path]) -> ImageFacts:
    return inspect_image_tar(saved[0], reference=TAG)


def test_deleted_files_are_gone_and_the_layer_is_known(saved: tuple[Path, Path], facts: ImageFacts) -> None:
    base = inspect_image_tar(saved[1], reference="base")
    # BuildKit may add a layer for WORKDIR as well as the one for RUN.
    assert facts.layer_count > base.layer_count
    assert [layer.diff_id for layer in facts.layers[: base.layer_count]] == [
        layer.diff_id for layer in base.layers
    ]
    fs: ImageFilesystem[object] = read_image_tar(saved[0], reference=TAG).filesystem
    base_fs: ImageFilesystem[object] = read_image_tar(saved[1]).filesystem
    for path in ("/etc/issue", "/usr/bin/chsh"):
        assert base_fs.get(path) is not None and fs.get(path) is None
    # A setuid file one layer added and the next deleted is gone, and not reported. (The base
    # itself has no setuid files to delete: `harden base` strips them.)
    assert fs.get("/usr/local/bin/suid-gone") is None
    assert "/usr/local/bin/suid-gone" not in {f.path for f in facts.setuid_files}
    passwd = fs.get("/etc/passwd")
    assert passwd is not None and passwd.layer == _run_layer(facts)


def _run_layer(facts: ImageFacts) -> int:
    """Index of the layer the RUN instruction wrote: the history entries that made layers, in order."""
    made_layers = [h for h in facts.config.history if not h.empty_layer]
    assert len(made_layers) == facts.layer_count
    return next(i for i, h in enumerate(made_layers) if "rm /etc/issue" in h.created_by)


def test_new_setuid_file_and_world_writable_dir(facts: ImageFacts) -> None:
    probe = next(f for f in facts.setuid_files if f.path == "/usr/local/bin/suid-probe")
    assert probe.setuid and probe.mode == 0o4755 and probe.uid == 0
    assert probe.layer == _run_layer(facts)
    assert "/srv/drop" in {d.path for d in facts.world_writable_without_sticky}
    assert "/tmp" in {d.path for d in facts.world_writable_dirs if d.sticky}


def test_config_user_and_accounts(facts: ImageFacts) -> None:
    config = facts.config
    assert config.user == "app"
    assert facts.resolve_user() == (10001, 10001)
    assert config.env_value("APP_MODE") == "test"
    assert config.label("org.opencontainers.image.title") == "inspect-test"
    assert config.exposed_ports == ("8080/tcp",)
    assert config.working_dir == "/srv"
    assert config.cmd == ("/bin/sh",)
    assert config.healthcheck is not None and config.healthcheck.interval_ns == 30_000_000_000
    assert any("rm /etc/issue" in h.created_by and not h.empty_layer for h in config.history)
    assert any("APP_MODE" in h.created_by and h.empty_layer for h in config.history)


def test_python_distribution_and_packages(base_ref: str, facts: ImageFacts) -> None:
    (demo,) = facts.python_distribution("demo-pkg")
    assert demo.version == "1.2.3" and demo.raw_name == "Demo_Pkg"
    if base_ref == BASE:
        names = {p.name for p in facts.dpkg_packages}
        assert {"base-files", "libc6", "dpkg"} <= names
        libc = facts.dpkg_package("libc6")
        assert libc is not None and libc.source_name == "glibc"


def test_streamed_save_gives_the_same_facts_quickly(saved: tuple[Path, Path], facts: ImageFacts) -> None:
    with subprocess.Popen([DOCKER, "save", TAG], stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        streamed = inspect_stream(process.stdout, reference=TAG)
    assert process.returncode == 0
    assert streamed == facts
    started = time.perf_counter()
    inspect_image_tar(saved[0], reference=TAG)
    elapsed = time.perf_counter() - started
    size_mib = saved[0].stat().st_size / 2**20
    # Headers and a few small files only: seconds would mean something reads whole layers.
    assert elapsed < 1.0 + size_mib / 100, f"{elapsed:.2f}s for {size_mib:.0f} MiB"
