"""Build a released image again from its provenance, and say whether it is the same image.

The provenance (signed, about the released digest; ``harden verify`` checked it) names the
revision, the image, its ``SOURCE_DATE_EPOCH``, the base image by id and every Debian package and
version the image holds. Before anything is built, every input is checked to still be there: the
revision in the repository, each package version on the mirror (the archive serves only the
current version of a package), the base image. Then the revision is checked out into a temporary
git worktree and the image built from it with an empty cache, on the recorded base, and made
canonical like every build; its image id is compared with the released one. When they differ,
the first differing layer is read from the registry and compared file by file.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardening.errors import BuildError, HardeningError, InputUnavailable
from hardening.inspect.tarstream import Member, TarEnd, TarFormatError, WindowSource, members
from hardening.process import run_program
from hardening.repro.archivestate import ReleaseState

if TYPE_CHECKING:  # the docker SDK is slow to import; callers hand us a connected engine
    from hardening.engine.client import Engine
    from hardening.evidence.oci import Registry

LineSink = Callable[[str], None]
# Private names for what a rebuild creates, removed when it ends (never a name others use).
REBUILD_REPOSITORY = "hardening-rebuild"


@dataclass(frozen=True)
class RecordedPackage:
    name: str
    architecture: str
    version: str


@dataclass(frozen=True)
class RebuildPlan:
    """What the provenance says the released image was built from."""

    image: str
    revision: str
    source: str
    image_id: str
    diff_ids: tuple[str, ...]
    base_ref: str
    base_id: str
    suite: str
    mirror: str
    epoch: int
    builder: str
    packages: tuple[RecordedPackage, ...]
    archive: tuple[ReleaseState, ...]


def _unavailable(what: str, hint: str) -> InputUnavailable:
    return InputUnavailable(what, hint=hint)


def plan_from_provenance(predicate: Mapping[str, Any]) -> RebuildPlan:
    """The rebuild's inputs; ``InputUnavailable`` when the provenance does not record them."""
    definition = predicate.get("buildDefinition") or {}
    external = definition.get("externalParameters") or {}
    internal = definition.get("internalParameters") or {}
    inputs = internal.get("inputs")
    if not isinstance(inputs, dict):
        raise _unavailable(
            "the provenance records no build inputs (packages, archive state, SOURCE_DATE_EPOCH)",
            "the image was released before builds recorded their inputs; it cannot be rebuilt",
        )
    labels = internal.get("labels") or {}
    byproducts = {
        str(item.get("name")): str((item.get("digest") or {}).get("sha256", ""))
        for item in (predicate.get("runDetails") or {}).get("byproducts") or ()
        if isinstance(item, dict)
    }
    layer_names = sorted((n for n in byproducts if n.startswith("layer-")), key=lambda n: int(n[6:]))
    base: Mapping[str, Any] = next(
        (d for d in definition.get("resolvedDependencies") or () if d.get("name") == "base-image"), {}
    )
    annotations = base.get("annotations") or {}
    source = external.get("source") or {}
    packages = tuple(
        RecordedPackage(str(p.get("name")), str(p.get("architecture")), str(p.get("version")))
        for p in inputs.get("debian_packages") or ()
        if isinstance(p, dict)
    )
    archive = tuple(s for s in map(ReleaseState.from_json, inputs.get("archive") or ()) if s is not None)
    return RebuildPlan(
        image=str(external.get("image") or ""),
        revision=str(source.get("revision") or ""),
        source=str(source.get("uri") or ""),
        image_id="sha256:" + byproducts.get("image-id", ""),
        diff_ids=tuple("sha256:" + byproducts[name] for name in layer_names),
        base_ref=str(base.get("uri") or ""),
        base_id="sha256:" + str((base.get("digest") or {}).get("sha256", "")),
        suite=str(annotations.get("debian_suite") or labels.get("org.hardening.base.suite") or ""),
        mirror=str(annotations.get("debian_mirror") or labels.get("org.hardening.base.mirror") or ""),
        epoch=int(inputs.get("source_date_epoch") or 0),
        builder=str(inputs.get("builder") or ""),
        packages=packages,
        archive=archive,
    )


def check_packages_served(plan: RebuildPlan, *, security_mirror: str | None = None) -> None:
    """``InputUnavailable`` naming every recorded package version the archive no longer serves."""
    from hardening.archive.cache import ArchiveCache, default_cache_dir
    from hardening.archive.fetch import Fetcher
    from hardening.archive.release import DEFAULT_KEYRING
    from hardening.archive.snapshot import ArchiveTarget, open_snapshot

    security = security_mirror or next(
        (s.mirror for s in plan.archive if s.suite.endswith("-security") and s.mirror), None
    )
    if security is None:
        from hardening.aptsources import read_sources
        from hardening.aptsources import security_mirror as machine_security

        security = machine_security(read_sources())
    if not plan.mirror or not security or not plan.suite:
        raise _unavailable(
            f"the provenance names no Debian suite or mirror ({plan.suite or '?'} at {plan.mirror or '?'})",
            "the packages cannot be looked up without them",
        )
    architectures = tuple(sorted({p.architecture for p in plan.packages if p.architecture != "all"})) or (
        "amd64",
    )
    target = ArchiveTarget(plan.suite, plan.mirror, security, "provenance", architectures=architectures)
    snapshot = open_snapshot(
        target,
        Fetcher(),
        ArchiveCache(default_cache_dir()),
        (DEFAULT_KEYRING,),
        packages={p.name for p in plan.packages},
    )
    missing = []
    for package in plan.packages:
        served = [candidate.version for candidate, _ in snapshot.versions(package.name, package.architecture)]
        if package.version not in served:
            now = ", ".join(dict.fromkeys(served)) or "no version at all"
            missing.append(
                f"{package.name} {package.version} ({package.architecture}): the mirror now serves {now}"
            )
    if missing:
        raise InputUnavailable(
            f"{len(missing)} Debian package version(s) the image was built from can no longer be had from "
            f"{plan.mirror} ({plan.suite}): {missing[0]}",
            details="\n".join(missing),
            hint="the archive moved on since the release; a rebuild would install other versions, so "
            "it cannot reproduce this image (a snapshot mirror of the recorded archive state could)",
        )


@contextlib.contextmanager
def checkout(repo: Path, revision: str) -> Iterator[Path]:
    """The revision checked out in a temporary git worktree, removed afterwards."""

    def git(*args: str, cwd: Path = repo) -> tuple[int, str]:
        result = run_program(["git", *args], what="git", error=BuildError, timeout=120, cwd=cwd)
        return result.returncode, result.output

    code, _ = git("cat-file", "-e", f"{revision}^{{commit}}")
    if code != 0:
        raise _unavailable(
            f"revision {revision} is not in the repository at {repo}",
            "fetch it (git fetch origin) or pass --repo with a clone that has it",
        )
    parent = Path(tempfile.mkdtemp(prefix="hardening-rebuild-"))
    tree = parent / "tree"
    code, output = git("worktree", "add", "--detach", str(tree), revision)
    if code != 0:
        raise BuildError(f"cannot check out {revision}: {output.strip()}")
    try:
        yield tree
    finally:
        git("worktree", "remove", "--force", str(tree))
        with contextlib.suppress(OSError):
            parent.rmdir()


@dataclass(frozen=True)
class Rebuilt:
    image_id: str
    diff_ids: tuple[str, ...]
    layers: Mapping[int, bytes]  # the rewritten layers of the rebuilt image, by index


def rebuild(engine: Engine, plan: RebuildPlan, *, repo: Path, on_line: LineSink | None = None) -> Rebuilt:
    """Build the image of ``plan`` again at its revision, on its base, with an empty cache."""
    from hardening.build.identity import oci_labels, source_identity
    from hardening.build.service import prepare_context
    from hardening.catalog import load_catalog
    from hardening.render import render
    from hardening.repro.image import normalise_image
    from hardening.repro.inputs import source_date_epoch

    base = engine.image(plan.base_id)
    if base is None:
        raise _unavailable(
            f"the base image {plan.base_ref} ({plan.base_id}) is not in this engine",
            "load or rebuild it first (`harden base` at the revision that built it, whose "
            "SOURCE_DATE_EPOCH it carries); a base built today from another archive state differs",
        )
    token = f"{os.getpid()}-{plan.image_id.removeprefix('sha256:')[:12]}"
    base_repository, raw_repository = f"{REBUILD_REPOSITORY}/base", f"{REBUILD_REPOSITORY}/{plan.image}"
    created: list[str] = []
    try:
        with checkout(repo, plan.revision) as tree:
            catalog = load_catalog(tree / "hardening.toml")
            (spec,) = catalog.select([plan.image])
            # The recorded base under a private name: the shared tag may have moved since.
            engine.tag(plan.base_id, base_repository, token)
            created.append(f"{base_repository}:{token}")
            pinned = replace(spec, base=replace(spec.base, repository=base_repository, tag=token))
            context = tree / spec.context_dir
            (context / "Dockerfile.rebuild").write_text(render(pinned, tree).text, encoding="utf-8")
            try:
                prepare_context(spec, tree)
            except BuildError as exc:
                raise InputUnavailable(
                    f"the wheels of {spec.wheelhouse} can no longer be had: {exc.message}",
                    details=exc.details,
                    hint="the package index no longer serves a locked file; the image cannot be rebuilt",
                ) from exc
            labels = {
                **oci_labels(spec, render(spec, tree), source=catalog.source, identity=source_identity(tree)),
                "org.opencontainers.image.base.name": spec.base.ref,
                "org.hardening.base.id": plan.base_id,
            }
            created.append(f"{raw_repository}:raw-{token}")
            output = engine.build(
                context=context,
                dockerfile="Dockerfile.rebuild",
                tag=f"{raw_repository}:raw-{token}",
                labels=labels,
                nocache=True,
                on_line=on_line,
            )
        with tempfile.TemporaryDirectory(prefix="hardening-rebuild-cache-") as cache:
            created.append(f"{raw_repository}:rebuilt-{token}")
            normalised = normalise_image(
                engine,
                output.image_id,
                repository=raw_repository,
                tag=f"rebuilt-{token}",
                epoch=source_date_epoch(labels),
                keep=base.layers,
                cache_dir=Path(cache),
            )
        layers = _saved_layers(engine, normalised.image_id, keep=base.layers)
        return Rebuilt(normalised.image_id, normalised.diff_ids, layers)
    finally:
        for ref in reversed(created):
            with contextlib.suppress(HardeningError):
                engine.remove_image(ref)


def _saved_layers(engine: Engine, image_id: str, *, keep: int) -> dict[int, bytes]:
    """The layers after the base's of ``image_id``, as the engine saves them."""
    from hardening.engine.saved import saved_image
    from hardening.inspect.tarfs.outer import OuterArchive, open_archive

    found: dict[int, bytes] = {}
    with (
        saved_image(engine, image_id, prefix="hardening-rebuild-") as tar_path,
        open_archive(tar_path) as handle,
    ):
        outer = OuterArchive(handle, tar_path.name)
        for index, blob in enumerate(outer.layout(None).layers):
            if index >= keep:
                window = outer.window(blob)
                found[index] = window.read_at(0, window.size or 0)
    return found


def compare(
    plan: RebuildPlan,
    image_id: str,
    diff_ids: tuple[str, ...],
    *,
    released: Callable[[int], bytes | None],
    rebuilt: Callable[[int], bytes],
) -> str:
    """ "" when the rebuilt image is the released one, else the first difference in words."""
    if image_id == plan.image_id:
        return ""
    for index, (old, new) in enumerate(zip(plan.diff_ids, diff_ids, strict=False)):
        if old == new:
            continue
        blob = released(index)
        if blob is None:
            return (
                f"layer {index} differs ({old} released, {new} rebuilt); the released layer could not be read"
            )
        where = first_differing_file(blob, rebuilt(index))
        return f"layer {index} differs ({old} released, {new} rebuilt): first differing file {where}"
    if len(plan.diff_ids) != len(diff_ids):
        return f"the released image has {len(plan.diff_ids)} layers, the rebuilt one {len(diff_ids)}"
    return "every layer is the same; the image config differs (labels, environment or history)"


def _listing(layer: bytes) -> dict[str, tuple[Any, ...]]:
    with io.BytesIO(layer) as handle:
        source = WindowSource(handle, 0, len(layer))
        found: dict[str, tuple[Any, ...]] = {}
        try:
            for member in members(source, TarEnd()):
                found[member.name.rstrip("/")] = _identity(source, member)
        except TarFormatError as exc:
            return {"<unreadable layer>": (str(exc),)}
        return found


def _identity(source: WindowSource, member: Member) -> tuple[Any, ...]:
    digest = (
        hashlib.sha256(source.read_at(member.offset_data, member.size)).hexdigest()
        if member.type in (b"0", b"\x00")
        else ""
    )
    return (
        member.type,
        member.mode,
        member.uid,
        member.gid,
        member.mtime,
        member.linkname,
        digest,
        member.xattrs,
    )


def first_differing_file(released: bytes, rebuilt: bytes) -> str:
    """The first path (in the canonical order) whose entry differs between two layer tars."""
    if released[:2] == b"\x1f\x8b":
        released = gzip.decompress(released)
    old, new = _listing(released), _listing(rebuilt)
    for path in sorted(set(old) | set(new), key=lambda p: tuple(p.split("/"))):
        if path not in old:
            return f"/{path} (only in the rebuilt image)"
        if path not in new:
            return f"/{path} (only in the released image)"
        if old[path] != new[path]:
            fields = ("type", "mode", "uid", "gid", "mtime", "link target", "content", "xattrs")
            changed = [name for name, a, b in zip(fields, old[path], new[path], strict=True) if a != b]
            return f"/{path} ({', '.join(changed)})"
    return "(no file differs: the tar headers or order do)"


@dataclass(frozen=True)
class Released:
    """The released image as the registry holds it: its plan with the registry's diff ids."""

    plan: RebuildPlan
    layer_digests: tuple[str, ...]
    registry: Registry
    repository: str

    def layer(self, index: int) -> bytes | None:
        if index >= len(self.layer_digests):
            return None
        return self.registry.blob(self.repository, self.layer_digests[index])


def released_image(registry: Registry, repository: str, digest: str, plan: RebuildPlan) -> Released:
    """The registry's manifest and config of ``digest``: the image id and diff ids as released."""
    from hardening.errors import NotVerified

    manifest = registry.manifest(repository, digest)
    doc = json.loads(manifest.data) if manifest is not None else {}
    config_digest = str((doc.get("config") or {}).get("digest") or "")
    config_bytes = registry.blob(repository, config_digest) if config_digest else None
    if config_bytes is None:
        raise NotVerified(f"{repository}@{digest}: the registry holds no image config for it")
    config = json.loads(config_bytes)
    if config_digest != plan.image_id:
        raise NotVerified(
            f"the provenance names image {plan.image_id}, but {repository}@{digest} is {config_digest}"
        )
    diff_ids = tuple(str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or ())
    layers = tuple(str(layer.get("digest")) for layer in doc.get("layers") or () if isinstance(layer, dict))
    return Released(replace(plan, diff_ids=diff_ids), layers, registry, repository)
