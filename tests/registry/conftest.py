"""The `registry` fixture: a real docker-registry on a loopback port, stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry.server import RegistryServer, start_registry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A fresh, empty registry for one test: ``.address`` is HOST:PORT, ``.client`` reads it."""
    workdir = tmp_path / "registry"
    workdir.mkdir()
    server = start_registry(workdir)
    try:
        yield server
    finally:
        server.stop()
