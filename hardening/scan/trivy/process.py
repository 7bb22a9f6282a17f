"""Running Trivy: its own process group, a private working directory, a bounded stderr tail."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess  # nosec B404 - argument lists only, never a shell
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hardening.errors import ScannerError
from hardening.scan.trivy.pin import PINNED

_STDERR_TAIL_LINES = 25


@dataclass(frozen=True)
class Completed:
    returncode: int
    stderr_tail: str


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    # Trivy reads trivy.yaml, .trivyignore and trivy-secret.yaml from its working directory; an
    # empty private one means a stray file there can neither hide findings nor change the scan.
    with tempfile.TemporaryDirectory(prefix="hardening-trivy-") as tmp:
        yield Path(tmp)


def _environment() -> dict[str, str]:
    # TRIVY_* variables would override our flags (TRIVY_SEVERITY, TRIVY_IGNOREFILE, …).
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("TRIVY_")}


def execute(argv: Sequence[str], *, work: Path, stdout: Path, timeout: float, what: str) -> Completed:
    """Run in its own process group; on timeout (or interrupt) kill the whole group."""
    fd, name = tempfile.mkstemp(dir=work, prefix=".stderr-")
    stderr_path = Path(name)
    with stdout.open("wb") as out, os.fdopen(fd, "wb") as err:
        try:
            process = subprocess.Popen(  # nosec B603 - argument list, no shell
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=work,
                env=_environment(),
                start_new_session=True,
            )
        except OSError as exc:
            raise ScannerError(
                f"cannot start {what}: {exc.strerror or exc}",
                hint=f"check the binary {argv[0]}; the pinned Trivy comes from {PINNED}",
            ) from exc
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise ScannerError(
                f"{what} did not finish within {timeout:g} s and was killed",
                details=_tail(stderr_path) or None,
                hint="raise --timeout, or look for what makes the scan hang (a huge image, a stuck DB lock)",
            ) from None
        except BaseException:
            _kill_group(process)
            raise
    return Completed(returncode, _tail(stderr_path))


def run_checked(
    argv: Sequence[str],
    *,
    work: Path,
    stdout: Path,
    timeout: float,
    what: str,
    failed: str,
    hint: Callable[[str], str],
) -> None:
    """``run``, where a non-zero exit is a ScannerError: "<program> exited with N <failed>".

    ``hint`` reads Trivy's stderr, so the advice can fit what Trivy complained about.
    """
    run = execute(argv, work=work, stdout=stdout, timeout=timeout, what=what)
    if run.returncode != 0:
        program = what.split(" (", 1)[0]
        raise ScannerError(
            f"{program} exited with {run.returncode} {failed}",
            details=run.stderr_tail or None,
            hint=hint(run.stderr_tail),
        )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _tail(path: Path) -> str:
    try:
        text = path.read_bytes()[-16384:].decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-_STDERR_TAIL_LINES:])


def hard_timeout(timeout: float) -> float:
    # Trivy's own --timeout gives a readable error; ours is the backstop a little later.
    return timeout + max(1.0, min(15.0, timeout * 0.1))
