"""Normalise an image the engine built: save it, rewrite it (``archive``), load the result.

The loaded image, under the candidate tag, is what every later stage sees. The engine's own
image stays as an untagged image: it is the build cache the next build starts from, and an
unchanged tree builds it again in no time. So the rewrite is remembered by the engine's image id
(and the epoch and rewrite version): when the same engine image comes back and the engine still
has its normalised image, that image is tagged again without saving or reading anything.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardening.atomic import write_text_atomic
from hardening.engine.saved import private_dir, save_image
from hardening.errors import BuildError, HardeningError
from hardening.repro import NORMALISER_VERSION
from hardening.repro.archivestate import ReleaseState
from hardening.repro.contents import DebianPackage, PythonPackage
from hardening.repro.rewrite import rewrite_archive

if TYPE_CHECKING:  # the docker SDK is slow to import; callers hand us a connected engine
    from hardening.engine.client import Engine

ENV_VAR = "HARDENING_REPRO_CACHE"


@dataclass(frozen=True)
class Normalisation:
    """An image made canonical: the engine's image, the result, and what it took."""

    image_id: str
    raw_image_id: str
    epoch: int
    diff_ids: tuple[str, ...]
    packages: tuple[DebianPackage, ...]
    python: tuple[PythonPackage, ...]
    removed: Mapping[str, int] = field(default_factory=dict)
    removed_paths: tuple[str, ...] = ()
    clamped: int = 0
    seconds: Mapping[str, float] = field(default_factory=dict)
    archive: tuple[ReleaseState, ...] = ()  # the archive state when the engine's image was made
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "version": NORMALISER_VERSION,
            "image_id": self.image_id,
            "raw_image_id": self.raw_image_id,
            "source_date_epoch": self.epoch,
            "diff_ids": list(self.diff_ids),
            "removed": dict(self.removed),
            "removed_paths": list(self.removed_paths),
            "mtimes_set": self.clamped,
            "seconds": {key: round(value, 3) for key, value in self.seconds.items()},
            "packages": [package.to_json() for package in self.packages],
            "python": [package.to_json() for package in self.python],
            "archive": [state.to_json() for state in self.archive],
        }


def default_cache_dir() -> Path:
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hardening" / "repro"


def _entry_path(cache_dir: Path, raw_id: str, epoch: int) -> Path:
    return cache_dir / f"{raw_id.removeprefix('sha256:')}-{epoch}.json"


def _from_json(doc: Mapping[str, Any]) -> Normalisation:
    return Normalisation(
        image_id=str(doc["image_id"]),
        raw_image_id=str(doc["raw_image_id"]),
        epoch=int(doc["source_date_epoch"]),
        diff_ids=tuple(str(d) for d in doc["diff_ids"]),
        packages=tuple(
            DebianPackage(p["name"], p["version"], p["architecture"], p["source"], p["source_version"])
            for p in doc["packages"]
        ),
        python=tuple(PythonPackage(p["name"], p["version"], p["environment"]) for p in doc["python"]),
        removed={str(k): int(v) for k, v in doc["removed"].items()},
        removed_paths=tuple(str(p) for p in doc["removed_paths"]),
        clamped=int(doc["mtimes_set"]),
        seconds={str(k): float(v) for k, v in doc["seconds"].items()},
        archive=tuple(s for s in map(ReleaseState.from_json, doc["archive"]) if s is not None),
        cached=True,
    )


def _remembered(cache_dir: Path, raw_id: str, epoch: int) -> Normalisation | None:
    """A previous rewrite of ``raw_id`` at ``epoch``; anything unreadable or foreign is ignored."""
    try:
        doc = json.loads(_entry_path(cache_dir, raw_id, epoch).read_text(encoding="utf-8"))
        if doc.get("version") != NORMALISER_VERSION:
            return None
        found = _from_json(doc)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if found.raw_image_id != raw_id or found.epoch != epoch:
        return None
    return found


def remember(cache_dir: Path, result: Normalisation) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result.to_json(), sort_keys=True)
        write_text_atomic(_entry_path(cache_dir, result.raw_image_id, result.epoch), text)
    except (OSError, HardeningError):
        pass  # only a cache: the next build rewrites the image again


def normalise_image(
    engine: Engine,
    raw_id: str,
    *,
    repository: str,
    tag: str,
    epoch: int,
    keep: int,
    observe: Callable[[], tuple[ReleaseState, ...]] | None = None,
    cache_dir: Path | None = None,
) -> Normalisation:
    """Make the engine's image ``raw_id`` canonical and tag the result ``repository:tag``.

    ``keep``: how many of its first layers are the base's (already canonical, left as they are).
    ``observe`` reads the archive state; it is called only for an engine image not seen before
    (one the engine took from its cache was made when it was first built, and is remembered so).
    """
    cache = cache_dir or default_cache_dir()
    remembered = _remembered(cache, raw_id, epoch)
    if remembered is not None and engine.image(remembered.image_id) is not None:
        engine.tag(remembered.image_id, repository, tag)
        return remembered
    seconds: dict[str, float] = {}
    started = time.monotonic()
    archive = observe() if observe else ()
    if observe:
        seconds["archive"] = time.monotonic() - started
    with private_dir("hardening-repro-") as directory:
        saved, rewritten_path = directory / "saved.tar", directory / "normalised.tar"
        started = time.monotonic()
        save_image(engine, raw_id, saved)
        seconds["save"] = time.monotonic() - started
        try:
            with rewritten_path.open("w+b") as out:
                rewritten = rewrite_archive(saved, out, epoch=epoch, keep=keep, tag=f"{repository}:{tag}")
        except OSError as exc:
            raise BuildError(
                f"cannot write the normalised image of {repository}:{tag}: {exc.strerror or exc}",
                hint="check free space in the temporary directory (TMPDIR)",
            ) from exc
        seconds.update(rewritten.seconds)
        saved.unlink()
        started = time.monotonic()
        engine.load(rewritten_path)
        seconds["load"] = time.monotonic() - started
    if engine.image(rewritten.image_id) is None:
        raise BuildError(
            f"the engine loaded the normalised image of {repository}:{tag} but does not have "
            f"{rewritten.image_id}",
            hint="check the engine's log (`journalctl` or dockerd's output) and build again",
        )
    # The archive named the tag too; tagged again by id, in case a build of the same name
    # elsewhere loaded its own image under it in between.
    engine.tag(rewritten.image_id, repository, tag)
    result = Normalisation(
        image_id=rewritten.image_id,
        raw_image_id=raw_id,
        epoch=epoch,
        diff_ids=rewritten.diff_ids,
        packages=rewritten.contents.packages,
        python=rewritten.contents.python,
        removed=rewritten.removed,
        removed_paths=rewritten.removed_paths,
        clamped=rewritten.clamped,
        seconds=seconds,
        archive=archive,
    )
    remember(cache, result)
    return result
