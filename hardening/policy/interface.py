"""The one interface every policy check implements, and what a check is given."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

from hardening.dockerfile import Dockerfile
from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.inspect.facts import ImageFacts
from hardening.locate import Locator, Where
from hardening.render import RenderedDockerfile


@dataclass(frozen=True)
class Floor:
    """A minimum version for a Python distribution, in every environment of the image."""

    package: str
    minimum: str
    rationale: str = ""
    advisories: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckConfig:
    """The merged configuration of one check; options a check does not use stay empty."""

    severity: Severity
    enabled: bool = True
    names: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()
    go_modules: frozenset[str] = frozenset()
    floors: tuple[Floor, ...] = ()


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may read. ``facts`` is None for a Dockerfile-only check, and
    ``rendered``/``dockerfile``/``locator`` are None when an image is checked by reference."""

    image: str
    config: CheckConfig
    facts: ImageFacts | None = None
    rendered: RenderedDockerfile | None = None
    dockerfile: Dockerfile | None = None
    locator: Locator | None = field(default=None, compare=False)

    def layer_digest(self, index: int | None) -> str | None:
        """The diff id of layer ``index`` of the image, for ``Finding.layer``."""
        if self.facts is None or index is None:
            return None
        return next((layer.diff_id for layer in self.facts.layers if layer.index == index), None)

    def finding(
        self,
        rule_id: str,
        message: str,
        *,
        title: str,
        where: Where | None = None,
        description: str = "",
        package: str | None = None,
        installed_version: str | None = None,
        fixed_version: str | None = None,
        package_type: str | None = None,
        image_path: str | None = None,
        layer: str | None = None,
        references: tuple[str, ...] = (),
        properties: tuple[tuple[str, str], ...] = (),
    ) -> Finding:
        """A policy finding at this check's severity."""
        location: SourceLocation | None = None
        template: SourceLocation | None = None
        if where is not None:
            location, template = where
        return Finding(
            origin=Origin.POLICY,
            rule_id=rule_id,
            severity=self.config.severity,
            message=message,
            image=self.image,
            title=title,
            description=description,
            location=location,
            template_location=template,
            package=package,
            installed_version=installed_version,
            fixed_version=fixed_version,
            package_type=package_type,
            image_path=image_path,
            layer=layer,
            references=references,
            properties=properties,
        )


class Check(abc.ABC):
    """A policy check: reads the context, returns every violation it sees (never just the first)."""

    # The key of the check in policies/*.yaml (``checks.<id>``).
    id: ClassVar[str]
    # The rule ids this check can produce, with a one-line description each (for docs and SARIF).
    rules: ClassVar[tuple[tuple[str, str], ...]]

    @abc.abstractmethod
    def run(self, ctx: CheckContext) -> list[Finding]:
        """Every violation, in a stable order."""
