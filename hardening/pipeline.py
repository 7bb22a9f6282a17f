"""Wires the stages together: render check → base → build (→ check → scan → report → gate).

Each stage is a module with its own interface; this module only orders them and records what
happened in the run directory.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hardening import __version__
from hardening.atomic import write_json
from hardening.base import ensure_base
from hardening.build.docker import DockerBuilder
from hardening.build.interface import BuildResult
from hardening.catalog import Catalog, ImageSpec
from hardening.errors import BuildError, DockerfileError, HardeningError, OutputError, RenderError
from hardening.process import run_program
from hardening.render import RenderedDockerfile, check_drift, render

if TYPE_CHECKING:  # the docker SDK is slow to import and only needed to talk to the engine
    from hardening.engine.client import Engine

LineSink = Callable[[str], None]


@dataclass(frozen=True)
class RunDir:
    path: Path
    run_id: str

    def image_dir(self, image: str) -> Path:
        return self.path / image


def runs_root(catalog: Catalog) -> Path:
    return catalog.output_dir / "runs"


def new_run_dir(catalog: Catalog, *, now: datetime | None = None) -> RunDir:
    moment = now or datetime.now(UTC)
    # Microseconds keep run ids in the order the runs started, so "latest" is really the latest.
    run_id = f"{moment.strftime('%Y%m%dT%H%M%S')}{moment.microsecond:06d}Z-{secrets.token_hex(2)}"
    root = runs_root(catalog)
    path = root / run_id
    try:
        path.mkdir(parents=True)
        latest = root / "latest"
        tmp_link = root / f".latest-{run_id}"
        tmp_link.symlink_to(run_id)
        tmp_link.replace(latest)
    except OSError as exc:
        raise OutputError(f"cannot create the run directory {path}: {exc}") from exc
    return RunDir(path, run_id)


def latest_build(catalog: Catalog, image: str) -> tuple[RunDir, dict[str, object]] | None:
    """The newest build record of ``image`` among the run directories."""
    root = runs_root(catalog)
    if not root.is_dir():
        return None
    for run in sorted((p for p in root.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True):
        record = run / image / "build.json"
        if record.is_file():
            try:
                data = json.loads(record.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(data, dict):
                return RunDir(run, run.name), data
    return None


def _git(root: Path, *args: str) -> str | None:
    # Outside a git checkout (a source tarball) the labels say "unknown"; that is no error.
    try:
        result = run_program(["git", *args], what="git", error=BuildError, timeout=20, cwd=root)
    except BuildError:
        return None
    return result.output.strip() if result.returncode == 0 else None


def source_identity(root: Path) -> tuple[str, str]:
    """(revision, created) from the last commit, so an unchanged tree builds the same image id."""
    revision = _git(root, "rev-parse", "HEAD") or "unknown"
    created_raw = _git(root, "log", "-1", "--format=%cI")
    if created_raw:
        created = datetime.fromisoformat(created_raw).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        created = "1970-01-01T00:00:00Z"
    return revision, created


def oci_labels(catalog: Catalog, spec: ImageSpec, rendered: RenderedDockerfile) -> dict[str, str]:
    revision, created = source_identity(catalog.root)
    labels = {
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.source": catalog.source,
        "org.opencontainers.image.version": spec.version,
        "org.opencontainers.image.title": spec.name,
        "org.opencontainers.image.description": spec.description,
        "org.hardening.template": spec.template.as_posix(),
        "org.hardening.variables-sha256": rendered.variables_hash,
        "org.hardening.builder-version": __version__,
    }
    # An empty description is kept so that the base image's own does not show through.
    return {key: value for key, value in labels.items() if value or key.endswith("description")}


def render_checked(catalog: Catalog, spec: ImageSpec) -> RenderedDockerfile:
    """Render and refuse to continue when the committed Dockerfile has drifted."""
    rendered = render(spec, catalog.root)
    diff = check_drift(rendered, catalog.root)
    if diff is not None:
        raise RenderError(
            f"{rendered.path} differs from what {rendered.template} and the catalog give",
            details=diff[:4000],
            hint="run `harden render`, review and commit the result, then build again",
        )
    return rendered


def prepare_context(catalog: Catalog, spec: ImageSpec) -> None:
    if spec.wheelhouse is None:
        return
    from hardening.build.wheelhouse import prepare_wheelhouse

    python_version = str(spec.variables.get("python_version", "3.11"))
    prepare_wheelhouse(
        catalog.root / spec.wheelhouse,
        catalog.root / spec.context_dir / "wheels",
        python_version=python_version,
    )


def build_images(
    catalog: Catalog,
    specs: tuple[ImageSpec, ...],
    engine: Engine,
    run: RunDir,
    *,
    sink: Callable[[str], LineSink] | None = None,
) -> list[BuildResult]:
    """Build every image; all renderings are checked before anything is built."""
    rendered = {spec.name: render_checked(catalog, spec) for spec in specs}
    builder = DockerBuilder(engine)
    results: list[BuildResult] = []
    for base in {spec.base for spec in specs}:
        ensure_base(engine, base, on_line=sink(f"base {base.ref}") if sink else None)
    for spec in specs:
        prepare_context(catalog, spec)
        labels = oci_labels(catalog, spec, rendered[spec.name])
        try:
            result = builder.build(
                spec,
                rendered[spec.name],
                root=catalog.root,
                labels=labels,
                on_line=sink(spec.name) if sink else None,
            )
        except (BuildError, DockerfileError):
            # A failed build leaves no candidate behind; noprune keeps the layer cache.
            with contextlib.suppress(HardeningError):
                engine.remove_image(f"{spec.repository}:candidate", noprune=True)
            raise
        write_json(run.image_dir(spec.name) / "build.json", result.to_json())
        results.append(result)
    return results
