"""`harden engine`: make a Docker engine answer, or stop the one we started."""

from __future__ import annotations

import sys

import click

from hardening.cli.app import echo
from hardening.errors import ExitCode


@click.group()
def engine() -> None:
    """Start, stop or query the Docker engine harden uses."""


@engine.command("up")
def engine_up_cmd() -> None:
    """Make a Docker engine answer (installs and starts Debian's docker.io if needed)."""
    from hardening.engine.provision import engine_up

    status = engine_up()
    pid = f" (pid {status.pid})" if status.pid else ""
    echo(f"engine: {status.message}{pid}")


@engine.command("down")
def engine_down_cmd() -> None:
    """Stop the engine `harden engine up` started; never one started by someone else."""
    from hardening.engine.provision import engine_down

    echo(f"engine: {engine_down().message}")


@engine.command("status")
def engine_status_cmd() -> None:
    """Say whether an engine answers and whether harden started it (exit 3 if none answers)."""
    from hardening.engine.provision import engine_status

    status = engine_status()
    owner = f"started by harden, pid {status.pid}" if status.started_by_us else "not started by harden"
    echo(f"engine: {'answers' if status.answering else 'does not answer'} ({owner})")
    if not status.answering:
        sys.exit(ExitCode.INFRASTRUCTURE)
