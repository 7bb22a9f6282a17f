"""A hash-pinned wheelhouse, downloaded on the host for ``pip install --no-index`` in an image.

Containers here cannot verify TLS to PyPI (the host alone trusts the intercepting CA), and baking
a CA bundle into a layer is not an option, so images install from a directory of wheels prepared
on the host.  The lock file is the single source of truth: every requirement must be pinned with
``==`` and carry ``--hash`` values, pip downloads in hash-checking mode, and we verify the hashes
again ourselves before reusing anything already on disk.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from hardening.errors import BuildError, ConfigError, Location
from hardening.process import run_program
from hardening.userfile import read_user_text

# pip accepts these algorithms in --hash; weaker ones would defeat the point of the lock.
SUPPORTED_HASHES = frozenset({"sha256", "sha384", "sha512"})

# Options a lock may carry on their own line: they steer where pip looks, not what it installs,
# and the hashes keep any index honest.  Anything else (-r, -c, -e, --no-binary …) would make the
# lock depend on something we do not verify.
_ALLOWED_GLOBAL_OPTIONS = frozenset(
    {
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "--no-index",
        "--prefer-binary",
        "--require-hashes",
        "--only-binary",
    }
)

_COMMENT = re.compile(r"(^|\s+)#.*$")
_OPTIONS_START = re.compile(r"\s(?=--?[A-Za-z])")
_OUTPUT_TAIL_LINES = 40
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LockedRequirement:
    """One ``name==version --hash=…`` entry of a lock file."""

    name: NormalizedName
    version: Version
    hashes: frozenset[str]  # "algorithm:hexdigest"
    marker: str | None
    line: int


@dataclass(frozen=True)
class WheelhouseResult:
    """What ``prepare_wheelhouse`` left in ``dest``."""

    dest: Path
    wheels: tuple[str, ...]
    downloaded: int
    reused: int


def parse_lock(lock_file: Path) -> tuple[LockedRequirement, ...]:
    """Read a pip-compile style lock; every requirement must be ``==``-pinned and hashed."""
    text = read_user_text(
        lock_file,
        error=ConfigError,
        what="the lock file",
        missing="cannot read the lock file: it does not exist",
        hint="generate it with pip-compile --generate-hashes (see the image README)",
    )

    requirements: list[LockedRequirement] = []
    seen: dict[NormalizedName, int] = {}
    for line_no, logical in _logical_lines(text):
        where = Location(lock_file, line_no)
        if logical.startswith("-"):
            _check_global_option(logical, where)
            continue
        requirement = _parse_requirement(logical, where)
        if requirement.name in seen:
            raise ConfigError(
                f"{requirement.name} is listed twice (first on line {seen[requirement.name]})",
                location=where,
                hint="a lock names each project once; regenerate it",
            )
        seen[requirement.name] = line_no
        requirements.append(requirement)
    return tuple(requirements)


def prepare_wheelhouse(
    lock_file: Path,
    dest: Path,
    *,
    python_version: str = "3.11",
    platform: str = "manylinux2014_x86_64",
    timeout: float = 600,
) -> WheelhouseResult:
    """Make ``dest`` hold exactly one verified wheel per requirement of ``lock_file``.

    Wheels already in ``dest`` are reused when their hash is in the lock and their tags fit the
    target; pip is run only when something is missing.  Other versions of locked projects (stale
    or tampered files) are removed so the build context cannot offer pip a wrong candidate; files
    of projects the lock does not name are left alone.
    """
    target_version = _parse_python_version(python_version)
    platforms = platform_variants(platform)
    environment = _marker_environment(python_version, platform)
    requirements = tuple(
        req
        for req in parse_lock(lock_file)
        if req.marker is None or Marker(req.marker).evaluate(dict(environment))
    )
    accepted_tags = _accepted_tags(target_version, platforms)

    dest.mkdir(parents=True, exist_ok=True)
    found = _verified_wheels(requirements, dest, accepted_tags)
    reused = len(found)
    missing = [req for req in requirements if req.name not in found]
    if missing:
        _remove_stale(requirements, dest, found)
        _run_pip_download(lock_file, dest, python_version, platforms, timeout)
        found = _verified_wheels(requirements, dest, accepted_tags)
        still_missing = [req for req in requirements if req.name not in found]
        if still_missing:
            names = ", ".join(f"{req.name}=={req.version}" for req in still_missing)
            raise BuildError(
                f"pip finished but no verified wheel is in {dest} for: {names}",
                location=Location(lock_file, still_missing[0].line),
                hint=(
                    f"check that a wheel for Python {python_version} on {platform} exists "
                    "and that its hash is in the lock"
                ),
            )
    _remove_stale(requirements, dest, found)
    return WheelhouseResult(
        dest=dest,
        wheels=tuple(sorted(found[req.name].name for req in requirements)),
        downloaded=len(requirements) - reused,
        reused=reused,
    )


def platform_variants(platform: str) -> tuple[str, ...]:
    """The ``--platform`` values to give pip for a target platform tag.

    pip widens manylinux2014 to manylinux2010/1 but does not map it to its PEP 600 spelling, and
    some projects publish only ``manylinux_2_28`` wheels; Debian bookworm's glibc 2.36 runs both.
    """
    match = re.fullmatch(r"manylinux(?:2014|_2_(\d+))_(\w+)", platform)
    if match is None:
        return (platform,)
    glibc_minor = int(match.group(1) or 17)
    arch = match.group(2)
    variants = [platform]
    for minor in (17, 28):
        tag = f"manylinux_2_{minor}_{arch}"
        if minor >= glibc_minor and tag not in variants:
            variants.append(tag)
    return tuple(variants)


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    return _file_digests(path, frozenset({"sha256"}))["sha256"]


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Join backslash continuations and drop comments, keeping the first line's number."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        elif raw.lstrip().startswith("#"):
            # pip drops comment lines that sit inside a continuation
            continue
        stripped = raw.rstrip()
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1])
            continue
        buffer.append(stripped)
        logical = _COMMENT.sub("", " ".join(buffer)).strip()
        buffer = []
        if logical:
            yield start, logical
    if buffer:
        logical = _COMMENT.sub("", " ".join(buffer)).strip()
        if logical:
            yield start, logical


def _check_global_option(logical: str, where: Location) -> None:
    option = re.split(r"[\s=]", logical, maxsplit=1)[0]
    if option not in _ALLOWED_GLOBAL_OPTIONS:
        raise ConfigError(
            f"option {option} is not allowed in a lock file",
            location=where,
            hint="a lock must be self-contained: one pinned, hashed requirement per entry",
        )


def _parse_requirement(logical: str, where: Location) -> LockedRequirement:
    spec, options_text = _split_options(logical)
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as exc:
        raise ConfigError(
            f"not a valid requirement: {spec!r} ({exc})",
            location=where,
            hint="a lock entry looks like: name==1.2.3 --hash=sha256:<64 hex digits>",
        ) from exc
    if requirement.url:
        raise ConfigError(
            f"{requirement.name} is a direct URL reference; it cannot be pinned by version",
            location=where,
            hint="publish the wheel to an index or a find-links directory and pin it with ==",
        )
    pins = list(requirement.specifier)
    if len(pins) != 1 or pins[0].operator not in ("==", "===") or "*" in pins[0].version:
        raise ConfigError(
            f"{requirement.name} is not pinned to one version ({requirement.specifier or 'no'}"
            " version specifier)",
            location=where,
            hint="every lock entry needs name==version; regenerate the lock with pip-compile",
        )
    try:
        version = Version(pins[0].version)
    except InvalidVersion as exc:
        raise ConfigError(
            f"{requirement.name} pins an invalid version {pins[0].version!r}",
            location=where,
        ) from exc
    hashes = _parse_hashes(options_text, requirement.name, where)
    if not hashes:
        raise ConfigError(
            f"{requirement.name}=={version} has no --hash",
            location=where,
            hint="regenerate the lock with pip-compile --generate-hashes",
        )
    return LockedRequirement(
        name=canonicalize_name(requirement.name),
        version=version,
        hashes=frozenset(hashes),
        marker=str(requirement.marker) if requirement.marker else None,
        line=where.line or 0,
    )


def _split_options(logical: str) -> tuple[str, str]:
    """Split ``name==1.0 ; marker --hash=…`` into the requirement and its options."""
    parts = _OPTIONS_START.split(logical, maxsplit=1)
    return parts[0].strip(), (parts[1] if len(parts) == 2 else "")


def _parse_hashes(options_text: str, name: str, where: Location) -> list[str]:
    try:
        words = shlex.split(options_text)
    except ValueError as exc:
        raise ConfigError(f"cannot split the options of {name}: {exc}", location=where) from exc
    hashes: list[str] = []
    position = 0
    while position < len(words):
        word = words[position]
        if word == "--hash" and position + 1 < len(words):
            value = words[position + 1]
            position += 2
        elif word.startswith("--hash="):
            value = word.removeprefix("--hash=")
            position += 1
        else:
            raise ConfigError(
                f"unexpected option {word!r} after {name}",
                location=where,
                hint="only --hash=<algorithm>:<hex digest> may follow a lock entry",
            )
        algorithm, _, digest = value.partition(":")
        if algorithm not in SUPPORTED_HASHES or not re.fullmatch(
            rf"[0-9a-f]{{{hashlib.new(algorithm).digest_size * 2}}}", digest
        ):
            raise ConfigError(
                f"{name} has an unusable hash {value!r}",
                location=where,
                hint=f"use one of {', '.join(sorted(SUPPORTED_HASHES))} as a full lowercase hex digest",
            )
        hashes.append(f"{algorithm}:{digest}")
    return hashes


def _parse_python_version(python_version: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d)\.(\d{1,2})", python_version)
    if match is None:
        raise ConfigError(
            f"python_version must be major.minor such as 3.11, not {python_version!r}",
            hint="set python_version in the catalog entry of the image",
        )
    return int(match.group(1)), int(match.group(2))


def _marker_environment(python_version: str, platform: str) -> Mapping[str, str]:
    """Marker values for the image, not for the host running this code."""
    match = re.fullmatch(r"(?:manylinux(?:1|2010|2014|_\d+_\d+)|musllinux_\d+_\d+|linux)_(\w+)", platform)
    return {
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": match.group(1) if match else platform,
    }


def _accepted_tags(python_version: tuple[int, int], platforms: Iterable[str]) -> frozenset[Tag]:
    expanded: list[str] = []
    for platform in platforms:
        expanded.append(platform)
        # mirror pip: a manylinux2014 system runs manylinux2010 and manylinux1 wheels
        if platform.startswith("manylinux2014_"):
            arch = platform.removeprefix("manylinux2014_")
            expanded.extend([f"manylinux2010_{arch}", f"manylinux1_{arch}"])
    interpreter = f"cp{python_version[0]}{python_version[1]}"
    return frozenset(cpython_tags(python_version, platforms=expanded)) | frozenset(
        compatible_tags(python_version, interpreter, expanded)
    )


def _verified_wheels(
    requirements: Iterable[LockedRequirement], dest: Path, accepted: frozenset[Tag]
) -> dict[NormalizedName, Path]:
    """Map each requirement to a wheel in ``dest`` whose hash and tags match, if there is one."""
    wanted = {req.name: req for req in requirements}
    found: dict[NormalizedName, Path] = {}
    for path in sorted(dest.glob("*.whl")):
        parsed = _wheel_identity(path)
        if parsed is None:
            continue
        name, version, tags = parsed
        req = wanted.get(name)
        if req is None or name in found or version != req.version:
            continue
        if tags.isdisjoint(accepted):
            continue
        algorithms = frozenset(entry.partition(":")[0] for entry in req.hashes)
        digests = _file_digests(path, algorithms)
        if any(f"{algorithm}:{digest}" in req.hashes for algorithm, digest in digests.items()):
            found[name] = path
    return found


def _remove_stale(
    requirements: Iterable[LockedRequirement],
    dest: Path,
    keep: Mapping[NormalizedName, Path],
) -> None:
    locked = {req.name for req in requirements}
    kept = set(keep.values())
    for path in dest.glob("*.whl"):
        parsed = _wheel_identity(path)
        if parsed is not None and parsed[0] in locked and path not in kept:
            path.unlink()


def _wheel_identity(
    path: Path,
) -> tuple[NormalizedName, Version, frozenset[Tag]] | None:
    try:
        name, version, _build, tags = parse_wheel_filename(path.name)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    return name, version, tags


def _file_digests(path: Path, algorithms: frozenset[str]) -> dict[str, str]:
    hashers = {algorithm: hashlib.new(algorithm) for algorithm in algorithms}
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {algorithm: hasher.hexdigest() for algorithm, hasher in hashers.items()}


def _run_pip_download(
    lock_file: Path,
    dest: Path,
    python_version: str,
    platforms: Iterable[str],
    timeout: float,
) -> None:
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "--require-hashes",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
    ]
    for platform in platforms:
        argv.extend(["--platform", platform])
    argv.extend(["-r", str(lock_file), "-d", str(dest)])
    command = shlex.join(argv)
    completed = run_program(
        argv,
        what="pip download",
        error=BuildError,
        timeout=timeout,
        merge_stderr=True,
        location=Location(lock_file),
        timeout_hint=f"check the network to the package index, or raise the timeout; ran: {command}",
    )
    if completed.returncode != 0:
        raise BuildError(
            f"pip download failed with exit code {completed.returncode}",
            location=Location(lock_file),
            details=_tail(completed.output),
            hint=(
                "a hash mismatch means the lock and the index disagree: refresh the lock "
                f"(see the image README); ran: {command}"
            ),
        )


def _tail(output: str) -> str:
    lines = output.rstrip().splitlines()
    return "\n".join(lines[-_OUTPUT_TAIL_LINES:]) or "(pip printed nothing)"
