"""Builds through the Docker engine's classic builder (the docker SDK)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from hardening.build.interface import Builder, BuildResult
from hardening.catalog import ImageSpec
from hardening.errors import BuildError
from hardening.render import RenderedDockerfile

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
    ) -> BuildResult:
        base = self._engine.image(spec.base.ref)
        if base is None:
            raise BuildError(f"base image {spec.base.ref} is missing", hint="run `harden base` to build it")
        all_labels = {**labels, "org.opencontainers.image.base.name": spec.base.ref}
        all_labels["org.hardening.base.id"] = base.id
        candidate = spec.candidate_ref
        started = time.monotonic()
        output = self._engine.build(
            context=root / spec.context_dir,
            dockerfile=rendered.path.name,
            tag=candidate,
            labels=all_labels,
            on_line=on_line,
        )
        duration = time.monotonic() - started
        info = self._engine.image(output.image_id)
        if info is None:
            raise BuildError(f"the engine reported image {output.image_id} but does not have it")
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
        )
