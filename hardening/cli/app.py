"""The click group, the shared context and the output helpers of every subcommand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import click

from hardening import __version__
from hardening.catalog import CATALOG_NAME, DEFAULT_OUTPUT_DIR, Catalog, load_catalog
from hardening.freshness import AGE_SYNTAX, NO_LIMIT_WORD, AgeLimit, parse_age
from hardening.pending.interface import UpdateSource
from hardening.pending.registry import SourceSettings, UpdateSourceRegistry
from hardening.scan.interface import Scanner
from hardening.scan.registry import DEFAULT_SCANNER, ScannerRegistry, ScannerSettings


@dataclass(frozen=True)
class Registries:
    """The implementations commands choose from. `main` takes another (tests add a scanner)."""

    scanners: ScannerRegistry
    sources: UpdateSourceRegistry = field(default_factory=UpdateSourceRegistry.default)

    @classmethod
    def default(cls) -> Registries:
        return cls(ScannerRegistry.default(), UpdateSourceRegistry.default())


class Context:
    def __init__(
        self,
        catalog_path: Path,
        verbose: bool,
        output_dir: Path | None = None,
        registries: Registries | None = None,
        *,
        catalog_given: bool = True,
    ) -> None:
        self.catalog_path = catalog_path
        self.verbose = verbose
        self.output_dir = output_dir
        self.registries = registries or Registries.default()
        # whether --catalog or $HARDENING_CATALOG named the catalog (else the default name)
        self.catalog_given = catalog_given
        self._catalog: Catalog | None = None

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            catalog = load_catalog(self.catalog_path)
            if self.output_dir is not None:
                catalog = replace(catalog, output_dir=self.output_dir.expanduser().resolve())
            self._catalog = catalog
        return self._catalog

    def output_dir_outside_catalog(self) -> Path:
        """Where a command about an image outside the catalog (``--image REF``) writes runs.

        ``--output-dir``; else the catalog's output directory; else, when no catalog was named
        and there is none here, ``scans/`` in the working directory: such a command needs no
        repository. A catalog that was named but cannot be read is still an error.
        """
        if self.output_dir is not None:
            return self.output_dir.expanduser().resolve()
        if self.catalog_given or self.catalog_path.is_file():
            return self.catalog.output_dir
        return Path(DEFAULT_OUTPUT_DIR).resolve()


pass_ctx = click.make_pass_decorator(Context)

# Where the Trivy DB (`harden db build`) and our scan result cache live, for scan and run alike.
DEFAULT_TRIVY_CACHE = Path("~/.cache/hardening/trivy")

trivy_option = click.option(
    "--trivy",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The Trivy binary (default: $HARDENING_TRIVY, then the venv's pinned trivy, then PATH).",
)
trivy_cache_option = click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_TRIVY_CACHE,
    envvar="HARDENING_TRIVY_CACHE",
    show_default=True,
    help="Trivy cache directory holding db/ (see `harden db build`) and our result cache.",
)


def _max_db_age(ctx: click.Context, param: click.Parameter, value: str | None) -> AgeLimit | None:
    if value is None:
        return None
    source = ctx.get_parameter_source(param.name or "")
    origin = "$HARDENING_MAX_DB_AGE" if source is click.core.ParameterSource.ENVIRONMENT else "--max-db-age"
    if value == NO_LIMIT_WORD:
        return AgeLimit(None, f"{origin} {NO_LIMIT_WORD}")
    try:
        return AgeLimit(parse_age(value), origin)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


max_db_age_option = click.option(
    "--max-db-age",
    metavar="AGE",
    envvar="HARDENING_MAX_DB_AGE",
    callback=_max_db_age,
    help=f"The oldest vulnerability data to accept, replacing the gate's max_db_age: {AGE_SYNTAX}. "
    "Older data exits 3.",
)


scanner_option = click.option(
    "--scanner",
    "scanner_names",
    multiple=True,
    metavar="NAME",
    help=f"Scanner to run (repeatable; default {DEFAULT_SCANNER}). Each gets its own SARIF run.",
)


def make_scanners(ctx: Context, names: tuple[str, ...], trivy: Path | None) -> list[Scanner]:
    """The scanners named on the command line (the default one if none), from the registry."""
    settings = ScannerSettings({DEFAULT_SCANNER: trivy} if trivy else {})
    return [ctx.registries.scanners.create(name, settings) for name in names or (DEFAULT_SCANNER,)]


pending_option = click.option(
    "--no-pending",
    "no_pending",
    is_flag=True,
    help="Do not compare the image's packages with its Debian archive (no pending-update findings; "
    "a gate with max_pending_security_days then fails).",
)


def make_sources(ctx: Context, *, enabled: bool) -> list[UpdateSource]:
    """Every update source of the registry, seeded with the first sightings the repository's
    committed update history records (so a fresh machine does not take an old update for new)."""
    if not enabled or not ctx.registries.sources.names:
        return []
    from hardening.pending.updates import known_sightings

    # `harden scan --image REF --out DIR` needs no catalog; the history is read when there is one.
    history = [ctx.catalog.output_dir / "history"] if ctx.catalog_path.is_file() else []
    return ctx.registries.sources.create_all(SourceSettings(known_sightings(history)))


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
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="HARDENING_OUTPUT_DIR",
    help="Where runs and history are written and read (default: the catalog's project.output_dir).",
)
@click.option("-v", "--verbose", is_flag=True, help="Print engine and tool output as it comes.")
@click.version_option(__version__, prog_name="harden")
@click.pass_context
def cli(ctx: click.Context, catalog_path: Path, output_dir: Path | None, verbose: bool) -> None:
    """Build hardened container images, prove they are hardened, scan them, gate releases.

    Exit codes: 0 passed, 1 gate or check failed, 2 bad input or usage, 3 tool or
    infrastructure failure, 130 interrupted.
    """
    # `main(registries=…)` hands its registries in as the initial object.
    registries = ctx.obj if isinstance(ctx.obj, Registries) else None
    given = ctx.get_parameter_source("catalog_path") is not click.core.ParameterSource.DEFAULT
    ctx.obj = Context(catalog_path, verbose, output_dir, registries, catalog_given=given)
