"""Whether the archive's security pocket has moved past a base image (`harden base --if-outdated`).

The base applies ``<suite>-security`` when it is built, so a security update published since is
the one reason to bootstrap it again; ``<suite>-updates`` is not part of the base's recipe and
does not count. The comparison is `harden outdated`'s, without reading changelogs: only whether
anything is pending, and what.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hardening.aptsources import read_sources
from hardening.archive.cache import ArchiveCache, default_cache_dir
from hardening.archive.fetch import Fetcher
from hardening.archive.image import TargetOptions, read_image_archive, resolve_target
from hardening.archive.model import PendingUpdate
from hardening.archive.outdated import ArchiveAccess, ChangelogMode, check_image
from hardening.archive.release import DEFAULT_KEYRING
from hardening.basespec import BaseSpec
from hardening.engine.client import Engine
from hardening.engine.saved import saved_image


@dataclass(frozen=True)
class BaseFreshness:
    ref: str
    compared: int  # packages of the base compared with the archive
    security: tuple[PendingUpdate, ...]  # updates of <suite>-security the base lacks

    @property
    def outdated(self) -> bool:
        return bool(self.security)

    def describe(self) -> str:
        if not self.security:
            return f"{self.compared} packages compared, no security update pending"
        named = ", ".join(
            f"{u.package} {u.installed_version} → {u.candidate_version}" for u in self.security[:5]
        )
        more = f" and {len(self.security) - 5} more" if len(self.security) > 5 else ""
        return f"{len(self.security)} security updates pending: {named}{more}"


def check_base(
    engine: Engine, spec: BaseSpec, *, cache_dir: Path | None = None, timeout: float = 60.0
) -> BaseFreshness:
    """Compare the local base image of ``spec`` with its suite's archive; raise ``ArchiveError``
    (or ``ArchiveTrustError``) when the archive cannot be read or does not verify."""
    with saved_image(engine, spec.ref, prefix="hardening-base-check-") as tar_path:
        state = read_image_archive(tar_path, reference=spec.ref)
    where = resolve_target(state, TargetOptions(), machine_sources=read_sources(), base=spec)
    access = ArchiveAccess(
        Fetcher(timeout=timeout),
        ArchiveCache((cache_dir or default_cache_dir()).expanduser()),
        (DEFAULT_KEYRING,),
    )
    report = check_image(state, where, access, changelogs=ChangelogMode.NONE)
    return BaseFreshness(spec.ref, report.compared, tuple(u for u in report.pending if u.security))
