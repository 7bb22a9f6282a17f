"""Everything a run will read, validated once, before the engine is asked for anything.

``plan_run`` reads and checks the catalog's selection, every rendering (drift included), every
policy, the gate with its suppressions, every baseline, and prepares every scanner (binary,
version, DB) and checks that each DB is no older than the gate's ``max_db_age``. Bad input stops
here with exit 2, a missing tool or a missing or stale DB with exit 3 — before a run directory
exists, before anything is built or tagged. The stages then take what they need from
the frozen ``RunPlan`` and never read those files again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from hardening.catalog import Catalog, ImageSpec
from hardening.errors import UsageError
from hardening.findings import SourceLocation, ToolInfo
from hardening.freshness import NO_LIMIT, AgeLimit, require_fresh
from hardening.gate import GatePolicy, load_baseline, load_gate
from hardening.pending.interface import UpdateSource
from hardening.policy.config import Policy, load_policies
from hardening.render import RenderedDockerfile, render_checked
from hardening.scan.interface import Scanner, ScanOptions


@dataclass(frozen=True)
class PlannedImage:
    spec: ImageSpec
    rendered: RenderedDockerfile  # checked: the committed Dockerfile is this rendering
    policy: Policy  # the image's policy files, merged
    baseline: frozenset[tuple[str, ...]]  # finding keys the gate accepts (empty without one)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fallback_location(self) -> SourceLocation:
        return fallback_location(self.spec)


@dataclass(frozen=True)
class PlannedScanner:
    scanner: Scanner
    tool: ToolInfo  # as ``prepare`` found it: version and DB
    primary: bool  # the first scanner's records keep the plain names (scan.json, sbom.cdx.json)


@dataclass(frozen=True)
class PlannedSource:
    source: UpdateSource
    tool: ToolInfo  # as ``prepare`` found it


@dataclass(frozen=True)
class RunPlan:
    root: Path  # the repository: templates, policies and the lines findings point at
    output_dir: Path  # runs and history
    source: str  # org.opencontainers.image.source
    images: tuple[PlannedImage, ...]
    gate: GatePolicy  # suppressions included
    scanners: tuple[PlannedScanner, ...]
    scan_options: ScanOptions
    record_history: bool = False
    today: date | None = None  # the gate's "today" for suppression expiry; None: the real one
    db_limit: AgeLimit = NO_LIMIT  # the limit on the data's age that was checked, for the reports
    sources: tuple[PlannedSource, ...] = ()  # update sources (pending updates); none: not checked

    @property
    def history_dir(self) -> Path:
        return self.output_dir / "history"


def fallback_location(spec: ImageSpec) -> SourceLocation:
    """Where a finding that cannot be traced to a line points: the rendered Dockerfile."""
    return SourceLocation(spec.dockerfile.as_posix(), 1)


def load_image_baseline(spec: ImageSpec, gate: GatePolicy) -> frozenset[tuple[str, ...]]:
    return load_baseline(gate.baseline_dir / f"{spec.name}.json") if gate.baseline_dir else frozenset()


def plan_image(spec: ImageSpec, root: Path, gate: GatePolicy) -> PlannedImage:
    """One image's inputs, each read and validated (a broken baseline is bad input too)."""
    rendered = render_checked(spec, root)
    policy = load_policies(root, spec.policies)
    return PlannedImage(spec, rendered, policy, load_image_baseline(spec, gate))


def prepare_scanners(scanners: Sequence[Scanner], options: ScanOptions) -> tuple[PlannedScanner, ...]:
    names = [scanner.name for scanner in scanners]
    if not names:
        raise UsageError("no scanner chosen", hint="pass --scanner trivy")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UsageError(f"scanner {', '.join(duplicates)} given more than once")
    return tuple(
        PlannedScanner(scanner, scanner.prepare(options), index == 0)
        for index, scanner in enumerate(scanners)
    )


def prepare_sources(sources: Sequence[UpdateSource]) -> tuple[PlannedSource, ...]:
    return tuple(PlannedSource(source, source.prepare()) for source in sources)


def plan_run(
    catalog: Catalog,
    names: Sequence[str],
    *,
    scanners: Sequence[Scanner],
    options: ScanOptions,
    record_history: bool = False,
    today: date | None = None,
    max_db_age: AgeLimit | None = None,
    sources: Sequence[UpdateSource] = (),
) -> RunPlan:
    """Validate every input of a run; inputs first (exit 2), then the tools (exit 3).

    ``max_db_age`` (the command line's) replaces the gate's limit on the data's age.
    """
    specs = catalog.select(list(names))
    gate = load_gate(catalog.gate, catalog.root)
    images = tuple(plan_image(spec, catalog.root, gate) for spec in specs)
    planned = prepare_scanners(scanners, options)
    db_limit = gate.age_limit(max_db_age)
    cache = str(options.cache_dir) if options.cache_dir else None
    require_fresh([p.tool for p in planned], db_limit, now=datetime.now(UTC), cache_dir=cache)
    return RunPlan(
        root=catalog.root,
        output_dir=catalog.output_dir,
        source=catalog.source,
        images=images,
        gate=gate,
        scanners=planned,
        scan_options=options,
        record_history=record_history,
        today=today,
        db_limit=db_limit,
        sources=prepare_sources(sources),
    )
