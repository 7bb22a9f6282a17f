"""What a build was made from, as the build record states it, and two records compared.

"The same inputs" has to be stated, because the Debian archive moves: the source revision and
its ``SOURCE_DATE_EPOCH``, the digests of template, rendered Dockerfile and lock, the variables,
the base image (by id, with the archive state it was bootstrapped from), the archive state the
build's own ``apt-get`` saw, every Debian package and version and every Python distribution in the
image, every wheel file installed, and the builder's version. Two builds whose image ids differ
must differ in one of these; if none did, the difference is a reproducibility bug.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hardening.errors import ReportInputError
from hardening.repro import NORMALISER_VERSION
from hardening.repro.image import Normalisation

_REVISION = "org.opencontainers.image.revision"


@dataclass(frozen=True)
class Change:
    """One input that differs between two build records."""

    input: str  # e.g. "debian package", "archive", "base image"
    name: str
    old: str
    new: str

    def __str__(self) -> str:
        if not self.old:
            return f"{self.input} {self.name}: added ({self.new})"
        if not self.new:
            return f"{self.input} {self.name}: removed (was {self.old})"
        return f"{self.input} {self.name}: {self.old} → {self.new}"


@dataclass(frozen=True)
class Comparison:
    old_image: str
    new_image: str
    changes: tuple[Change, ...]

    @property
    def same_image(self) -> bool:
        return self.old_image == self.new_image

    @property
    def unexplained(self) -> bool:
        """Different images from the same recorded inputs: a reproducibility bug."""
        return not self.same_image and not self.changes


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _keyed(items: Iterable[Mapping[str, Any]], key: tuple[str, ...], value: str) -> dict[str, str]:
    return {
        "/".join(str(item.get(k, "")) for k in key if item.get(k)): str(item.get(value, "")) for item in items
    }


def _diff(kind: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[Change]:
    return [
        Change(kind, name, old.get(name, ""), new.get(name, ""))
        for name in sorted(set(old) | set(new))
        if old.get(name, "") != new.get(name, "")
    ]


def _scalar(kind: str, name: str, old: object, new: object) -> list[Change]:
    old_text, new_text = ("" if old is None else str(old)), ("" if new is None else str(new))
    return [Change(kind, name, old_text or "none", new_text or "none")] if old_text != new_text else []


def require_record(doc: object, where: str) -> Mapping[str, Any]:
    """A build record with the fields a comparison needs; ``ReportInputError`` naming the file."""
    if not isinstance(doc, dict) or not isinstance(doc.get("image_id"), str):
        raise ReportInputError(f"{where} is not a build record (no image_id)")
    if not isinstance(doc.get("inputs"), dict):
        raise ReportInputError(
            f"{where} records no inputs",
            hint="it was written before builds recorded their inputs; build again to get one",
        )
    return doc


def compare_records(old: Mapping[str, Any], new: Mapping[str, Any]) -> Comparison:
    """Every recorded input that differs between two build records, source inputs first."""
    old_in, new_in = _mapping(old.get("inputs")), _mapping(new.get("inputs"))
    changes: list[Change] = []
    old_labels, new_labels = _mapping(old.get("labels")), _mapping(new.get("labels"))
    changes += _scalar("source", "revision", old_labels.get(_REVISION), new_labels.get(_REVISION))
    changes += _scalar(
        "source", "SOURCE_DATE_EPOCH", old_in.get("source_date_epoch"), new_in.get("source_date_epoch")
    )
    changes += _diff("file", _mapping(old.get("input_digests")), _mapping(new.get("input_digests")))
    changes += _diff(
        "variable",
        {k: str(v) for k, v in _mapping(old.get("variables")).items()},
        {k: str(v) for k, v in _mapping(new.get("variables")).items()},
    )
    changes += _scalar("builder", "harden", old_in.get("builder"), new_in.get("builder"))
    changes += _scalar("builder", "normaliser", old_in.get("normaliser"), new_in.get("normaliser"))
    old_base, new_base = _mapping(old.get("base")), _mapping(new.get("base"))
    changes += _scalar("base image", str(new_base.get("ref") or "id"), old_base.get("id"), new_base.get("id"))
    changes += _diff(
        "base archive",
        _keyed(_items(_mapping(old_in.get("base")).get("archive")), ("suite",), "date"),
        _keyed(_items(_mapping(new_in.get("base")).get("archive")), ("suite",), "date"),
    )
    changes += _diff(
        "archive",
        _keyed(_items(old_in.get("archive")), ("suite",), "date"),
        _keyed(_items(new_in.get("archive")), ("suite",), "date"),
    )
    changes += _diff(
        "debian package",
        _keyed(_items(old_in.get("debian_packages")), ("name", "architecture"), "version"),
        _keyed(_items(new_in.get("debian_packages")), ("name", "architecture"), "version"),
    )
    changes += _diff(
        "python package",
        _keyed(_items(old_in.get("python_packages")), ("environment", "name"), "version"),
        _keyed(_items(new_in.get("python_packages")), ("environment", "name"), "version"),
    )
    changes += _diff(
        "wheel",
        _keyed(_items(old_in.get("wheels")), ("file",), "sha256"),
        _keyed(_items(new_in.get("wheels")), ("file",), "sha256"),
    )
    return Comparison(str(old.get("image_id")), str(new.get("image_id")), tuple(changes))


BASE_ARCHIVE_LABEL = "org.hardening.base.archive"
_CREATED = "org.opencontainers.image.created"


def source_date_epoch(labels: Mapping[str, str]) -> int:
    """``SOURCE_DATE_EPOCH``: the last commit's time, as the ``created`` label already states it."""
    from hardening.repro.config import parse_time

    return parse_time(labels.get(_CREATED, "")) or 0


def normalisation_summary(normalised: Normalisation) -> dict[str, Any]:
    """What the rewrite did, for the build record (the contents go to ``inputs``)."""
    return {
        "version": NORMALISER_VERSION,
        "cached": normalised.cached,
        "diff_ids": list(normalised.diff_ids),
        "removed": dict(normalised.removed),
        "removed_paths": list(normalised.removed_paths),
        "mtimes_set": normalised.clamped,
        "seconds": {key: round(value, 3) for key, value in normalised.seconds.items()},
    }


def build_inputs(
    normalised: Normalisation, *, base_id: str, base_labels: Mapping[str, str]
) -> dict[str, Any]:
    """The inputs section of a build record (``wheels`` is filled in by whoever made the wheelhouse)."""
    from hardening import __version__
    from hardening.repro.archivestate import parse_label

    return {
        "source_date_epoch": normalised.epoch,
        "builder": __version__,
        "normaliser": NORMALISER_VERSION,
        "base": {
            "id": base_id,
            "archive": [s.to_json() for s in parse_label(base_labels.get(BASE_ARCHIVE_LABEL))],
        },
        "archive": [state.to_json() for state in normalised.archive],
        "debian_packages": [package.to_json() for package in normalised.packages],
        "python_packages": [package.to_json() for package in normalised.python],
        "wheels": [],
    }
