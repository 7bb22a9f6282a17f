"""Every policy check, registered explicitly: one enum member per check module."""

from __future__ import annotations

from enum import StrEnum
from typing import assert_never

from hardening.findings import Severity
from hardening.policy.anomalies import Anomalies
from hardening.policy.build_tools import BuildTools
from hardening.policy.dockerfile_lint import DockerfileLint
from hardening.policy.forbidden_binaries import ForbiddenBinaries
from hardening.policy.healthcheck import Healthcheck
from hardening.policy.interface import Check
from hardening.policy.non_root import NonRoot
from hardening.policy.package_floors import PackageFloors
from hardening.policy.secrets import Secrets
from hardening.policy.setuid import Setuid
from hardening.policy.world_writable import WorldWritable


class CheckId(StrEnum):
    """A check, by its key under ``checks:`` in policies/*.yaml; the order is the run order."""

    NON_ROOT = "non_root"
    PACKAGE_FLOORS = "package_floors"
    FORBIDDEN_BINARIES = "forbidden_binaries"
    BUILD_TOOLS = "build_tools"
    SETUID = "setuid"
    WORLD_WRITABLE = "world_writable"
    SECRETS = "secrets"
    HEALTHCHECK = "healthcheck"
    ANOMALIES = "anomalies"
    DOCKERFILE = "dockerfile"

    def check_class(self) -> type[Check]:
        match self:
            case CheckId.NON_ROOT:
                return NonRoot
            case CheckId.PACKAGE_FLOORS:
                return PackageFloors
            case CheckId.FORBIDDEN_BINARIES:
                return ForbiddenBinaries
            case CheckId.BUILD_TOOLS:
                return BuildTools
            case CheckId.SETUID:
                return Setuid
            case CheckId.WORLD_WRITABLE:
                return WorldWritable
            case CheckId.SECRETS:
                return Secrets
            case CheckId.HEALTHCHECK:
                return Healthcheck
            case CheckId.ANOMALIES:
                return Anomalies
            case CheckId.DOCKERFILE:
                return DockerfileLint
            case _:
                assert_never(self)

    @property
    def default_severity(self) -> Severity:
        """The severity when no policy file sets one."""
        match self:
            case CheckId.FORBIDDEN_BINARIES:
                return Severity.CRITICAL
            case (
                CheckId.NON_ROOT
                | CheckId.PACKAGE_FLOORS
                | CheckId.BUILD_TOOLS
                | CheckId.SECRETS
                | CheckId.ANOMALIES
            ):
                return Severity.HIGH
            case CheckId.SETUID | CheckId.WORLD_WRITABLE | CheckId.DOCKERFILE:
                return Severity.MEDIUM
            case CheckId.HEALTHCHECK:
                return Severity.LOW
            case _:
                assert_never(self)

    @property
    def needs_image(self) -> bool:
        """Whether the check reads only the built image (nothing to do for a Dockerfile alone)."""
        return self not in (CheckId.NON_ROOT, CheckId.HEALTHCHECK, CheckId.DOCKERFILE)
