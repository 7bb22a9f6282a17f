"""The `harden` command: parses, wires and prints. The only package that prints or exits.

Subcommands live one module each and are registered here, explicitly.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click

from hardening.cli import (
    base,
    build,
    builddiff,
    check,
    db,
    engine,
    keys,
    matrix,
    outdated,
    release,
    render,
    report,
    run,
    scan,
    trend,
    verify,
)
from hardening.cli.app import Registries, cli
from hardening.errors import ExitCode, HardeningError

# Every subcommand, registered explicitly; a test walks this list against `harden --help`.
COMMANDS: tuple[click.Command, ...] = (
    engine.engine,
    base.base,
    render.render,
    build.build,
    builddiff.build_diff,
    check.check,
    scan.scan,
    db.db,
    outdated.outdated,
    outdated.advisories,
    matrix.matrix,
    trend.trend,
    run.run,
    release.release,
    keys.keys,
    verify.verify,
    report.diff,
    report.sarif,
    report.baseline,
    report.report,
)
for _command in COMMANDS:
    cli.add_command(_command)

__all__ = ["COMMANDS", "cli", "main"]


def main(argv: list[str] | None = None, *, registries: Registries | None = None) -> None:
    """Entry point: the one place where errors become messages and exit codes."""
    # CI runners and `timeout` stop jobs with SIGTERM. Python's default would end the process on
    # the spot (exit -15): no cleanup, no message, a half-done build or scan left running. Treated
    # as Ctrl-C instead, it unwinds like an interrupt: Trivy's process group is killed, the build
    # stream is closed (so the engine cancels it) and we exit 130.
    if threading.current_thread() is threading.main_thread():  # signal() works only there
        signal.signal(signal.SIGTERM, _terminated)
    try:
        cli.main(args=argv, prog_name="harden", standalone_mode=False, obj=registries)
    except HardeningError as exc:
        click.echo(exc.diagnostics(), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.BAD_INPUT)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(ExitCode.OK)


def _terminated(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
