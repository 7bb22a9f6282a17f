"""Fixtures shared by every test: catalog builders and the real engine."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SARIF_SCHEMA = REPO_ROOT / "tests" / "data" / "schemas" / "sarif-schema-2.1.0.json"

MINIMAL_TEMPLATE = """\
FROM {{ base_image }}
LABEL org.example.flavour="{{ flavour }}"
RUN echo {{ greeting }} > /greeting
USER {{ uid }}:{{ uid }}
"""


def catalog_text(images: str, base: str | None = None) -> str:
    base = base or textwrap.dedent(
        """\
        [base.bookworm]
        repository = "hardening/debian"
        tag = "bookworm"
        suite = "bookworm"
        """
    )
    return base + "\n" + textwrap.dedent(images)


DEFAULT_IMAGE = """\
[[image]]
name = "demo"
template = "dockerfiles/demo/Dockerfile.j2"
repository = "hardening/demo"
tags = ["1"]

[image.variables]
flavour = "plain"
greeting = "hello"
uid = 10001
"""


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """A throwaway repository with a catalog and a template; returns the catalog path."""

    def make(images: str = DEFAULT_IMAGE, template: str = MINIMAL_TEMPLATE, base: str | None = None) -> Path:
        template_path = tmp_path / "dockerfiles" / "demo" / "Dockerfile.j2"
        template_path.parent.mkdir(parents=True, exist_ok=True)
        template_path.write_text(template)
        catalog = tmp_path / "hardening.toml"
        catalog.write_text(catalog_text(images, base))
        return catalog

    return make


@pytest.fixture(scope="session")
def engine() -> Iterator[object]:
    """The real Docker engine. CI starts one (`make test`); a missing engine fails, never skips."""
    from hardening.engine.client import Engine
    from hardening.errors import EngineError

    try:
        client = Engine.connect(timeout=300)
    except EngineError as exc:
        pytest.fail(f"tests marked docker need an engine: {exc}. Run `harden engine up` (or `make test`).")
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(engine: object) -> str:
    """The project's base image, built from the Debian archive if it is not there yet."""
    from hardening.base import ensure_base
    from hardening.catalog import load_catalog
    from hardening.engine.client import Engine

    assert isinstance(engine, Engine)
    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    spec = next(iter(catalog.bases.values()))
    return ensure_base(engine, spec).ref


# Not a secret: it protects throwaway keys that live as long as one test session.
RELEASE_KEY_PASSPHRASE = "test-only-passphrase-of-throwaway-keys"


@dataclass(frozen=True)
class ReleaseKey:
    """A key pair made by `harden keys generate`'s code, and what `harden release` needs to use it."""

    private: Path
    public: Path
    passphrase: str

    @property
    def env(self) -> dict[str, str]:
        return {"HARDENING_KEY_PASSPHRASE": self.passphrase}

    @property
    def args(self) -> list[str]:
        return ["--key", str(self.private)]


@pytest.fixture(scope="session")
def release_key(tmp_path_factory: pytest.TempPathFactory) -> ReleaseKey:
    from hardening.evidence.keys import generate

    pair = generate(tmp_path_factory.mktemp("release-key") / "keys", RELEASE_KEY_PASSPHRASE.encode())
    return ReleaseKey(pair.private, pair.public, RELEASE_KEY_PASSPHRASE)
