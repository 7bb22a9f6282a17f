"""The interfaces a policy check implements, and what a check is given.

A check is one class that carries its own metadata: its key in policies/*.yaml, the rules it
can report, its default severity, its options and what it reads. What it reads is the interface
it implements: ``ImageCheck`` (the built image's facts, never None), ``DockerfileCheck`` (the
Dockerfile, with its locator), or both, for a check that judges the image when there is one and
the Dockerfile statically otherwise.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.policy.options import Options

if TYPE_CHECKING:
    # Types only: a check's module loads neither the Dockerfile parser nor the inspector, which
    # whoever builds its context has loaded already (`harden` computing facts and package floors
    # from a cached image loads no Dockerfile code).
    from hardening.dockerfile import Dockerfile
    from hardening.inspect.facts import ImageFacts
    from hardening.locate import Locator, Where

OptionsT = TypeVar("OptionsT", bound=Options[Any])
OtherT = TypeVar("OtherT", bound=Options[Any])


@dataclass(frozen=True)
class CheckConfig(Generic[OptionsT]):
    """The merged configuration of one check: how severe, whether it runs, its own options."""

    severity: Severity
    options: OptionsT
    enabled: bool = True


class PolicyView(Protocol):
    """The policy a check runs under, for a check whose finding depends on another check."""

    def config_of(self, check: type[Check[OtherT]]) -> CheckConfig[OtherT] | None:
        """The configuration of ``check`` when the policy runs it, else None."""


@dataclass(frozen=True)
class CheckContext(Generic[OptionsT]):
    """What every check is given: the image's name and the check's configuration."""

    image: str
    config: CheckConfig[OptionsT]

    @property
    def options(self) -> OptionsT:
        return self.config.options

    def finding(
        self,
        rule_id: str,
        message: str,
        *,
        title: str,
        where: Where | None = None,
        severity: Severity | None = None,
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
        """A policy finding, at this check's severity unless ``severity`` says otherwise."""
        location: SourceLocation | None = None
        template: SourceLocation | None = None
        if where is not None:
            location, template = where
        return Finding(
            origin=Origin.POLICY,
            rule_id=rule_id,
            severity=severity or self.config.severity,
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


@dataclass(frozen=True)
class ImageContext(CheckContext[OptionsT]):
    """An image check's input: the facts of the built image. ``locator`` is None when the image
    is checked by reference, with no Dockerfile to point into."""

    facts: ImageFacts
    locator: Locator | None = field(default=None, compare=False)

    def layer_digest(self, index: int | None) -> str | None:
        """The diff id of layer ``index`` of the image, for ``Finding.layer``."""
        if index is None:
            return None
        return next((layer.diff_id for layer in self.facts.layers if layer.index == index), None)

    def locate_path(self, path: str, layer: int | None) -> Where | None:
        """The repository line that put ``path`` (last written by ``layer``) into the image."""
        return self.locator.locate_path(path, layer) if self.locator is not None else None


@dataclass(frozen=True)
class DockerfileContext(CheckContext[OptionsT]):
    """A Dockerfile check's input: the parsed Dockerfile through its locator, the policy, and the
    image's facts when the image was built and inspected too."""

    locator: Locator = field(compare=False)
    policy: PolicyView = field(compare=False)
    facts: ImageFacts | None = None

    @property
    def dockerfile(self) -> Dockerfile:
        return self.locator.dockerfile


class Check(abc.ABC, Generic[OptionsT]):
    """A policy check: returns every violation it sees (never just the first), in a stable order.

    Implement ``ImageCheck``, ``DockerfileCheck`` or both, not this class directly.
    """

    # The key of the check in policies/*.yaml (``checks.<id>``).
    id: ClassVar[str]
    # The rule ids this check can produce, with a one-line description each (for docs and SARIF).
    rules: ClassVar[tuple[tuple[str, str], ...]]
    # The severity of its findings when no policy file sets one.
    default_severity: ClassVar[Severity]
    # Its options and their policy-file section.
    options_type: ClassVar[type[Options[Any]]]

    def programs(self, options: OptionsT) -> frozenset[str]:
        """Program names the inspector must recognise in the image for this check."""
        return frozenset()


class ImageCheck(Check[OptionsT]):
    """Reads the built image; runs only when there is one."""

    @abc.abstractmethod
    def check_image(self, ctx: ImageContext[OptionsT]) -> list[Finding]:
        """Every violation in the image."""


class DockerfileCheck(Check[OptionsT]):
    """Reads the Dockerfile; runs whenever there is one, alone or next to the built image."""

    @abc.abstractmethod
    def check_dockerfile(self, ctx: DockerfileContext[OptionsT]) -> list[Finding]:
        """Every violation the Dockerfile shows."""
