"""The local Debian base image: debootstrap from the Debian archive, slimmed, imported.

Nothing can be pulled on the machines we target, so every image starts from a root filesystem we
build ourselves from the archive named in the machine's apt configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hardening import __version__
from hardening.aptsources import APT_DIR, debian_mirror, read_sources, security_mirror
from hardening.basespec import BaseSpec as BaseSpec  # re-exported: callers that make bases name it here
from hardening.errors import BaseImageError, ConfigError
from hardening.process import run_program
from hardening.repro import NORMALISER_VERSION

if TYPE_CHECKING:  # the docker SDK is slow to import and only needed to talk to the engine
    from hardening.engine.client import Engine
    from hardening.policy.options import AllowPaths  # only needed when a base is made

LABEL_PREFIX = "org.hardening.base"
DEBOOTSTRAP_TIMEOUT = 1200.0

# Keep documentation, manuals and translations out of every image built on the base; the
# copyright files stay because they are the licence record.
DPKG_SLIM = """\
# Written by hardening: images built on this base stay slim.
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/linda/*
"""

_APT_CACHES = "/var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin"
# What every template used to delete after its installs: the logs of the build (they only record
# when and how the image was built, and make every build differ; apt's are switched off here,
# dpkg's go to /dev/null, see _slim) and debconf's backup copies.
_DPKG_LEFTOVERS = "/var/cache/debconf/*-old"
APT_SLIM = f"""\
// Written by hardening: no recommends, no package caches or build logs left in image layers.
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Dir::Log::Terminal "/dev/null";
Dir::Log::History "/dev/null";
Dir::Log::Planner "/dev/null";
DPkg::Post-Invoke {{ "rm -f {_APT_CACHES} {_DPKG_LEFTOVERS} || true"; }};
APT::Update::Post-Invoke {{ "rm -f {_APT_CACHES} || true"; }};
Acquire::Languages "none";
Acquire::GzipIndexes "true";
"""

SETUID_BITS = stat.S_ISUID | stat.S_ISGID
DISCARDED_LOGS = ("var/log/dpkg.log", "var/log/alternatives.log")


def recipe(keep_setuid: AllowPaths) -> str:
    """Changes whenever the way the base is made changes, so existing bases are rebuilt."""
    allow = "\n".join(sorted(keep_setuid.allow))
    # The base's layer is made canonical too: a base from before that (or from another
    # version of the rewrite) is not the one this recipe makes.
    text = f"recipe-3\n{DPKG_SLIM}\n{APT_SLIM}\n{DISCARDED_LOGS}\n{allow}\nnormaliser-{NORMALISER_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BaseResult:
    ref: str
    image_id: str
    size: int
    packages: int
    mirror: str
    rebuilt: bool
    setuid_cleared: int = 0  # files whose setuid/setgid bits the base cleared


def setuid_allowlist(spec: BaseSpec) -> AllowPaths:
    """The setuid/setgid files the base keeps: what its policies' ``setuid`` check accepts.

    One definition serves both: the check flags exactly the files the base would have cleared.
    Without a policy, or with the check switched off, nothing is accepted and every bit goes.
    """
    from hardening.policy.options import AllowPaths

    if not spec.policies:
        return AllowPaths()
    from hardening.policy.config import load_policies
    from hardening.policy.setuid import Setuid

    config = load_policies(Path("/"), spec.policies).config_of(Setuid)
    return config.options if config is not None else AllowPaths()


def resolve_mirrors(spec: BaseSpec) -> tuple[str, str | None]:
    sources = read_sources()
    mirror = spec.mirror or debian_mirror(spec.suite, sources)
    if not mirror:
        # Typically an Ubuntu host (GitHub's hosted runners): its apt sources name Ubuntu's archive,
        # which debootstrap cannot make a Debian base from. Say what was read and both ways out.
        named = sorted({source.uri for source in sources})
        raise ConfigError(
            f"no Debian archive mirror is configured on this machine (apt sources in {APT_DIR})",
            details="they name only: " + ", ".join(named) if named else "they name no repository at all",
            hint=(
                "run on Debian, whose apt configuration names its archive (on an Ubuntu host such as "
                "GitHub's hosted runners: in a Debian job container, as .github/workflows/ci.yml does), "
                "or name a mirror: `--mirror http://<debian-mirror>/debian`, or `mirror` in the [base] "
                "table of hardening.toml"
            ),
        )
    return mirror, spec.security_mirror or security_mirror(sources)


def _run(argv: list[str], what: str, timeout: float, on_line: Callable[[str], None] | None) -> None:
    if on_line:
        on_line(f"$ {' '.join(argv)}")
    result = run_program(
        argv,
        what=what,
        error=BaseImageError,
        timeout=timeout,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C"),
        merge_stderr=True,
    )
    if result.returncode != 0:
        raise BaseImageError(f"{what} failed (exit {result.returncode})", details=result.tail(20))


def _count_packages(rootfs: Path) -> int:
    status = rootfs / "var/lib/dpkg/status"
    text = status.read_text(errors="replace") if status.exists() else ""
    return sum(1 for line in text.splitlines() if line == "Status: install ok installed")


def _slim(rootfs: Path) -> None:
    def clear(directory: Path, keep: Callable[[Path], bool] = lambda _p: False) -> None:
        if not directory.is_dir():
            return
        for entry in directory.iterdir():
            if keep(entry):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    clear(rootfs / "var/lib/apt/lists", keep=lambda p: p.name in {"partial", "lock"})
    clear(rootfs / "var/cache/apt/archives", keep=lambda p: p.name in {"partial", "lock"})
    for cache in (rootfs / "var/cache/apt").glob("*.bin"):
        cache.unlink()
    for old in (rootfs / "var/cache/debconf").glob("*-old"):
        old.unlink()
    for sub in ("usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/linda"):
        clear(rootfs / sub)
    clear(rootfs / "usr/share/locale", keep=lambda p: p.name == "locale.alias")
    doc = rootfs / "usr/share/doc"
    if doc.is_dir():
        for package_doc in doc.iterdir():
            if package_doc.is_dir() and not package_doc.is_symlink():
                clear(package_doc, keep=lambda p: p.name == "copyright")
    for log in (rootfs / "var/log").rglob("*"):
        if log.is_file():
            log.write_bytes(b"")
    # dpkg and update-alternatives append to these whether apt runs them or a Dockerfile does;
    # dpkg's own configuration file names its log after any of ours, so the file is redirected.
    for log_name in DISCARDED_LOGS:
        log = rootfs / log_name
        if log.exists() or log.is_symlink():
            log.unlink()
        log.symlink_to("/dev/null")
    # The engine provides these at run time; the build host's copies must not ship.
    for runtime_file in ("etc/resolv.conf", "etc/hostname"):
        target = rootfs / runtime_file
        if target.exists() or target.is_symlink():
            target.unlink()
    # The engine mounts its own /dev; device nodes in the image are never used and read as
    # anomalies (and world-writable files) to anyone inspecting it.
    clear(rootfs / "dev")
    machine_id = rootfs / "etc/machine-id"
    if machine_id.exists():
        machine_id.write_text("")


def _setuid_files(rootfs: Path) -> list[tuple[str, os.stat_result]]:
    """Every regular file with a setuid or setgid bit, as (path in the image, lstat)."""
    found = []
    for directory, dirs, files in os.walk(rootfs):
        dirs.sort()
        for name in sorted(files):
            full = Path(directory, name)
            info = full.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_mode & SETUID_BITS:
                found.append(("/" + full.relative_to(rootfs).as_posix(), info))
    return found


def _clear_setuid(rootfs: Path, keep: AllowPaths, on_line: Callable[[str], None] | None) -> int:
    """Clear the setuid/setgid bits of every file ``keep`` does not accept; returns how many.

    Through dpkg-statoverride, not chmod: dpkg then applies the same mode when a later
    ``apt-get install`` or upgrade in an image built on the base unpacks the file again.
    """
    cleared = 0
    for path, info in _setuid_files(rootfs):
        if keep.allows(path):
            continue
        mode = f"{stat.S_IMODE(info.st_mode) & ~SETUID_BITS:04o}"
        argv = ["chroot", str(rootfs), "dpkg-statoverride", "--update", "--add"]
        _run(
            [*argv, f"#{info.st_uid}", f"#{info.st_gid}", mode, path],
            f"clearing setuid/setgid of {path}",
            60,
            on_line,
        )
        cleared += 1
    return cleared


def _configure(rootfs: Path, suite: str, mirror: str, security: str | None) -> None:
    (rootfs / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/dpkg/dpkg.cfg.d/90-hardening-slim").write_text(DPKG_SLIM)
    (rootfs / "etc/apt/apt.conf.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/apt/apt.conf.d/90-hardening-slim").write_text(APT_SLIM)
    lines = [f"deb {mirror} {suite} main", f"deb {mirror} {suite}-updates main"]
    if security:
        lines.append(f"deb {security} {suite}-security main")
    (rootfs / "etc/apt/sources.list").write_text("\n".join(lines) + "\n")


def base_labels(
    spec: BaseSpec, mirror: str, packages: int, created: str, setuid_cleared: int = 0
) -> dict[str, str]:
    keep = setuid_allowlist(spec)
    return {
        f"{LABEL_PREFIX}.suite": spec.suite,
        f"{LABEL_PREFIX}.mirror": mirror,
        f"{LABEL_PREFIX}.created": created,
        f"{LABEL_PREFIX}.packages": str(packages),
        f"{LABEL_PREFIX}.builder-version": __version__,
        f"{LABEL_PREFIX}.recipe": recipe(keep),
        f"{LABEL_PREFIX}.setuid-kept": " ".join(sorted(keep.allow)),
        f"{LABEL_PREFIX}.setuid-cleared": str(setuid_cleared),
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.title": spec.ref,
        "org.opencontainers.image.description": f"Debian {spec.suite} minbase, slimmed",
    }


def is_current(labels: dict[str, str] | None, spec: BaseSpec, mirror: str) -> bool:
    if not labels:
        return False
    return (
        labels.get(f"{LABEL_PREFIX}.suite") == spec.suite
        and labels.get(f"{LABEL_PREFIX}.mirror") == mirror
        and labels.get(f"{LABEL_PREFIX}.recipe") == recipe(setuid_allowlist(spec))
    )


def ensure_base(
    engine: Engine,
    spec: BaseSpec,
    *,
    force: bool = False,
    on_line: Callable[[str], None] | None = None,
    identity: tuple[str, str] | None = None,
) -> BaseResult:
    """Build the base image unless one with matching labels already exists.

    ``identity`` is the repository's (revision, last commit time): the commit time is the base's
    ``SOURCE_DATE_EPOCH``, so the same recipe on the same archive state gives the same image id.
    """
    mirror, security = resolve_mirrors(spec)
    existing = engine.image(spec.ref)
    if existing is not None and not force and is_current(dict(existing.labels), spec, mirror):
        return BaseResult(
            spec.ref,
            existing.id,
            existing.size,
            int(existing.labels.get(f"{LABEL_PREFIX}.packages", "0") or 0),
            mirror,
            rebuilt=False,
            setuid_cleared=int(existing.labels.get(f"{LABEL_PREFIX}.setuid-cleared", "0") or 0),
        )
    if os.geteuid() != 0:
        raise BaseImageError(
            "building the base image with debootstrap needs root",
            hint="run `harden base` as root (on GitHub's hosted runners, whose user is not root: in a "
            "Debian job container, as .github/workflows/ci.yml does)",
        )
    if shutil.which("debootstrap") is None:
        from hardening.engine.provision import apt_install

        apt_install(["debootstrap"])
    from hardening.repro.archivestate import label_text, releases_in_rootfs
    from hardening.repro.image import normalise_image
    from hardening.repro.inputs import BASE_ARCHIVE_LABEL, source_date_epoch

    workdir = Path(tempfile.mkdtemp(prefix="hardening-base-", dir="/var/tmp"))  # nosec B108
    try:
        rootfs = workdir / "rootfs"
        _run(
            ["debootstrap", "--variant=minbase", "--components=main", spec.suite, str(rootfs), mirror],
            f"debootstrap of {spec.suite} from {mirror}",
            DEBOOTSTRAP_TIMEOUT,
            on_line,
        )
        _configure(rootfs, spec.suite, mirror, security)
        if security:
            # Security fixes published after the point release belong in the base, not in
            # every image built on it.
            _run(
                ["chroot", str(rootfs), "apt-get", "update", "-q"], "apt-get update in the base", 600, on_line
            )
            _run(
                ["chroot", str(rootfs), "apt-get", "upgrade", "-y", "-q"],
                "apt-get upgrade in the base",
                900,
                on_line,
            )
        # Every image built on the base starts without identity-changing programs it may not keep.
        cleared = _clear_setuid(rootfs, setuid_allowlist(spec), on_line)
        archive = releases_in_rootfs(rootfs)  # read before _slim removes the apt lists
        _slim(rootfs)
        packages = _count_packages(rootfs)
        tar_path = workdir / "rootfs.tar"
        _run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tar_path), "."],
            "packing the root filesystem",
            600,
            on_line,
        )
        created = identity[1] if identity else datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        labels = base_labels(spec, mirror, packages, created, cleared)
        labels[BASE_ARCHIVE_LABEL] = label_text(archive)
        changes = [f"LABEL {key}={json.dumps(value)}" for key, value in sorted(labels.items())]
        changes += ["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]']
        if on_line:
            on_line(f"importing {spec.ref}")
        imported = engine.import_rootfs(tar_path, spec.repository, spec.tag, changes)
        # The imported layer as the engine stores it is the tar above: times, order and owner
        # names from the host. The same rewrite as every image's layers makes it canonical.
        normalised = normalise_image(
            engine,
            imported,
            repository=spec.repository,
            tag=spec.tag,
            epoch=source_date_epoch(labels),
            keep=0,
        )
        image_id = normalised.image_id
        if on_line:
            on_line(f"normalised {imported[7:19]} → {image_id[7:19]}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info = engine.image(spec.ref)
    size = info.size if info else 0
    return BaseResult(spec.ref, image_id, size, packages, mirror, rebuilt=True, setuid_cleared=cleared)
