"""The `harden` command: parses, wires and prints. The only module that prints or exits."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from hardening import __version__
from hardening.catalog import CATALOG_NAME, Catalog, load_catalog
from hardening.errors import ExitCode, HardeningError


class Context:
    def __init__(self, catalog_path: Path, verbose: bool) -> None:
        self.catalog_path = catalog_path
        self.verbose = verbose
        self._catalog: Catalog | None = None

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = load_catalog(self.catalog_path)
        return self._catalog


pass_ctx = click.make_pass_decorator(Context)


def echo(message: str = "", *, err: bool = False) -> None:
    click.echo(message, err=err)


def progress_printer(prefix: str = "") -> Callable[[str], None]:
    def on_line(line: str) -> None:
        click.echo(f"{prefix}{line}", err=True)

    return on_line


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path(CATALOG_NAME),
    show_default=True,
    envvar="HARDENING_CATALOG",
    help="The catalog of images.",
)
@click.option("-v", "--verbose", is_flag=True, help="Print engine and tool output as it comes.")
@click.version_option(__version__, prog_name="harden")
@click.pass_context
def cli(ctx: click.Context, catalog_path: Path, verbose: bool) -> None:
    """Build hardened container images, prove they are hardened, scan them, gate releases.

    Exit codes: 0 passed, 1 gate or check failed, 2 bad input or usage, 3 tool or
    infrastructure failure, 130 interrupted.
    """
    ctx.obj = Context(catalog_path, verbose)


# -- engine -------------------------------------------------------------------------------


@cli.group()
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


# -- base ---------------------------------------------------------------------------------


@cli.command()
@click.option("--force", is_flag=True, help="Rebuild even if an image with matching labels exists.")
@click.option("--suite", help="Debian suite (overrides the catalog).")
@click.option("--mirror", help="Debian archive mirror URL (default: from the machine's apt configuration).")
@click.argument("names", nargs=-1)
@pass_ctx
def base(ctx: Context, force: bool, suite: str | None, mirror: str | None, names: tuple[str, ...]) -> None:
    """Build the local Debian base image(s) named in the catalog's [base.*] tables."""
    from dataclasses import replace

    from hardening.base import ensure_base
    from hardening.engine.client import Engine

    catalog = ctx.catalog
    selected = names or tuple(catalog.bases)
    unknown = [n for n in selected if n not in catalog.bases]
    if unknown:
        raise click.UsageError(f"no base named {', '.join(unknown)}; known: {', '.join(catalog.bases)}")
    client = Engine.connect()
    for name in selected:
        spec = catalog.bases[name]
        if suite:
            spec = replace(spec, suite=suite)
        if mirror:
            spec = replace(spec, mirror=mirror)
        result = ensure_base(
            client, spec, force=force, on_line=progress_printer("  ") if ctx.verbose else None
        )
        state = "built" if result.rebuilt else "up to date"
        echo(
            f"base {result.ref}: {state}, {result.size / 1e6:.1f} MB, "
            f"{result.packages} packages, mirror {result.mirror}"
        )


# -- render -------------------------------------------------------------------------------


@cli.command()
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff if a committed file drifted.")
@click.argument("images", nargs=-1)
@pass_ctx
def render(ctx: Context, check: bool, images: tuple[str, ...]) -> None:
    """Render dockerfiles/<image>/Dockerfile from its template and the catalog."""
    from hardening.render import check_drift, write_rendered
    from hardening.render import render as render_one

    catalog = ctx.catalog
    specs = catalog.select(images)
    rendered = [render_one(spec, catalog.root) for spec in specs]  # all validated before any write
    drifted = 0
    for item in rendered:
        if check:
            diff = check_drift(item, catalog.root)
            if diff:
                drifted += 1
                echo(diff)
                echo(f"{item.path}: drifted from {item.template}", err=True)
            else:
                echo(f"{item.path}: up to date")
        else:
            changed = write_rendered(item, catalog.root)
            echo(f"{item.path}: {'written' if changed else 'unchanged'}")
    if drifted:
        echo(f"{drifted} rendered Dockerfile(s) differ; run `harden render` and commit them.", err=True)
        sys.exit(ExitCode.GATE_FAILED)


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place where errors become messages and exit codes."""
    try:
        cli.main(args=argv, prog_name="harden", standalone_mode=False)
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
