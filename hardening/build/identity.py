"""What an image says about where it came from: the OCI labels and the source identity behind them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hardening import __version__
from hardening.catalog import ImageSpec
from hardening.errors import BuildError
from hardening.process import run_program
from hardening.render import RenderedDockerfile


def _git(root: Path, *args: str) -> str | None:
    # Outside a git checkout (a source tarball) the labels say "unknown"; that is no error.
    try:
        result = run_program(["git", *args], what="git", error=BuildError, timeout=20, cwd=root)
    except BuildError:
        return None
    return result.output.strip() if result.returncode == 0 else None


def source_identity(root: Path) -> tuple[str, str]:
    """(revision, created) from the last commit, so an unchanged tree builds the same image id."""
    revision = _git(root, "rev-parse", "HEAD") or "unknown"
    created_raw = _git(root, "log", "-1", "--format=%cI")
    if created_raw:
        created = datetime.fromisoformat(created_raw).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        created = "1970-01-01T00:00:00Z"
    return revision, created


def oci_labels(
    spec: ImageSpec, rendered: RenderedDockerfile, *, source: str, identity: tuple[str, str]
) -> dict[str, str]:
    """The labels of a candidate; ``identity`` is ``source_identity`` of the repository."""
    revision, created = identity
    labels = {
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.source": source,
        "org.opencontainers.image.version": spec.version,
        "org.opencontainers.image.title": spec.name,
        "org.opencontainers.image.description": spec.description,
        "org.hardening.template": spec.template.as_posix(),
        "org.hardening.variables-sha256": rendered.variables_hash,
        "org.hardening.builder-version": __version__,
    }
    # An empty description is kept so that the base image's own does not show through.
    return {key: value for key, value in labels.items() if value or key.endswith("description")}
