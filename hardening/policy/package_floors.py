"""Minimum versions of Python distributions, in every Python environment of the image.

A venv with a fixed setuptools next to Debian's older copy in /usr/lib/python3/dist-packages is
still vulnerable: whatever runs the system interpreter imports the old one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from packaging.version import InvalidVersion, Version

from hardening.findings import Finding, Severity
from hardening.inspect.pydist import normalise_name
from hardening.policy.interface import ImageCheck, ImageContext
from hardening.policy.options import Options, Section
from hardening.strict import TEXT, ListOf, Text, record, typed

PACKAGE_NAME = Text(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ADVISORY = Text(r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9-]+$")


def _pep440(value: str) -> str:
    try:
        Version(value)
    except InvalidVersion:
        raise ValueError(f"{value!r} is not a PEP 440 version") from None
    return value


@dataclass(frozen=True)
class FloorModel:
    package: str = field(metadata=typed(PACKAGE_NAME))
    minimum: str = field(metadata=typed(Text(after=_pep440)))
    rationale: str = field(default="", metadata=typed(TEXT))
    advisories: tuple[str, ...] = field(default=(), metadata=typed(ListOf(ADVISORY)))


@dataclass(frozen=True)
class FloorsSection(Section):
    floors: tuple[FloorModel, ...] = field(default=(), metadata=typed(ListOf(record(FloorModel))))


@dataclass(frozen=True)
class Floor:
    """A minimum version for a Python distribution, in every environment of the image."""

    package: str
    minimum: str
    rationale: str = ""
    advisories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Floors(Options[FloorsSection]):
    """Floors keyed by package (PEP 503 name): a later file's floor replaces an earlier one."""

    section: ClassVar[type[Section]] = FloorsSection
    floors: tuple[Floor, ...] = ()

    def merged(self, section: FloorsSection) -> Floors:
        by_name = {normalise_name(floor.package): floor for floor in self.floors}
        for model in section.floors:
            by_name[normalise_name(model.package)] = Floor(
                model.package, model.minimum, model.rationale, tuple(model.advisories)
            )
        return Floors(tuple(by_name.values()))

    def floor_of(self, package: str) -> Floor | None:
        """The floor of ``package`` (any spelling of its name), if the policy sets one."""
        wanted = normalise_name(package)
        return next((floor for floor in self.floors if normalise_name(floor.package) == wanted), None)


def floor_rule(package: str) -> str:
    """``HARDEN-FLOOR-SETUPTOOLS`` for setuptools: one stable rule per floored package."""
    return "HARDEN-FLOOR-" + re.sub(r"[^A-Z0-9]+", "-", package.upper()).strip("-")


class PackageFloors(ImageCheck[Floors]):
    id = "package_floors"
    rules = (("HARDEN-FLOOR-<PACKAGE>", "A Python distribution is older than the policy's floor."),)
    default_severity = Severity.HIGH
    options_type = Floors

    def check_image(self, ctx: ImageContext[Floors]) -> list[Finding]:
        findings: list[Finding] = []
        for floor in ctx.options.floors:
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
        ctx: ImageContext[Floors], floor: Floor, name: str, version: str, env_path: str, problem: str
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
