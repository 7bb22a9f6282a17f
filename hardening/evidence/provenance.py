"""SLSA provenance v1 for one built image, from the build record of the run.

Builder: harden, at the version that built the image. Inputs: the git revision, the digests of the
template, the rendered Dockerfile and the wheelhouse lock, the catalog variables, and the base
image by id with the Debian mirror and suite it was bootstrapped from. Build start and end.

What a rebuild needs besides (``harden verify --rebuild``): every Debian package and version and
every wheel in the image, and the archive state (each suite's signed Release: date and sha256)
the base and the build used, as resolved dependencies; ``SOURCE_DATE_EPOCH`` and the build
record's whole inputs section as internal parameters; the image id and its layers' diff ids as
byproducts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from hardening.evidence.statements import PROJECT_URI

BUILD_TYPE = f"{PROJECT_URI}/buildtypes/docker-classic/v1"
BUILDER_ID = f"{PROJECT_URI}/builder"

_REVISION = "org.opencontainers.image.revision"
_SOURCE = "org.opencontainers.image.source"
_BUILDER_VERSION = "org.hardening.builder-version"
_BASE_SUITE = "org.hardening.base.suite"
_BASE_MIRROR = "org.hardening.base.mirror"


def _file_uri(source: str, revision: str, path: str) -> str:
    return f"git+{source}@{revision}#{path}" if source else path


def provenance(build: Mapping[str, Any], *, run_id: str, fallback_version: str) -> dict[str, Any]:
    labels: Mapping[str, str] = build.get("labels") or {}
    revision = labels.get(_REVISION, "unknown")
    source = labels.get(_SOURCE, "")
    template, dockerfile = str(build.get("template") or ""), str(build.get("dockerfile") or "")
    digests: Mapping[str, str] = build.get("input_digests") or {}
    base: Mapping[str, str] = build.get("base") or {}

    source_dependency: dict[str, Any] = {"name": "source"}
    if source:
        source_dependency["uri"] = f"git+{source}"
    if revision != "unknown":
        source_dependency["digest"] = {"gitCommit": revision}
    else:
        source_dependency["annotations"] = {"revision": "unknown: built outside a git checkout"}
    dependencies: list[dict[str, Any]] = [source_dependency]
    for path, sha256 in sorted(digests.items()):
        name = "template" if path == template else "dockerfile" if path == dockerfile else "wheelhouse-lock"
        dependencies.append(
            {"name": name, "uri": _file_uri(source, revision, path), "digest": {"sha256": sha256}}
        )
    base_id = str(base.get("id") or "")
    base_dependency: dict[str, Any] = {"name": "base-image", "uri": str(base.get("ref") or "")}
    if base_id.startswith("sha256:"):
        base_dependency["digest"] = {"sha256": base_id.removeprefix("sha256:")}
    base_dependency["annotations"] = {
        "debian_suite": labels.get(_BASE_SUITE, "unknown"),
        "debian_mirror": labels.get(_BASE_MIRROR, "unknown"),
    }
    dependencies.append(base_dependency)
    inputs: Mapping[str, Any] = build.get("inputs") or {}
    dependencies.extend(_recorded_dependencies(inputs, str(labels.get(_BASE_MIRROR, ""))))
    internal: dict[str, Any] = {"candidate": build.get("candidate_ref"), "labels": dict(labels)}
    if inputs:
        internal["sourceDateEpoch"] = build.get("source_date_epoch")
        internal["rawImageId"] = build.get("raw_image_id")
        internal["inputs"] = dict(inputs)
    byproducts: list[dict[str, Any]] = [
        {"name": "image-id", "digest": {"sha256": str(build.get("image_id", "")).removeprefix("sha256:")}}
    ]
    diff_ids = (build.get("normalisation") or {}).get("diff_ids") or []
    byproducts.extend(
        {"name": f"layer-{index}", "digest": {"sha256": str(diff_id).removeprefix("sha256:")}}
        for index, diff_id in enumerate(diff_ids)
    )

    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "image": build.get("image"),
                "template": template,
                "dockerfile": dockerfile,
                "variables": build.get("variables") or {},
                "source": {"uri": source, "revision": revision},
            },
            "internalParameters": internal,
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {
                "id": BUILDER_ID,
                "version": {"harden": labels.get(_BUILDER_VERSION, fallback_version)},
            },
            "metadata": {
                "invocationId": run_id,
                "startedOn": build.get("started_at"),
                "finishedOn": build.get("finished_at"),
            },
            "byproducts": byproducts,
        },
    }


def _archive_dependency(state: Mapping[str, Any], default_mirror: str, prefix: str) -> dict[str, Any]:
    mirror = str(state.get("mirror") or default_mirror).rstrip("/")
    return {
        "name": f"{prefix}:{state.get('suite')}",
        "uri": f"{mirror}/dists/{state.get('suite')}/InRelease",
        "digest": {"sha256": str(state.get("sha256"))},
        "annotations": {"date": str(state.get("date"))},
    }


def _recorded_dependencies(inputs: Mapping[str, Any], base_mirror: str) -> list[dict[str, Any]]:
    """The archive states, Debian packages and wheels a build record lists, as SLSA resources."""
    found: list[dict[str, Any]] = []
    base = inputs.get("base") or {}
    for state in base.get("archive") or ():
        found.append(_archive_dependency(state, base_mirror, "base-archive"))
    for state in inputs.get("archive") or ():
        found.append(_archive_dependency(state, base_mirror, "archive"))
    for package in inputs.get("debian_packages") or ():
        name, version, arch = package.get("name"), package.get("version"), package.get("architecture")
        found.append(
            {
                "name": f"deb:{name}",
                "uri": f"pkg:deb/debian/{name}@{quote(str(version), safe='')}?arch={arch}",
                "annotations": {"version": version, "source": package.get("source")},
            }
        )
    for wheel in inputs.get("wheels") or ():
        found.append(
            {
                "name": f"wheel:{wheel.get('file')}",
                "uri": str(wheel.get("file")),
                "digest": {"sha256": wheel.get("sha256")},
            }
        )
    return found
