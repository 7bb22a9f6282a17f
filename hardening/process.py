"""The one way this tool runs another program.

Every external program (Trivy, pip, git, debootstrap, apt-get, tar, dockerd) goes through here,
so they all get the same rules: an argument list and never a shell, stdin closed, a timeout, a
process group of their own that is killed whole on timeout or interrupt (a tool's children must
not outlive it), output captured to private files rather than pipes (no deadlock on a chatty
tool, bounded memory for its error tail), and every failure to start or to finish raised as the
caller's error class, so that an exit code says whose fault it was.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess  # nosec B404 - argument lists only, never a shell
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hardening.errors import HardeningError, Location

TAIL_LINES = 25
_TAIL_BYTES = 16384


@dataclass(frozen=True)
class Completed:
    returncode: int
    output: str  # what the program printed (stderr too when merged); "" when stdout went to a file
    stderr_tail: str  # the last lines of stderr; with merged output, the last lines of that

    def tail(self, lines: int = TAIL_LINES) -> str:
        text = self.output or self.stderr_tail
        return "\n".join(text.strip().splitlines()[-lines:])


def run_program(
    argv: Sequence[str],
    *,
    what: str,
    error: type[HardeningError],
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout: Path | None = None,
    merge_stderr: bool = False,
    start_hint: str | None = None,
    timeout_hint: str | None = None,
    location: Location | None = None,
) -> Completed:
    """Run ``argv`` to completion; the exit status is the caller's to judge.

    ``stdout`` names a file for the program's output (a report, an SBOM); otherwise it is
    captured and returned. ``what`` names the program in messages ("trivy (scanning app)").
    """
    with tempfile.TemporaryDirectory(prefix="hardening-proc-") as private:
        out_path = stdout or Path(private) / "stdout"
        err_path = Path(private) / "stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            try:
                process = subprocess.Popen(  # nosec B603 - argument list, no shell
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT if merge_stderr else err,
                    cwd=cwd,
                    env=dict(env) if env is not None else None,
                    start_new_session=True,
                )
            except OSError as exc:
                raise error(
                    f"cannot start {what}: {exc.strerror or exc}", location=location, hint=start_hint
                ) from exc
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raise error(
                    f"{what} did not finish within {timeout:g} s and was killed",
                    location=location,
                    details=_tail(out_path if merge_stderr else err_path) or None,
                    hint=timeout_hint,
                ) from None
            except BaseException:
                _kill_group(process)
                raise
        output = "" if stdout is not None else _read(out_path)
        tail_source = out_path if merge_stderr else err_path
        return Completed(returncode, output, _tail(tail_source))


def spawn_daemon(
    argv: Sequence[str], *, log: Path, what: str, error: type[HardeningError]
) -> subprocess.Popen[bytes]:
    """Start a program meant to outlive this command (dockerd), its output appended to ``log``.

    The caller polls it for readiness with a deadline and stops it by pid later.
    """
    try:
        with log.open("ab") as handle:
            return subprocess.Popen(  # nosec B603 - argument list, no shell
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not killed with this command's process group
            )
    except OSError as exc:
        raise error(f"cannot start {what}: {exc.strerror or exc}", hint=f"read {log}") from exc


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _TAIL_BYTES))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-TAIL_LINES:])
