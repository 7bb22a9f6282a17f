"""The build stage: one interface, implementations in sibling modules."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardening.catalog import ImageSpec, VarValue
from hardening.render import RenderedDockerfile


@dataclass(frozen=True)
class BuildResult:
    image: str
    image_id: str
    candidate_ref: str
    size: int
    layers: int
    duration: float
    tags: tuple[str, ...]  # the release refs a passing gate moves
    template: str
    dockerfile: str
    variables: Mapping[str, VarValue]
    labels: Mapping[str, str]
    base_ref: str
    base_id: str
    # What SLSA provenance needs and nothing else records: when the build ran and the digests
    # of the files it was made from (template, rendered Dockerfile, wheelhouse lock).
    started_at: str = ""
    finished_at: str = ""
    input_digests: Mapping[str, str] = field(default_factory=dict)  # repository path → sha256
    # Reproducibility: the engine's own image (before the layers were made canonical), the
    # epoch every time was clamped to, what the rewrite did, and every input of the build.
    raw_image_id: str = ""
    source_date_epoch: int | None = None
    normalisation: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "schema_version": 1,
            "image": self.image,
            "image_id": self.image_id,
            "candidate_ref": self.candidate_ref,
            "size": self.size,
            "layers": self.layers,
            "duration_seconds": round(self.duration, 3),
            "tags": list(self.tags),
            "template": self.template,
            "dockerfile": self.dockerfile,
            "variables": dict(self.variables),
            "labels": dict(self.labels),
            "base": {"ref": self.base_ref, "id": self.base_id},
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "input_digests": dict(sorted(self.input_digests.items())),
            "raw_image_id": self.raw_image_id,
            "source_date_epoch": self.source_date_epoch,
            "normalisation": dict(self.normalisation),
            "inputs": dict(self.inputs),
        }


class Builder(abc.ABC):
    @abc.abstractmethod
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
        """Build the candidate image for ``spec`` from its committed rendering.

        ``nocache``: every step runs again, as with an empty build cache.
        """
