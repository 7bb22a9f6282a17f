"""Make a Docker engine answer on machines that only have a docker CLI.

Where no engine answers and we are root on a Debian-like machine, Debian's ``docker.io`` is
installed and ``dockerd`` is started in the background. The pid of a daemon we started is recorded
so that ``engine down`` stops that daemon and never one somebody else runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hardening.engine.client import Engine
from hardening.errors import EngineError
from hardening.process import Completed, run_program, spawn_daemon

STATE_DIR = Path(os.environ.get("HARDENING_STATE_DIR", "/run/hardening"))
PID_FILE_NAME = "dockerd.pid"
LOG_FILE_NAME = "dockerd.log"
DOCKER_PID_FILE = Path("/var/run/docker.pid")
APT_TIMEOUT = 900.0


@dataclass(frozen=True)
class EngineStatus:
    answering: bool
    started_by_us: bool
    pid: int | None
    installed: bool = False
    message: str = ""


def _run(argv: list[str], timeout: float) -> Completed:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return run_program(
        argv, what=f"`{' '.join(argv)}`", error=EngineError, timeout=timeout, env=env, merge_stderr=True
    )


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def apt_install(packages: list[str]) -> None:
    """Install Debian packages, refreshing the package lists once if the first try fails."""
    if os.geteuid() != 0:
        raise EngineError(
            f"installing {', '.join(packages)} needs root",
            hint=f"run as root, or install {' '.join(packages)} yourself",
        )
    if shutil.which("apt-get") is None:
        raise EngineError(
            f"cannot install {', '.join(packages)}: no apt-get on this machine",
            hint="install a Docker engine by the means of this distribution, then retry",
        )
    argv = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    result = _run(argv, APT_TIMEOUT)
    if result.returncode != 0:
        update = _run(["apt-get", "update", "-q"], APT_TIMEOUT)
        if update.returncode != 0:
            raise EngineError("apt-get update failed", details=update.tail(15))
        result = _run(argv, APT_TIMEOUT)
    if result.returncode != 0:
        raise EngineError(
            f"`{' '.join(argv)}` failed with exit code {result.returncode}",
            details=result.tail(15),
        )


def ensure_commands(commands: dict[str, str]) -> None:
    """Install the Debian package of each command (name → package) that is not on PATH."""
    missing = sorted({package for command, package in commands.items() if shutil.which(command) is None})
    if missing:
        apt_install(missing)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_dockerd(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and Path(cmdline[0].decode(errors="replace")).name == "dockerd"


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def engine_up(
    *,
    state_dir: Path = STATE_DIR,
    wait_seconds: float = 60.0,
    answers: Callable[[], bool] = Engine.answers,
) -> EngineStatus:
    """Ensure an engine answers; idempotent."""
    pid_file = state_dir / PID_FILE_NAME
    ours = _read_pid(pid_file)
    if answers():
        mine = ours is not None and _pid_alive(ours) and _is_dockerd(ours)
        return EngineStatus(True, mine, ours if mine else None, message="engine already answers")
    if os.geteuid() != 0:
        raise EngineError(
            "no Docker engine answers and starting one needs root",
            hint="run `sudo harden engine up`, or start dockerd (or Docker Desktop) yourself",
        )
    installed = False
    if shutil.which("dockerd") is None:
        apt_install(["docker.io"])
        installed = True
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineError("docker.io was installed but dockerd is not on PATH")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = state_dir / LOG_FILE_NAME
    stale = _read_pid(DOCKER_PID_FILE)
    if stale is not None and not _pid_alive(stale):
        DOCKER_PID_FILE.unlink(missing_ok=True)
    # dockerd outlives this command; `engine down` stops it by the pid recorded here.
    process = spawn_daemon([dockerd], log=log_path, what="dockerd", error=EngineError)
    pid_file.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if answers():
            return EngineStatus(True, True, process.pid, installed, "started dockerd")
        if process.poll() is not None:
            break
        time.sleep(0.25)
    if process.poll() is None:
        process.terminate()
    pid_file.unlink(missing_ok=True)
    log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
    raise EngineError(
        f"dockerd did not answer within {wait_seconds:.0f} s",
        details=_tail(log_text, 20),
        hint=f"read {log_path}",
    )


def engine_down(*, state_dir: Path = STATE_DIR, wait_seconds: float = 30.0) -> EngineStatus:
    """Stop the daemon `engine up` started, and only that one."""
    pid_file = state_dir / PID_FILE_NAME
    pid = _read_pid(pid_file)
    if pid is None or not _pid_alive(pid) or not _is_dockerd(pid):
        pid_file.unlink(missing_ok=True)
        return EngineStatus(Engine.answers(), False, None, message="no engine started by harden is running")
    try:
        engine = Engine.connect(timeout=10)
        engine.remove_running_containers()
        engine.close()
    except EngineError:
        pass  # a dying daemon is stopped all the same
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and _pid_alive(pid) and _is_dockerd(pid):
        time.sleep(0.2)
    if _pid_alive(pid) and _is_dockerd(pid):
        raise EngineError(
            f"dockerd (pid {pid}) did not stop within {wait_seconds:.0f} s",
            hint=f"kill {pid} by hand",
        )
    pid_file.unlink(missing_ok=True)
    return EngineStatus(False, True, pid, message=f"stopped dockerd (pid {pid})")


def engine_status(*, state_dir: Path = STATE_DIR) -> EngineStatus:
    pid = _read_pid(state_dir / PID_FILE_NAME)
    mine = pid is not None and _pid_alive(pid) and _is_dockerd(pid)
    return EngineStatus(Engine.answers(), mine, pid if mine else None)
