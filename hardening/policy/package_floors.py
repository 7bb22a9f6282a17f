"""Minimum versions of Python distributions, in every Python environment of the image.

A venv with a fixed setuptools next to Debian's older copy in /usr/lib/python3/dist-packages is
still vulnerable: whatever runs the system interpreter imports the old one.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

from hardening.findings import Finding
from hardening.policy.interface import Check, CheckContext, Floor


def floor_rule(package: str) -> str:
    """``HARDEN-FLOOR-SETUPTOOLS`` for setuptools: one stable rule per floored package."""
    return "HARDEN-FLOOR-" + re.sub(r"[^A-Z0-9]+", "-", package.upper()).strip("-")


class PackageFloors(Check):
    id = "package_floors"
    rules = (("HARDEN-FLOOR-<PACKAGE>", "A Python distribution is older than the policy's floor."),)

    def run(self, ctx: CheckContext) -> list[Finding]:
        if ctx.facts is None:
            return []
        findings: list[Finding] = []
        for floor in ctx.config.floors:
            minimum = Version(floor.minimum)
            for env in ctx.facts.python_envs:
                dist = env.get(floor.package)
                if dist is None:
                    continue
                try:
                    below = Version(dist.version) < minimum
                    problem = "is below the floor"
                except InvalidVersion:
                    below = True
                    problem = "has a version that cannot be compared with the floor"
                if not below:
                    continue
                findings.append(self._finding(ctx, floor, dist.name, dist.version, env.path, problem))
        return findings

    @staticmethod
    def _finding(
        ctx: CheckContext, floor: Floor, name: str, version: str, env_path: str, problem: str
    ) -> Finding:
        advisories = f" ({', '.join(floor.advisories)})" if floor.advisories else ""
        where = ctx.locator.locate_package("python", name, env_path) if ctx.locator else None
        properties: tuple[tuple[str, str], ...] = (("environment", env_path),)
        if floor.advisories:
            properties += (("advisories", ",".join(floor.advisories)),)
        return ctx.finding(
            floor_rule(floor.package),
            f"{name} {version} in {env_path} {problem} {floor.minimum}{advisories}",
            title=f"{floor.package} below the policy floor {floor.minimum}",
            where=where,
            description=floor.rationale,
            package=name,
            installed_version=version,
            fixed_version=floor.minimum,
            package_type="python-pkg",
            image_path=env_path,
            properties=properties,
        )
