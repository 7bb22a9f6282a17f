"""Builders of synthetic ImageFacts, renderings and check contexts for the policy unit tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hardening.findings import Finding, Severity
from hardening.inspect.facts import (
    GroupEntry,
    HealthCheck,
    ImageConfig,
    ImageFacts,
    LayerInfo,
    PasswdEntry,
)
from hardening.locate import Locator
from hardening.policy.config import Policy
from hardening.policy.interface import CheckConfig
from hardening.policy.registry import CheckId
from hardening.policy.service import run_check
from hardening.render import RenderedDockerfile

PASSWD = (
    PasswdEntry("root", 0, 0, "/root", "/bin/bash"),
    PasswdEntry("app", 10001, 10001, "/nonexistent", "/usr/sbin/nologin"),
)
GROUP = (GroupEntry("root", 0), GroupEntry("app", 10001))


def config(**changes: object) -> ImageConfig:
    base = ImageConfig(
        user="10001:10001",
        env=(("PATH", "/usr/bin:/bin"),),
        entrypoint=None,
        cmd=("python",),
        healthcheck=HealthCheck(("CMD", "true")),
        exposed_ports=(),
        labels=(),
        history=(),
        working_dir="/",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def layers(count: int) -> tuple[LayerInfo, ...]:
    return tuple(
        LayerInfo(index, f"sha256:{index:064x}", f"blob{index}", 10, False, 10) for index in range(count)
    )


def facts(**changes: object) -> ImageFacts:
    base = ImageFacts(
        reference="example:1",
        image_id="sha256:" + "0" * 64,
        config=config(),
        layers=layers(1),
        passwd=PASSWD,
        group=GROUP,
        dpkg_packages=(),
        python_envs=(),
        setuid_files=(),
        world_writable_dirs=(),
        binaries=(),
        total_size=0,
        filesystem_size=0,
        anomalies=(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def rendered(text: str, *, template_offset: int = 0) -> RenderedDockerfile:
    """A rendering whose template line is the rendered line minus ``template_offset``."""
    count = len(text.splitlines())
    return RenderedDockerfile(
        image="demo",
        template=Path("dockerfiles/demo/Dockerfile.j2"),
        path=Path("dockerfiles/demo/Dockerfile"),
        text=text,
        variables_hash="x",
        line_map=tuple((n - template_offset if n > template_offset else None) for n in range(1, count + 1)),
    )


def run(
    check: CheckId,
    *,
    image_facts: ImageFacts | None = None,
    dockerfile: str | None = None,
    severity: Severity | None = None,
    policy: Policy | None = None,
    **options: object,
) -> list[Finding]:
    """One check, configured with ``options`` (its own options type), over what is given."""
    cls = check.check_class()
    config = CheckConfig(severity or cls.default_severity, cls.options_type(**options))
    policy = policy or Policy(("test.yaml",), Severity.HIGH, {check: config})
    locator = Locator(rendered(dockerfile), image_facts) if dockerfile is not None else None
    return run_check(cls(), config, policy, image="demo", facts=image_facts, locator=locator)


def rules(findings: list[Finding]) -> list[str]:
    return [f.rule_id for f in findings]
