"""Promotion and release: tags move and images are pushed only after the gate passed."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hardening.catalog import ImageSpec
from hardening.engine.client import Engine
from hardening.errors import (
    BuildError,
    HardeningError,
    RegistryError,
    UsageError,
)

_REGISTRY = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$")


@dataclass(frozen=True)
class Promotion:
    image: str
    image_id: str
    refs: tuple[str, ...]


@dataclass(frozen=True)
class Pushed:
    ref: str
    digest: str


def promote(engine: Engine, spec: ImageSpec, image_id: str) -> Promotion:
    """Move the release tags to the candidate that passed the gate."""
    candidate = engine.image(image_id)
    if candidate is None:
        raise BuildError(f"candidate {image_id} of {spec.name} is gone; nothing was promoted")
    for tag in spec.tags:
        engine.tag(image_id, spec.repository, tag)
    return Promotion(spec.name, image_id, spec.release_refs)


def check_registry(registry: str) -> str:
    if not _REGISTRY.match(registry):
        raise UsageError(
            f"registry {registry!r} is not HOST[:PORT]",
            hint="for example --registry 127.0.0.1:5000",
        )
    return registry


def release(engine: Engine, spec: ImageSpec, image_id: str, registry: str) -> tuple[Pushed, ...]:
    """Push the promoted image under every release tag; all tags must point at ``image_id``."""
    check_registry(registry)
    for ref in spec.release_refs:
        info = engine.image(ref)
        if info is None or info.id != image_id:
            raise RegistryError(
                f"{ref} does not point at the image that passed the gate ({image_id[:19]})",
                hint="run `harden run` again; nothing was pushed for this image",
            )
    remote_repo = f"{registry}/{spec.repository}"
    pushed: list[Pushed] = []
    try:
        for tag in spec.tags:
            engine.tag(image_id, remote_repo, tag)
            digest = engine.push(remote_repo, tag)
            pushed.append(Pushed(f"{remote_repo}:{tag}", digest))
    except RegistryError as exc:
        if pushed:
            # A registry cannot take several tags atomically; say exactly what did land.
            done = ", ".join(f"{p.ref}@{p.digest}" for p in pushed)
            exc.details = f"already pushed before the failure: {done}"
        raise
    finally:
        # The registry-qualified tags are only a vehicle for the push; the engine keeps none.
        for tag in spec.tags:
            with contextlib.suppress(HardeningError):
                engine.remove_image(f"{remote_repo}:{tag}", noprune=True)
    return tuple(pushed)


def release_refs(pushed: Sequence[Pushed]) -> list[dict[str, str]]:
    return [{"ref": p.ref, "digest": p.digest} for p in pushed]
