"""Promotion and release: tags move and images are pushed only after the gate passed."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hardening.catalog import Catalog, ImageSpec
from hardening.engine.client import Engine
from hardening.errors import (
    BuildError,
    HardeningError,
    Location,
    RegistryError,
    ReportInputError,
    UsageError,
)
from hardening.pipeline import RunDir, runs_root

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


def latest_decision(catalog: Catalog, image: str) -> tuple[RunDir, dict[str, object], str] | None:
    """The newest run with a gate decision for ``image``: (run, decision, image id)."""
    root = runs_root(catalog)
    if not root.is_dir():
        return None
    for run in sorted((p for p in root.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True):
        gate_file = run / image / "gate.json"
        build_file = run / image / "build.json"
        if not gate_file.is_file() or not build_file.is_file():
            continue
        try:
            decision = json.loads(gate_file.read_text(encoding="utf-8"))
            build = json.loads(build_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: bad JSON or not UTF-8
            raise ReportInputError(f"unreadable run record: {exc}", location=Location(gate_file)) from None
        image_id = build.get("image_id") if isinstance(build, dict) else None
        if not isinstance(decision, dict) or not isinstance(image_id, str):
            raise ReportInputError("not a gate decision and build record", location=Location(gate_file))
        return RunDir(run, run.name), decision, image_id
    return None


def release_refs(pushed: Sequence[Pushed]) -> list[dict[str, str]]:
    return [{"ref": p.ref, "digest": p.digest} for p in pushed]
