"""OpenVEX from the decisions the gate already recorded: suppressions and baselines.

One statement per vulnerability and package: the product is the pushed image (``pkg:oci`` at its
manifest digest), the subcomponent the package by the package URL the scan's SBOM gives it — the
same URL a scanner reading the image computes, so Trivy's ``--vex`` can match it.

- A suppression that names an OpenVEX justification says the image is ``not_affected``; its
  reason is the impact statement.
- A suppression without one, and a baseline entry, accept a risk: ``affected``, with the reason
  and expiry (or the baseline) as the action statement. Never a claim of safety.

Findings that were neither suppressed nor baselined get no statement: VEX says nothing the gate
did not decide.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardening.errors import Location, ReportInputError
from hardening.evidence.statements import hex_of
from hardening.findings import Finding, Origin
from hardening.gate import Suppression

CONTEXT = "https://openvex.dev/ns/v0.2.0"
NOT_AFFECTED = "not_affected"
AFFECTED = "affected"

_TRIVY_TYPE = "aquasecurity:trivy:PkgType"
_TRIVY_PATH = "aquasecurity:trivy:FilePath"


@dataclass(frozen=True)
class VexEntry:
    vulnerability: str
    aliases: tuple[str, ...]
    purls: tuple[str, ...]
    status: str
    justification: str | None = None
    impact_statement: str | None = None
    action_statement: str | None = None


@dataclass(frozen=True)
class _Component:
    name: str
    version: str
    purl: str
    kind: str | None
    path: str | None


def _components(items: Any) -> Iterator[_Component]:
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict):
            continue
        purl, name = item.get("purl"), item.get("name")
        if isinstance(purl, str) and isinstance(name, str):
            props = {
                p.get("name"): p.get("value")
                for p in item.get("properties") or []
                if isinstance(p, dict) and isinstance(p.get("value"), str)
            }
            yield _Component(
                name, str(item.get("version") or ""), purl, props.get(_TRIVY_TYPE), props.get(_TRIVY_PATH)
            )
        yield from _components(item.get("components"))


def _without_epoch(version: str) -> str:
    head, sep, tail = version.partition(":")
    return tail if sep and head.isdigit() else version


def package_urls(finding: Finding, components: Sequence[_Component]) -> tuple[str, ...]:
    """The package URLs the SBOM gives the package a finding is about (empty when none)."""
    named = [c for c in components if c.name == finding.package]
    if finding.package_type:
        named = [c for c in named if c.kind in (None, finding.package_type)]
    wanted = {finding.installed_version or "", _without_epoch(finding.installed_version or "")}
    versioned = [c for c in named if c.version in wanted]
    if finding.image_path:
        # Trivy's SBOM writes paths relative to the image root, its findings from the root.
        at_path = [c for c in versioned if c.path and c.path.lstrip("/") == finding.image_path.lstrip("/")]
        versioned = at_path or versioned
    return tuple(sorted({c.purl for c in versioned}))


def _is_vulnerability(finding: Finding) -> bool:
    return finding.origin is Origin.SCANNER and bool(finding.package) and bool(finding.installed_version)


def _aliases(finding: Finding) -> tuple[str, ...]:
    vendor = dict(finding.properties).get("trivy.vendor_ids", "")
    return tuple(sorted({a for a in vendor.split(",") if a and a != finding.rule_id}))


def vex_entries(
    image: str,
    findings: Sequence[Finding],
    sbom: Mapping[str, Any],
    suppressions: Sequence[Suppression],
    baseline: frozenset[tuple[str, ...]],
    *,
    findings_file: Path,
    baseline_file: Path | None,
) -> tuple[VexEntry, ...]:
    """Statements for every vulnerability a suppression or the baseline accepted for ``image``.

    The findings record keeps only a suppression's reason, so the suppression is found again by
    matching; a suppressed finding that no current suppression explains means the policy changed
    since the run, and the VEX would not describe what the gate decided: bad input.
    """
    components = list(_components(sbom.get("components")))
    grouped: dict[tuple[str, tuple[str, ...]], list[VexEntry]] = {}
    for finding in findings:
        if not _is_vulnerability(finding):
            continue
        if finding.suppressed_by is not None:
            suppression = next(
                (s for s in suppressions if s.reason == finding.suppressed_by and s.matches(finding)), None
            )
            if suppression is None:
                raise ReportInputError(
                    f"{finding.rule_id} in {finding.package} {finding.installed_version} was suppressed in "
                    "the run, but no suppression of the gate policy matches it with that reason now",
                    location=Location(findings_file),
                    hint=f"the suppressions changed since the run: run `harden run {image}` again",
                )
            entry = _suppressed(finding, suppression)
        elif finding.key in baseline:
            entry = VexEntry(
                finding.rule_id,
                _aliases(finding),
                (),
                AFFECTED,
                action_statement=(
                    f"Accepted in the baseline {baseline_file}: known when the baseline was taken; only "
                    "findings not in it fail the release gate. Not a claim that the image is unaffected."
                ),
            )
        else:
            continue
        purls = package_urls(finding, components)
        if not purls:
            raise ReportInputError(
                f"the SBOM of the run has no package {finding.package} {finding.installed_version} "
                f"for {finding.rule_id}",
                location=Location(findings_file),
                hint=f"the scan records disagree: run `harden run {image}` again",
            )
        grouped.setdefault((entry.vulnerability, purls), []).append(entry)
    return tuple(_merge(items, purls) for (_, purls), items in sorted(grouped.items()))


def _suppressed(finding: Finding, suppression: Suppression) -> VexEntry:
    if suppression.justification:
        return VexEntry(
            finding.rule_id,
            _aliases(finding),
            (),
            NOT_AFFECTED,
            justification=suppression.justification,
            impact_statement=suppression.reason,
        )
    return VexEntry(
        finding.rule_id,
        _aliases(finding),
        (),
        AFFECTED,
        action_statement=(
            f"Risk accepted until {suppression.expires.isoformat()} ({suppression.source}): "
            f"{suppression.reason}"
        ),
    )


def _merge(items: Sequence[VexEntry], purls: tuple[str, ...]) -> VexEntry:
    """One statement per vulnerability and package; "affected" wins over a claim of safety."""
    first = items[0]
    aliases = tuple(sorted({a for item in items for a in item.aliases}))
    affected = [item for item in items if item.status == AFFECTED]
    if not affected:
        return VexEntry(
            first.vulnerability, aliases, purls, NOT_AFFECTED, first.justification, first.impact_statement
        )
    actions = sorted({item.action_statement or "" for item in affected})
    return VexEntry(first.vulnerability, aliases, purls, AFFECTED, action_statement=" ".join(actions))


def image_purl(repository: str, digest: str) -> str:
    """``pkg:oci/<name>@sha256:…``: the digest pins the image, so no registry is named."""
    hex_of(digest)
    name = repository.rsplit("/", 1)[-1].lower()
    return f"pkg:oci/{name}@{digest}"


def openvex_document(
    entries: Sequence[VexEntry],
    *,
    repository: str,
    digest: str,
    author: str,
    timestamp: str,
    tooling: str,
) -> dict[str, Any]:
    product = image_purl(repository, digest)
    statements = []
    for entry in entries:
        vulnerability: dict[str, Any] = {"name": entry.vulnerability}
        if entry.aliases:
            vulnerability["aliases"] = list(entry.aliases)
        statement: dict[str, Any] = {
            "vulnerability": vulnerability,
            "products": [{"@id": product, "subcomponents": [{"@id": purl} for purl in entry.purls]}],
            "status": entry.status,
        }
        if entry.justification:
            statement["justification"] = entry.justification
        if entry.impact_statement:
            statement["impact_statement"] = entry.impact_statement
        if entry.action_statement:
            statement["action_statement"] = entry.action_statement
        statements.append(statement)
    return {
        "@context": CONTEXT,
        "@id": f"urn:hardening:openvex:{repository}@{digest}",
        "author": author,
        "timestamp": timestamp,
        "version": 1,
        "tooling": tooling,
        "statements": statements,
    }
