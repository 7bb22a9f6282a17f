"""What `harden build` prints without a terminal, on the real engine: the steps, a failed step's
last lines, and everything with -v."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardening.engine.client import Engine
from tests.reliability.harness import harden, make_repo

pytestmark = pytest.mark.docker

REPOSITORY = "hardening-reviewer/build-output"
# Forty lines of output from one step, as apt or pip would print; the greeting makes every
# build of the test a new one (no cached step prints nothing).
TEMPLATE = """\
FROM {{ base_image }}
RUN echo {{ greeting }} && for i in $(seq 1 40); do echo "progress line $i"; done
USER 10001:10001
"""
FAILING = """\
FROM {{ base_image }}
RUN echo {{ greeting }} && for i in $(seq 1 40); do echo "progress line $i"; done && exit 7
USER 10001:10001
"""


@pytest.fixture
def cleanup(engine: Engine) -> Iterator[None]:
    yield
    engine.remove_image(f"{REPOSITORY}:candidate")


def _build(tmp_path: Path, template: str, *flags: str) -> tuple[int, str]:
    greeting = f"g{secrets.token_hex(6)}"
    catalog = make_repo(tmp_path / greeting, greeting=greeting, template=template, repository=REPOSITORY)
    result = harden(catalog, *flags, "build")  # a subprocess: stderr is a pipe, not a terminal
    return result.code, result.stderr


@pytest.mark.usefixtures("base_image", "cleanup")
def test_without_a_terminal_the_steps_are_printed_and_not_their_output(tmp_path: Path) -> None:
    code, err = _build(tmp_path, TEMPLATE)
    assert code == 0, err
    lines = err.splitlines()
    # one line per step: the template's three, then the build labels harden adds
    assert all(re.match(rf"demo: Step {i}/{len(lines)} : ", line) for i, line in enumerate(lines, 1)), err
    assert lines[0].endswith(" : FROM hardening/debian:bookworm")
    assert " : RUN echo g" in lines[1] and lines[2].endswith(" : USER 10001:10001")
    assert not re.search(r"^demo: progress line", err, re.MULTILINE) and "--->" not in err


@pytest.mark.usefixtures("base_image", "cleanup")
def test_verbose_prints_every_line(tmp_path: Path) -> None:
    code, err = _build(tmp_path, TEMPLATE, "-v")
    assert code == 0, err
    assert all(f"demo: progress line {i}\n" in err for i in range(1, 41)), err
    assert "demo:  ---> Running in" in err


@pytest.mark.usefixtures("base_image", "cleanup")
def test_a_failed_step_shows_the_last_lines_of_its_output(tmp_path: Path) -> None:
    code, err = _build(tmp_path, FAILING)
    assert code == 3, err
    assert re.search(r"^demo: Step 2/\d+ : RUN echo g", err, re.MULTILINE), err
    assert re.search(r"build failed at step 2/\d+", err), err
    # the tail of the log, in the error: the last lines the step printed, not the first
    assert "  | progress line 40" in err and "  | progress line 30" in err
    assert "progress line 1\n" not in err
