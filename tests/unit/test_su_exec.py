"""su-exec, compiled with the host's gcc through its own Makefile and run as root.

Fixture users come from copies of /etc/passwd and /etc/group bind-mounted over the
real ones inside a private mount namespace (``unshare -m``), so the host's user
database is never modified.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SOURCE_DIR = Path(__file__).resolve().parents[2] / "dockerfiles" / "postgres-secure" / "su-exec"
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FIXTURE_PASSWD = "suexec-test:x:4242:4242::/srv/suexec-test:/bin/sh\n"
FIXTURE_GROUP = "suexec-test:x:4242:\nsuexec-extra:x:4243:suexec-test\n"
PT_INTERP = 3


def _require(condition: bool, why: str) -> None:
    # CI runs as root with gcc and unshare; anywhere else these tests cannot mean anything.
    if not condition:
        pytest.fail(why, pytrace=False)


@pytest.fixture(scope="module")
def su_exec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require(os.geteuid() == 0, "su-exec tests switch users and must run as root")
    _require(
        shutil.which("gcc") is not None and shutil.which("make") is not None,
        "need gcc and make",
    )
    build = tmp_path_factory.mktemp("su-exec")
    for name in ("su-exec.c", "Makefile", "test.sh"):
        shutil.copy(SOURCE_DIR / name, build / name)
    result = subprocess.run(["make", "-C", str(build)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    # The static glibc NSS warning would mean lookups silently depend on the image's libc.
    assert "getpwnam" not in result.stderr and "initgroups" not in result.stderr, result.stderr
    binary = build / "su-exec"
    # Lets unprivileged users reach it: pytest creates its temporary directories 0700.
    top = tmp_path_factory.getbasetemp().parent
    for directory in (build, *build.parents):
        if not directory.is_relative_to(top):
            break
        directory.chmod(directory.stat().st_mode | 0o111)
    return binary


@pytest.fixture
def in_fixture_namespace(
    tmp_path: Path,
) -> Iterator[Callable[[list[str]], subprocess.CompletedProcess[str]]]:
    _require(
        shutil.which("unshare") is not None,
        "need unshare(1) for a private mount namespace",
    )
    passwd = tmp_path / "passwd"
    group = tmp_path / "group"
    passwd.write_text(Path("/etc/passwd").read_text() + FIXTURE_PASSWD)
    group.write_text(Path("/etc/group").read_text() + FIXTURE_GROUP)
    passwd.chmod(0o644)
    group.chmod(0o644)

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        script = 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"'
        return subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                str(passwd),
                str(group),
                *argv,
            ],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": SAFE_PATH},
        )

    yield run


def _run(argv: list[str], preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": SAFE_PATH},
        preexec_fn=preexec,
    )


def test_shell_suite_passes(
    su_exec: Path,
    in_fixture_namespace: Callable[[list[str]], subprocess.CompletedProcess[str]],
) -> None:
    result = in_fixture_namespace(["sh", str(su_exec.parent / "test.sh"), str(su_exec)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def test_user_by_name(su_exec: Path) -> None:
    result = _run([str(su_exec), "nobody", "id", "-u"])
    assert (result.returncode, result.stdout.strip()) == (0, "65534")


def test_numeric_user_and_group(su_exec: Path) -> None:
    result = _run([str(su_exec), "65534:65534", "id", "-G"])
    assert (result.returncode, result.stdout.strip()) == (0, "65534")


def test_supplementary_groups_set_from_group_file(
    su_exec: Path,
    in_fixture_namespace: Callable[[list[str]], subprocess.CompletedProcess[str]],
) -> None:
    result = in_fixture_namespace([str(su_exec), "suexec-test", "id", "-G"])
    assert (result.returncode, result.stdout.split()) == (0, ["4242", "4243"]), result.stderr


def test_callers_supplementary_groups_are_cleared(su_exec: Path) -> None:
    result = _run([str(su_exec), "nobody", "id", "-G"], preexec=lambda: os.setgroups([4, 24, 27]))
    assert (result.returncode, result.stdout.strip()) == (0, "65534")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-such-user", "unknown user 'no-such-user'"),
        ("root:no-such-group", "unknown group 'no-such-group'"),
        ("nobody:no-such-group", "unknown group 'no-such-group'"),
        ("4294967295", "unknown user"),
    ],
)
def test_refusal_runs_nothing(su_exec: Path, tmp_path: Path, spec: str, message: str) -> None:
    marker = tmp_path / "ran"
    result = _run([str(su_exec), spec, "touch", str(marker)])
    assert result.returncode == 1
    assert message in result.stderr
    assert not marker.exists(), "the command ran although su-exec refused"


@pytest.mark.parametrize("argv", [[], ["nobody"], ["", "true"], [":root", "true"], ["nobody:", "true"]])
def test_usage_errors(su_exec: Path, argv: list[str]) -> None:
    result = _run([str(su_exec), *argv])
    assert result.returncode == 1
    assert result.stderr.startswith("usage: su-exec USER[:GROUP] COMMAND")


def test_execs_in_place(su_exec: Path) -> None:
    result = _run(["sh", "-c", 'echo $$; exec "$0" nobody sh -c "echo \\$\\$"', str(su_exec)])
    lines = result.stdout.split()
    assert result.returncode == 0, result.stderr
    assert len(lines) == 2 and lines[0] == lines[1], lines


def test_is_statically_linked(su_exec: Path) -> None:
    data = su_exec.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, "expected a 64-bit ELF"
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    assert PT_INTERP not in types, "su-exec has a dynamic loader; it must be static"
