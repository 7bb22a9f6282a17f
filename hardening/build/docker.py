"""Builds through the Docker engine's classic builder (the docker SDK)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hardening.base import resolve_mirrors
from hardening.build.interface import Builder, BuildResult
from hardening.catalog import ImageSpec
from hardening.errors import BuildError
from hardening.render import RenderedDockerfile
from hardening.repro.archivestate import observe_archive
from hardening.repro.image import normalise_image
from hardening.repro.inputs import build_inputs, normalisation_summary, source_date_epoch

if TYPE_CHECKING:  # the docker SDK is slow to import; callers hand us a connected engine
    from hardening.engine.client import Engine


class DockerBuilder(Builder):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def build(
        self,
        spec: ImageSpec,
        rendered: RenderedDockerfile,
        *,
        root: Path,
        labels: Mapping[str, str],
        on_line: Callable[[str], None] | None = None,
        nocache: bool = False,
    ) -> BuildResult:
        base = self._engine.image(spec.base.ref)
        if base is None:
            raise BuildError(f"base image {spec.base.ref} is missing", hint="run `harden base` to build it")
        all_labels = {**labels, "org.opencontainers.image.base.name": spec.base.ref}
        all_labels["org.hardening.base.id"] = base.id
        candidate = spec.candidate_ref
        inputs = input_digests(spec, rendered, root)
        started_at = _utc_now()
        started = time.monotonic()
        output = self._engine.build(
            context=root / spec.context_dir,
            dockerfile=rendered.path.name,
            tag=None,
            labels=all_labels,
            on_line=on_line,
            nocache=nocache,
        )
        # The candidate is the engine's image made canonical, and only that: the engine's own
        # image is never tagged (it is the build cache of the next build), so a build that fails
        # on the way leaves no candidate behind.
        epoch = source_date_epoch(labels)
        repository, _, tag = candidate.rpartition(":")
        normalised = normalise_image(
            self._engine,
            output.image_id,
            repository=repository,
            tag=tag,
            epoch=epoch,
            keep=base.layers,
            observe=lambda: observe_archive(spec.base.suite, *resolve_mirrors(spec.base)),
        )
        if on_line:
            on_line(f"normalised {output.image_id[7:19]} → {normalised.image_id[7:19]}")
        duration = time.monotonic() - started
        finished_at = _utc_now()
        info = self._engine.image(normalised.image_id)
        if info is None:
            raise BuildError(f"the normalised image {normalised.image_id} is missing from the engine")
        return BuildResult(
            image=spec.name,
            image_id=info.id,
            candidate_ref=candidate,
            size=info.size,
            layers=info.layers,
            duration=duration,
            tags=spec.release_refs,
            template=spec.template.as_posix(),
            dockerfile=rendered.path.as_posix(),
            variables=dict(spec.variables),
            labels=dict(info.labels),
            base_ref=spec.base.ref,
            base_id=base.id,
            started_at=started_at,
            finished_at=finished_at,
            input_digests=inputs,
            raw_image_id=output.image_id,
            source_date_epoch=epoch,
            normalisation=normalisation_summary(normalised),
            inputs=build_inputs(normalised, base_id=base.id, base_labels=base.labels),
        )


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def input_digests(spec: ImageSpec, rendered: RenderedDockerfile, root: Path) -> dict[str, str]:
    """sha256 of the template, the rendered Dockerfile (the text that was built) and the lock."""
    digests = {rendered.path.as_posix(): hashlib.sha256(rendered.text.encode("utf-8")).hexdigest()}
    for path in (spec.template, spec.wheelhouse):
        if path is None:
            continue
        try:
            digests[path.as_posix()] = hashlib.sha256((root / path).read_bytes()).hexdigest()
        except OSError as exc:
            raise BuildError(f"cannot read {path} to record its digest: {exc.strerror or exc}") from exc
    return digests
