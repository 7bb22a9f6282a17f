"""The build stage of a run: bases, wheelhouses, candidates and their build records.

The caller hands in renderings it has already checked for drift (the run plan, or `harden
build`'s own check), so nothing is rendered twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from hardening.atomic import write_json
from hardening.base import ensure_base
from hardening.build.docker import DockerBuilder
from hardening.build.identity import oci_labels, source_identity
from hardening.build.interface import BuildResult
from hardening.catalog import ImageSpec
from hardening.errors import BuildError, DockerfileError, HardeningError
from hardening.render import RenderedDockerfile
from hardening.run.store import BUILD_FILE, RunDir

if TYPE_CHECKING:  # the docker SDK is slow to import and only needed to talk to the engine
    from hardening.build.wheelhouse import WheelhouseResult
    from hardening.engine.client import Engine

LineSink = Callable[[str], None]


def prepare_context(spec: ImageSpec, root: Path) -> WheelhouseResult | None:
    """Download the image's wheelhouse on the host (hash-checked), when the catalog names a lock."""
    if spec.wheelhouse is None:
        return None
    from hardening.build.wheelhouse import prepare_wheelhouse

    python_version = str(spec.variables.get("python_version", "3.11"))
    # One directory per Python version: images of one template share the build context, and
    # each version's wheelhouse holds exactly the wheels of its own lock.
    return prepare_wheelhouse(
        root / spec.wheelhouse,
        root / spec.context_dir / "wheels" / python_version,
        python_version=python_version,
    )


def build_images(
    specs: Sequence[ImageSpec],
    rendered: Mapping[str, RenderedDockerfile],
    engine: Engine,
    run: RunDir,
    *,
    root: Path,
    source: str,
    sink: Callable[[str], LineSink] | None = None,
    nocache: bool = False,
) -> list[BuildResult]:
    """Build every image from its checked rendering; write each build record.

    ``nocache``: every step of every image runs again (the bases are reused when current).
    """
    builder = DockerBuilder(engine)
    results: list[BuildResult] = []
    identity = source_identity(root)
    for base in {spec.base for spec in specs}:
        ensure_base(engine, base, on_line=sink(f"base {base.ref}") if sink else None, identity=identity)
    for spec in specs:
        wheelhouse = prepare_context(spec, root)
        labels = oci_labels(spec, rendered[spec.name], source=source, identity=identity)
        try:
            result = builder.build(
                spec,
                rendered[spec.name],
                root=root,
                labels=labels,
                on_line=sink(spec.name) if sink else None,
                nocache=nocache,
            )
        except (BuildError, DockerfileError):
            # A failed build leaves no candidate behind; noprune keeps the layer cache.
            with contextlib.suppress(HardeningError):
                engine.remove_image(spec.candidate_ref, noprune=True)
            raise
        if wheelhouse is not None:
            result = replace(result, inputs={**result.inputs, "wheels": wheel_inputs(wheelhouse)})
        write_json(run.image_dir(spec.name) / BUILD_FILE, result.to_json())
        results.append(result)
    return results


def wheel_inputs(wheelhouse: WheelhouseResult) -> list[dict[str, str]]:
    """Every wheel file the build context offered pip, with its sha256 (checked against the lock)."""
    from hardening.build.wheelhouse import sha256_file

    return [{"file": name, "sha256": sha256_file(wheelhouse.dest / name)} for name in wheelhouse.wheels]
