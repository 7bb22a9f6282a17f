"""The one program runner: output, exit status, timeouts that kill the whole group, start failures."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from hardening.errors import BuildError, EngineError, Location
from hardening.process import run_program


def test_output_and_exit_status_are_the_callers(tmp_path: Path) -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    done = run_program([sys.executable, "-c", code], what="demo", error=BuildError, timeout=30)
    assert (done.returncode, done.output.strip(), done.stderr_tail.strip()) == (3, "out", "err")
    merged = run_program(
        [sys.executable, "-c", code], what="demo", error=BuildError, timeout=30, merge_stderr=True
    )
    assert sorted(merged.output.split()) == ["err", "out"]
    to_file = tmp_path / "out.txt"
    written = run_program(
        [sys.executable, "-c", code], what="demo", error=BuildError, timeout=30, stdout=to_file
    )
    assert written.output == "" and to_file.read_text().strip() == "out"


def test_timeout_kills_the_group_and_raises_the_callers_error(tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    # the program starts a child in its own group and hangs; both must be gone after the timeout
    code = (
        "import subprocess, sys, time, pathlib;"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"pathlib.Path({str(child_pid)!r}).write_text(str(c.pid));"
        "print('started', file=sys.stderr, flush=True);"
        "time.sleep(60)"
    )
    with pytest.raises(EngineError, match=r"demo did not finish within 2 s and was killed") as caught:
        run_program(
            [sys.executable, "-c", code],
            what="demo",
            error=EngineError,
            timeout=2,
            timeout_hint="raise the timeout",
            location=Location("x.lock"),
        )
    assert caught.value.hint == "raise the timeout" and str(caught.value.location) == "x.lock"
    assert "started" in (caught.value.details or "")
    pid = int(child_pid.read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if stat in ("Z", "X"):
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists() or stat in ("Z", "X"), "the child outlived its group"


def test_a_program_that_cannot_start_is_the_callers_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"cannot start demo") as caught:
        run_program(
            [str(tmp_path / "missing")], what="demo", error=BuildError, timeout=5, start_hint="install it"
        )
    assert caught.value.hint == "install it"
