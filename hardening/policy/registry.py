"""Every policy check, registered explicitly: one enum member per check module.

A check's metadata (id, rules, default severity, options, what it reads) lives on its class;
the enum only lists the checks, in the order they run, and returns each one's class.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, assert_never

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

    NON_ROOT = NonRoot.id
    PACKAGE_FLOORS = PackageFloors.id
    FORBIDDEN_BINARIES = ForbiddenBinaries.id
    BUILD_TOOLS = BuildTools.id
    SETUID = Setuid.id
    WORLD_WRITABLE = WorldWritable.id
    SECRETS = Secrets.id
    HEALTHCHECK = Healthcheck.id
    ANOMALIES = Anomalies.id
    DOCKERFILE = DockerfileLint.id

    def check_class(self) -> type[Check[Any]]:
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
