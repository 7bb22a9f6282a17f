"""The GitHub Actions job matrix: one scan job per catalog image.

GitHub expands ``strategy.matrix`` from JSON produced by an earlier job (``fromJSON``). Each
``include`` entry becomes one job; its keys are read in the workflow as ``matrix.<key>``. The
entries hold strings only: a list or object would render as ``Array``/``Object`` when
interpolated into ``with:`` inputs or ``env:``, so the tags are joined with spaces instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from hardening.catalog import Catalog, ImageSpec
from hardening.errors import ConfigError, Location

# GitHub refuses a workflow run whose matrix expands to more jobs than this.
GITHUB_MAX_MATRIX_JOBS = 256

# The keys of every include entry; .github/workflows/scan.yml reads exactly these.
MATRIX_KEYS = ("image", "template", "repository", "tags", "category")


@dataclass(frozen=True)
class MatrixEntry:
    """One job of the scan matrix."""

    image: str
    template: str
    repository: str
    tags: str  # space-separated, see the module docstring
    category: str  # the code scanning category: keeps each image's alerts apart

    @classmethod
    def from_spec(cls, spec: ImageSpec) -> MatrixEntry:
        return cls(
            image=spec.name,
            template=spec.template.as_posix(),
            repository=spec.repository,
            tags=" ".join(spec.tags),
            category=sarif_category(spec.name),
        )

    def as_dict(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in MATRIX_KEYS}


def sarif_category(image: str) -> str:
    """The code scanning category of an image's SARIF upload.

    Code scanning replaces the previous analysis with the same category, so one category per
    image means a fix in one image closes its alerts without closing another image's.
    """
    return f"hardening/{image}"


def matrix_entries(catalog: Catalog, names: Sequence[str] = ()) -> tuple[MatrixEntry, ...]:
    """Entries for the named images (all when none), sorted by image name.

    Sorting by name keeps the output the same whatever the catalog or argument order, so a
    reordering of hardening.toml does not reshuffle job names in the Actions UI.
    """
    specs = catalog.select(tuple(dict.fromkeys(names)))
    if not specs:
        raise ConfigError("the catalog has no images to put in a matrix", location=Location(catalog.path))
    if len(specs) > GITHUB_MAX_MATRIX_JOBS:
        raise ConfigError(
            f"{len(specs)} images exceed GitHub's limit of {GITHUB_MAX_MATRIX_JOBS} jobs per matrix",
            location=Location(catalog.path),
            hint="name the images to scan, or split the catalog",
        )
    return tuple(sorted((MatrixEntry.from_spec(spec) for spec in specs), key=lambda e: e.image))


def github_matrix(entries: Sequence[MatrixEntry]) -> dict[str, list[dict[str, str]]]:
    return {"include": [entry.as_dict() for entry in entries]}


def matrix_json(entries: Sequence[MatrixEntry]) -> str:
    """Compact, single-line JSON: a ``$GITHUB_OUTPUT`` value must not span lines."""
    return json.dumps(github_matrix(entries), separators=(",", ":"), ensure_ascii=True)
