"""Running Trivy: a private working directory, an environment without TRIVY_*, our error class.

The process rules themselves (process group, timeout, output tail) are ``hardening.process``'s.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from hardening.errors import ScannerError
from hardening.process import Completed, run_program
from hardening.scan.trivy.pin import PINNED

__all__ = ["Completed", "execute", "hard_timeout", "run_checked", "workdir"]


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
    """Run Trivy in ``work``; on timeout (or interrupt) its whole process group is killed."""
    return run_program(
        argv,
        what=what,
        error=ScannerError,
        timeout=timeout,
        cwd=work,
        env=_environment(),
        stdout=stdout,
        start_hint=f"check the binary {argv[0]}; the pinned Trivy comes from {PINNED}",
        timeout_hint="raise --timeout, or look for what makes the scan hang (a huge image, a stuck DB lock)",
    )


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
    """``execute``, where a non-zero exit is a ScannerError: "<program> exited with N <failed>".

    ``hint`` reads Trivy's stderr, so the advice can fit what Trivy complained about.
    """
    completed = execute(argv, work=work, stdout=stdout, timeout=timeout, what=what)
    if completed.returncode != 0:
        program = what.split(" (", 1)[0]
        raise ScannerError(
            f"{program} exited with {completed.returncode} {failed}",
            details=completed.stderr_tail or None,
            hint=hint(completed.stderr_tail),
        )


def hard_timeout(timeout: float) -> float:
    # Trivy's own --timeout gives a readable error; ours is the backstop a little later.
    return timeout + max(1.0, min(15.0, timeout * 0.1))
