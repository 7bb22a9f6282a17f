"""Build progress: a live line on a terminal, the steps in CI logs, everything with -v."""

from __future__ import annotations

import pytest

from hardening.cli.build import BuildDisplay

# What the engine streamed for the first steps of a Redis image built on the base (shortened).
BASE_LINES = (
    "$ debootstrap --variant=minbase --components=main bookworm /var/tmp/hardening-base-x/rootfs http://<debian-mirror>/debian",
    "$ chroot /var/tmp/hardening-base-x/rootfs apt-get update -q",
    "importing hardening/debian:bookworm",
)
ENGINE_LINES = (
    "Step 1/4 : FROM hardening/debian:bookworm",
    " ---> 38eab83953e2",
    "Step 2/4 : RUN apt-get update  && apt-get install -y --no-install-recommends redis-server"
    + "  && rm -rf /var/lib/apt/lists/*" * 8,
    " ---> Running in 7765248fb989",
    "Get:1 http://<debian-mirror>/debian bookworm InRelease [151 kB]",
    "Reading package lists...",
    "(Reading database ... 45%",
    "Setting up redis-server (5:7.0.15-1~deb12u10) ...",
    "Removing intermediate container 7765248fb989",
    " ---> f20f8c0e999c",
    "Step 3/4 : USER 999:999",
    " ---> Running in 89d769160031",
    'Step 4/4 : CMD ["redis-server"]',
    "Successfully built 449de6ae43d1",
    "Successfully tagged hardening/redis-secure:candidate",
)


def _show(display: BuildDisplay) -> None:
    base = display.sink("base hardening/debian:bookworm")
    for line in BASE_LINES:
        base(line)
    image = display.sink("redis-secure")
    for line in ENGINE_LINES:
        image(line)
    display.done()


def test_without_a_terminal_only_the_steps_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    _show(BuildDisplay(verbose=False, live=False))
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[:3] == [f"base hardening/debian:bookworm: {line}" for line in BASE_LINES]
    assert [line.split(": ", 1)[1][:9] for line in lines[3:]] == [
        "Step 1/4 ",
        "Step 2/4 ",
        "Step 3/4 ",
        "Step 4/4 ",
    ]
    assert not any(
        word in captured.err for word in ("Reading", "Get:1", "Setting up", "--->", "Successfully")
    )
    # a long RUN is cut: its first words say which step it is
    step_two = lines[4]
    assert step_two.startswith("redis-secure: Step 2/4 : RUN apt-get update") and step_two.endswith("…")
    assert len(step_two) == len("redis-secure: ") + 160


def test_verbose_prints_every_line_as_it_came(capsys: pytest.CaptureFixture[str]) -> None:
    _show(BuildDisplay(verbose=True, live=True))  # -v wins over a terminal
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        *(f"base hardening/debian:bookworm: {line}" for line in BASE_LINES),
        *(f"redis-secure: {line}" for line in ENGINE_LINES),
    ]


def test_a_terminal_gets_one_line_rewritten_in_place(capsys: pytest.CaptureFixture[str]) -> None:
    _show(BuildDisplay(verbose=False, live=True))
    err = capsys.readouterr().err
    assert "\n" not in err
    # click drops the escape codes when stderr is captured; the carriage returns stay
    noise = 5  # " ---> …" and "Removing intermediate container …"
    assert err.count("\r") == len(BASE_LINES) + len(ENGINE_LINES) - noise + 1  # cleared at the end
    assert "(Reading database ... 45%" in err
