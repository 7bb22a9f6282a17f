"""The catalog's images, built once per session by the build driver, for behavioural tests.

`build_images` after the render check does what `harden build` does — base, wheelhouse, OCI labels,
candidate tag — and the engine's layer cache makes it cost about a second when nothing changed.
Its build records go to a temporary run directory, never to the repository's scans/.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from hardening.build.service import build_images
from hardening.catalog import load_catalog
from hardening.engine.client import Engine
from hardening.errors import HardeningError
from hardening.render import render_checked
from hardening.run.store import RunDir
from tests.conftest import REPO_ROOT


@dataclass(frozen=True)
class CatalogImage:
    name: str
    candidate_ref: str  # e.g. hardening/python-secure:candidate, the tag the driver set
    image_id: str  # sha256:…; tests run this, since a concurrent build may move the tag

    @property
    def ref(self) -> str:
        return self.image_id


@pytest.fixture(scope="session")
def catalog_images(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, CatalogImage]:
    """Every image of hardening.toml, built by the driver; image name → candidate ref and id."""
    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    run = RunDir(tmp_path_factory.mktemp("catalog-images"), "test")
    try:
        rendered = {spec.name: render_checked(spec, catalog.root) for spec in catalog.images}
        builds = build_images(catalog.images, rendered, engine, run, root=catalog.root, source=catalog.source)
    except HardeningError as exc:
        pytest.fail(f"building the catalog's images failed:\n{exc.diagnostics()}")
    return {build.image: CatalogImage(build.image, build.candidate_ref, build.image_id) for build in builds}
