"""Findings as SARIF 2.1.0 for GitHub code scanning: the only module that knows SARIF's shape.

Design points a reader needs before changing anything here:

* One file per image, one run per tool (Trivy for scanner findings, hardening for policy
  findings), every run with ``automationDetails.id`` set to the image's category. A run is written
  for every tool given, even with no results: GitHub closes an alert only when a later analysis
  of the same tool and category no longer reports it.
* Every result points at a line of a file in this repository (the rendered Dockerfile line
  responsible, else the caller's fallback), never at the image: code scanning can only anchor
  alerts to repository files.
* ``partialFingerprints.primaryLocationLineHash`` is ``<hash>:<occurrence>``. The hash covers rule
  id, package, installed version, path in the image, image name without tag or digest, and the
  whitespace-normalised text of the responsible line: it survives rebuilds (new image ids, tags,
  times) and edits that only move the line. Findings equal in all of these are numbered in a
  content order so they stay distinct and the numbering does not depend on input order.
* ``security-severity`` is the CVSS score when the finding has one, else the fallback below
  (chosen inside the band GitHub maps each severity to: >= 9.0 critical, 7.0-8.9 high,
  4.0-6.9 medium, 0.1-3.9 low; 0.0 means "no security severity").
* GitHub keeps only the 5,000 most severe results per run; we truncate ourselves, most severe
  first, so that what is dropped is our choice, and say so in the run's ``properties`` and in a
  ``toolExecutionNotifications`` entry.
* Serialisation goes through sarif_om's attrs metadata (JSON names) and leaves out every value
  equal to the object model's default, so output carries no ``-1`` indexes, ``"en-US"`` or
  newline-sequence noise.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import attr
import sarif_om as om

from hardening.atomic import write_text_atomic
from hardening.errors import Location, ReportInputError
from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report import github_rules as limits
from hardening.report._common import JsonReader, image_name, sorted_findings, usable_cvss

SARIF_VERSION = "2.1.0"
SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"

FALLBACK_SECURITY_SEVERITY: Mapping[Severity, float] = {
    Severity.CRITICAL: 9.5,
    Severity.HIGH: 8.0,
    Severity.MEDIUM: 5.5,
    Severity.LOW: 2.0,
    Severity.UNKNOWN: 0.0,
}

LEVEL_OF: Mapping[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.UNKNOWN: "note",
}

# Scanner matches are by version range, which distro backports can fool; policy checks read
# the image directly.
PRECISION_OF: Mapping[Origin, str] = {Origin.SCANNER: "high", Origin.POLICY: "very-high"}

# GitHub documents no limit on message or help text; these keep one pathological finding from
# eating the 10 MB upload budget.
MAX_MESSAGE_CHARS = 4_000
MAX_HELP_CHARS = 16_000
MAX_HELP_PACKAGES = 50

TEMPLATE_LOCATION_ID = 1
_FINGERPRINT_VERSION = "hardening-fp-1"
_TEMPLATE_SUFFIX = re.compile(r"\n\nTemplate line: \[[^\]]*\]\(1\)\Z")


@dataclass(frozen=True)
class ToolInfo:
    """The tool that produced one origin's findings, as the run's ``tool.driver`` names it."""

    name: str
    version: str
    information_uri: str


def default_category(image: str) -> str:
    return f"hardening/{image_name(image)}/"


# --------------------------------------------------------------------------- building


def build_sarif(
    image: str,
    findings: Sequence[Finding],
    *,
    tools: Mapping[Origin, ToolInfo],
    fallback_location: SourceLocation,
    category: str | None = None,
    repo_root: Path | None = None,
) -> dict[str, Any]:
    """One SARIF log for one image: a run per tool in ``tools``, in ``Origin`` order."""
    missing = sorted({f.origin.value for f in findings} - {o.value for o in tools})
    if missing:
        raise ReportInputError(
            f"findings of origin {', '.join(missing)} but no tool described for it",
            location=Location(f"image {image}"),
            hint="pass a ToolInfo for every origin present in the findings",
        )
    fallback = _normalise(fallback_location, repo_root)
    if fallback is None:
        raise ReportInputError(
            f"fallback location {fallback_location.path!r} is not a path inside the repository",
            location=Location(f"image {image}"),
            hint="use the rendered Dockerfile's path relative to the repository root",
        )
    automation_id = category if category is not None else default_category(image)
    if not automation_id.endswith("/"):
        # without the slash GitHub would read the last segment as a run id, and images sharing
        # the rest of the name would close each other's alerts
        automation_id += "/"
    lines = _LineReader(repo_root)
    context = _Context(fallback=fallback, repo_root=repo_root, lines=lines)
    origins = [origin for origin in Origin if origin in tools]
    by_origin = {o: [f for f in findings if f.origin is o] for o in origins}
    budget = limits.DISPLAYED_RESULTS_PER_RUN
    while True:
        runs = [_build_run(o, tools[o], by_origin[o], automation_id, context, budget) for o in origins]
        doc = _sarif_log_json(runs)
        if budget <= 1 or limits.gzip_size(doc, limit=limits.MAX_GZIP_BYTES) <= limits.MAX_GZIP_BYTES:
            return doc
        # rare: only huge help texts on thousands of rules get here; halving converges quickly
        budget //= 2


@dataclass(frozen=True)
class _Context:
    fallback: SourceLocation
    repo_root: Path | None
    lines: _LineReader
    # Thousands of findings share a handful of locations; path parsing is the cost, not the
    # answer, so each distinct location is normalised once per log.
    _normalised: dict[SourceLocation, SourceLocation | None] = field(default_factory=dict)

    def normalise(self, location: SourceLocation) -> SourceLocation | None:
        if location not in self._normalised:
            self._normalised[location] = _normalise(location, self.repo_root)
        return self._normalised[location]


class _LineReader:
    """Lines of repository files, each file read once."""

    def __init__(self, repo_root: Path | None) -> None:
        self._root = repo_root
        self._files: dict[str, tuple[str, ...] | None] = {}

    def line(self, path: str, number: int) -> str | None:
        if self._root is None:
            return None
        if path not in self._files:
            try:
                text = (self._root / path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                self._files[path] = None
            else:
                self._files[path] = tuple(text.splitlines())
        lines = self._files[path]
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


def _normalise(location: SourceLocation, repo_root: Path | None) -> SourceLocation | None:
    """The location with a clean repository-relative POSIX path, or None when it has none."""
    raw = location.path.replace("\\", "/")
    path = PurePosixPath(raw)
    if path.is_absolute():
        if repo_root is None:
            return None
        try:
            path = PurePosixPath(Path(raw).resolve().relative_to(repo_root.resolve()).as_posix())
        except ValueError:
            return None
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    line = max(1, location.line)
    end = location.end_line if location.end_line is not None and location.end_line >= line else None
    return SourceLocation("/".join(parts), line, end)


def _fingerprint_base(finding: Finding, line_text: str | None) -> str:
    normalised_line = " ".join(line_text.split()) if line_text is not None else ""
    material = "\x1f".join(
        (
            _FINGERPRINT_VERSION,
            finding.rule_id,
            finding.package or "",
            finding.installed_version or "",
            finding.image_path or "",
            image_name(finding.image),
            normalised_line,
        )
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _pascal(text: str) -> str:
    return "".join(t[:1].upper() + t[1:] for t in re.split(r"[^0-9A-Za-z]+", text) if t)


def _is_web_uri(value: str | None) -> bool:
    if not value:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def _security_severity(group: Sequence[Finding]) -> float:
    scores = [score for score in map(usable_cvss, group) if score is not None]
    if scores:
        return max(scores)
    return FALLBACK_SECURITY_SEVERITY[max(f.severity for f in group)]


def _escape_message(text: str) -> str:
    # SARIF reads [text](n) in message text as an embedded link; literal brackets get a backslash
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _unescape_message(text: str) -> str:
    return re.sub(r"\\([\\\[\]])", r"\1", text)


def _bag(tags: Sequence[str] | None = None, **values: Any) -> Any:
    """A sarif_om PropertyBag; keys that are not Python names (``security-severity``) become
    extra attributes, which ``_to_json`` writes after the declared ``tags``."""
    bag = om.PropertyBag(tags=list(tags) if tags else None)
    for key, value in values.items():
        if value is not None:
            setattr(bag, key, value)
    return bag


def _artifact(location: SourceLocation) -> Any:
    region = om.Region(start_line=location.line, end_line=location.end_line)
    return om.PhysicalLocation(
        artifact_location=om.ArtifactLocation(uri=quote(location.path), uri_base_id=SRCROOT),
        region=region,
    )


def _help(origin: Origin, rule_id: str, group: Sequence[Finding]) -> tuple[str, str]:
    first = group[0]
    title = first.title or _first_line(first.message) or rule_id
    text: list[str] = [f"{rule_id}: {title}"]
    markdown: list[str] = [f"**{rule_id}**: {_md(title)}"]
    if first.description and first.description != title:
        text += ["", first.description]
        markdown += ["", _md(first.description)]
    rows = sorted(
        {
            (f.package or "", f.installed_version or "", f.fixed_version or "", f.image_path or "")
            for f in group
            if f.package or f.image_path
        }
    )
    if rows:
        shown = rows[:MAX_HELP_PACKAGES]
        heading = "Affected packages" if origin is Origin.SCANNER else "Affected items"
        text += ["", f"{heading}:"]
        markdown += ["", "| Package | Installed version | Fixed version | Path in image |"]
        markdown += ["| --- | --- | --- | --- |"]
        for package, installed, fixed, where in shown:
            fix = fixed or "no fix available"
            text.append(
                f"- package {package or '-'}, installed {installed or '-'}, fixed {fix}"
                + (f", at {where}" if where else "")
            )
            markdown.append(
                f"| {_cell(package)} | {_cell(installed)} | {_cell(fixed or 'no fix available')} "
                f"| {_cell(where)} |"
            )
        if len(rows) > len(shown):
            more = f"… and {len(rows) - len(shown)} more"
            text.append(more)
            markdown += ["", more]
    references = list(dict.fromkeys(r for f in group for r in f.references if r))
    primary = first.primary_url
    if primary and primary not in references:
        references.insert(0, primary)
    if references:
        text += ["", "References:"] + [f"- {r}" for r in references]
        markdown += ["", "References:", ""] + [
            f"- <{r}>" if _is_web_uri(r) else f"- {_md(r)}" for r in references
        ]
    return _clip("\n".join(text), MAX_HELP_CHARS), _clip("\n".join(markdown), MAX_HELP_CHARS)


def _md(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>|#])", r"\\\1", text)


def _cell(text: str) -> str:
    return f"`{text}`".replace("|", "\\|") if text else "-"


def _build_rule(origin: Origin, rule_id: str, group: Sequence[Finding], tool: ToolInfo) -> Any:
    first = group[0]
    title = first.title or _first_line(first.message) or rule_id
    short = f"{rule_id}: {title}" if origin is Origin.SCANNER and title != rule_id else title
    full = first.description or title
    text, markdown = _help(origin, rule_id, group)
    if _is_web_uri(first.primary_url):
        help_uri: str | None = first.primary_url
    elif rule_id.upper().startswith("CVE-"):
        help_uri = f"https://nvd.nist.gov/vuln/detail/{quote(rule_id.upper())}"
    else:
        help_uri = next((r for r in first.references if _is_web_uri(r)), None)
        if help_uri is None and _is_web_uri(tool.information_uri):
            help_uri = tool.information_uri
    if origin is Origin.SCANNER:
        types = sorted({f.package_type for f in group if f.package_type})
        name = f"{_pascal(types[0]) if types else ''}PackageVulnerability"
        tags = ["security", "vulnerability", *types]
    else:
        name = _pascal(rule_id) or "Policy"
        tags = ["security", "policy"]
    references = list(dict.fromkeys(r for f in group for r in f.references if r))
    return om.ReportingDescriptor(
        id=rule_id,
        name=_clip(name, limits.MAX_RULE_NAME_CHARS),
        short_description=om.MultiformatMessageString(text=_clip(short, limits.MAX_DESCRIPTION_CHARS)),
        full_description=om.MultiformatMessageString(text=_clip(full, limits.MAX_DESCRIPTION_CHARS)),
        help=om.MultiformatMessageString(text=text, markdown=markdown),
        help_uri=help_uri,
        default_configuration=om.ReportingConfiguration(level=LEVEL_OF[max(f.severity for f in group)]),
        properties=_bag(
            tags=list(dict.fromkeys(tags))[: limits.DISPLAYED_TAGS_PER_RULE],
            precision=PRECISION_OF[origin],
            **{"security-severity": f"{_security_severity(group):.1f}"},
            references=references or None,
        ),
    )


def _result_properties(finding: Finding) -> Any:
    return _bag(
        origin=finding.origin.value,
        severity=finding.severity.label,
        image=finding.image,
        title=finding.title or None,
        package=finding.package,
        packageType=finding.package_type,
        installedVersion=finding.installed_version,
        fixedVersion=finding.fixed_version,
        imagePath=finding.image_path,
        status=finding.status,
        cvssScore=usable_cvss(finding),
        fixable=finding.fixable,
    )


def _build_result(
    finding: Finding,
    rule_index: int,
    fingerprint: str,
    primary: SourceLocation,
    template: SourceLocation | None,
) -> Any:
    message = _clip(finding.message or finding.title or finding.rule_id, MAX_MESSAGE_CHARS)
    related = None
    if template is not None:
        message = f"{_escape_message(message)}\n\nTemplate line: [{template}]({TEMPLATE_LOCATION_ID})"
        related = [
            om.Location(
                id=TEMPLATE_LOCATION_ID,
                physical_location=_artifact(template),
                message=om.Message(text="template line that renders the responsible line"),
            )
        ]
    suppressions = None
    if finding.suppressed_by is not None:
        suppressions = [om.Suppression(kind="external", justification=finding.suppressed_by or "suppressed")]
    return om.Result(
        rule_id=finding.rule_id,
        rule_index=rule_index,
        level=LEVEL_OF[finding.severity],
        message=om.Message(text=message),
        locations=[om.Location(physical_location=_artifact(primary))],
        related_locations=related,
        partial_fingerprints={"primaryLocationLineHash": fingerprint},
        suppressions=suppressions,
        properties=_result_properties(finding),
    )


def _build_run(
    origin: Origin,
    tool: ToolInfo,
    findings: Sequence[Finding],
    automation_id: str,
    context: _Context,
    max_results: int,
) -> Any:
    ordered = sorted_findings(findings)
    located: list[tuple[Finding, SourceLocation, SourceLocation | None, str]] = []
    occurrences: Counter[str] = Counter()
    # fingerprints are numbered over every finding, before truncation, so that what truncation
    # drops never renumbers what it keeps
    for finding in ordered:
        primary = (context.normalise(finding.location) if finding.location else None) or context.fallback
        template = context.normalise(finding.template_location) if finding.template_location else None
        base = _fingerprint_base(finding, context.lines.line(primary.path, primary.line))
        occurrences[base] += 1
        located.append((finding, primary, template, f"{base}:{occurrences[base]}"))

    kept, dropped = located[:max_results], located[max_results:]
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding, *_ in kept:
        groups[finding.rule_id].append(finding)
    rule_ids = sorted(groups)
    index_of = {rule_id: index for index, rule_id in enumerate(rule_ids)}
    rules = [_build_rule(origin, rule_id, groups[rule_id], tool) for rule_id in rule_ids]
    results = [
        _build_result(finding, index_of[finding.rule_id], fingerprint, primary, template)
        for finding, primary, template, fingerprint in kept
    ]

    invocations = None
    properties = None
    if dropped:
        by_severity = Counter(f.severity.label for f, *_ in dropped)
        omitted = {s.label: by_severity[s.label] for s in Severity if by_severity[s.label]}
        summary = ", ".join(f"{count} {label}" for label, count in omitted.items())
        note = (
            f"{len(dropped)} of {len(located)} findings were left out of this run "
            f"({summary}); only the {len(kept)} most severe are reported, "
            "see the JSON report for all of them."
        )
        properties = _bag(
            truncated=True,
            resultLimit=max_results,
            totalFindings=len(located),
            omittedResults=len(dropped),
            omittedBySeverity=omitted,
        )
        invocations = [
            om.Invocation(
                execution_successful=True,
                tool_execution_notifications=[
                    om.Notification(
                        message=om.Message(text=note),
                        level="warning",
                        descriptor=om.ReportingDescriptorReference(id="results-truncated"),
                    )
                ],
            )
        ]

    driver = om.ToolComponent(
        name=tool.name,
        version=tool.version or None,
        information_uri=tool.information_uri if _is_web_uri(tool.information_uri) else None,
        rules=rules,
    )
    return om.Run(
        tool=om.Tool(driver=driver),
        automation_details=om.RunAutomationDetails(id=automation_id),
        original_uri_base_ids={
            SRCROOT: om.ArtifactLocation(description=om.Message(text="The root of the repository checkout."))
        },
        invocations=invocations,
        results=results,
        properties=properties,
    )


# --------------------------------------------------------------------------- serialising

# Values that must be written even when they equal the object model's default: a result's
# level would otherwise fall back to its rule's default level, and GitHub wants runs, results
# and rules present even when empty.
_ALWAYS_WRITTEN: frozenset[tuple[type, str]] = frozenset(
    {
        (om.Result, "level"),
        (om.SarifLog, "runs"),
        (om.Run, "results"),
        (om.ToolComponent, "rules"),
    }
)
_REQUIRED_EMPTY_OK = frozenset({"results", "rules", "runs"})


# Per attrs class: (attribute, JSON name, always written, has a default, the default).
_Plan = tuple[tuple[str, str, bool, bool, Any], ...]
_PLANS: dict[type, _Plan | None] = {}


def _plan_of(cls: type) -> _Plan | None:
    """How to write instances of ``cls``; None when it is not an attrs class. Worked out once per
    class: a log of 5,000 results has hundreds of thousands of attrs objects and values."""
    try:
        return _PLANS[cls]
    except KeyError:
        pass
    plan: _Plan | None = None
    if attr.has(cls):
        plan = tuple(
            (
                item.name,
                item.metadata["schema_property_name"],
                (cls, item.name) in _ALWAYS_WRITTEN,
                item.default is not attr.NOTHING,
                _default_of(item),
            )
            for item in attr.fields(cls)
        )
    _PLANS[cls] = plan
    return plan


def _default_of(field: Any) -> Any:
    default = field.default
    if isinstance(default, attr.Factory):  # type: ignore[arg-type]
        return default.factory()
    return default


_SCALARS = (str, int, float)


def _to_json(value: Any) -> Any:
    if value is None or isinstance(value, _SCALARS):
        return value
    plan = _plan_of(type(value))
    if plan is not None:
        return _attrs_to_json(value, plan)
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def _attrs_to_json(obj: Any, plan: _Plan | None = None) -> dict[str, Any]:
    if plan is None:
        plan = _plan_of(type(obj))
        if plan is None:
            raise TypeError(f"not a sarif_om object: {type(obj).__name__}")
    out: dict[str, Any] = {}
    for name, json_name, always, has_default, default in plan:
        value = getattr(obj, name)
        if value is None:
            continue
        if not always:
            if has_default and value == default:
                continue
            if isinstance(value, (list, tuple, dict)) and not value:
                continue
        out[json_name] = _to_json(value)
    extra = vars(obj)
    if len(extra) != len(plan):
        names = {entry[0] for entry in plan}
        for key, value in extra.items():
            if key not in names and value is not None:
                out[key] = _to_json(value)
    return out


def _sarif_log_json(runs: Sequence[Any]) -> dict[str, Any]:
    log = om.SarifLog(runs=list(runs), version=SARIF_VERSION, schema_uri=SCHEMA_URI)
    body = _attrs_to_json(log)
    # $schema and version first: that is where people and sniffers look
    return {"$schema": body.pop("$schema"), "version": body.pop("version"), **body}


# Above this many results the file is for machines (GitHub), and Python's indenting encoder,
# which is pure Python, would take longer than building the log.
_INDENTED_RESULTS = 1000


def dumps(sarif: Mapping[str, Any]) -> str:
    runs = sarif.get("runs") or []
    results = sum(len(run.get("results") or []) for run in runs if isinstance(run, Mapping))
    if results > _INDENTED_RESULTS:
        return json.dumps(sarif, ensure_ascii=False, separators=(",", ":")) + "\n"
    return json.dumps(sarif, indent=2, ensure_ascii=False) + "\n"


def write_sarif(path: Path, sarif: dict[str, Any]) -> None:
    """Write atomically (temporary file in the same directory, then ``os.replace``)."""
    write_text_atomic(path, dumps(sarif))


# --------------------------------------------------------------------------- reading


_SEVERITY_OF_LEVEL: Mapping[str, Severity] = {
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "note": Severity.LOW,
    "none": Severity.UNKNOWN,
}


def _severity_from_score(score: float) -> Severity:
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.UNKNOWN


def _read_location(reader: JsonReader, value: Any, field: str) -> SourceLocation:
    location = reader.obj(value, field)
    physical = reader.obj(location.get("physicalLocation"), f"{field}.physicalLocation")
    artifact = reader.obj(physical.get("artifactLocation"), f"{field}.physicalLocation.artifactLocation")
    uri = reader.text(artifact.get("uri"), f"{field}.physicalLocation.artifactLocation.uri")
    region = physical.get("region", {})
    reader.obj(region, f"{field}.physicalLocation.region")
    line = region.get("startLine", 1)
    if not isinstance(line, int) or isinstance(line, bool) or line < 1:
        raise reader.fail(f"{field}.physicalLocation.region.startLine", "expected a line >= 1")
    end = region.get("endLine")
    if end is not None and (not isinstance(end, int) or isinstance(end, bool) or end < line):
        raise reader.fail(f"{field}.physicalLocation.region.endLine", "expected a line >= start")
    return SourceLocation(unquote(uri), line, end)


def findings_from_sarif(doc: Mapping[str, Any], *, source: str | Path = "<sarif>") -> list[Finding]:
    """Findings back from a SARIF log (ours, or another scanner's), for ``harden diff``.

    ``source`` names the file in errors. Fields our writer adds (origin, severity, image,
    package data in result properties) are used when present; for other producers severity
    comes from the rule's ``security-severity`` or else the result level.
    """
    reader = JsonReader(source, hint="pass a SARIF 2.1.0 file as written by `harden` or by Trivy")
    log = reader.obj(doc, "$")
    if log.get("version") != SARIF_VERSION:
        raise reader.fail("version", f"expected SARIF {SARIF_VERSION!r}, found {log.get('version')!r}")
    findings: list[Finding] = []
    for run_index, run_value in enumerate(reader.arr(log.get("runs"), "runs")):
        where = f"runs[{run_index}]"
        run = reader.obj(run_value, where)
        tool = reader.obj(run.get("tool"), f"{where}.tool")
        driver = reader.obj(tool.get("driver"), f"{where}.tool.driver")
        driver_name = reader.text(driver.get("name"), f"{where}.tool.driver.name")
        run_origin = Origin.POLICY if driver_name == "hardening" else Origin.SCANNER
        rules: dict[str, Mapping[str, Any]] = {}
        rule_list = reader.arr(driver.get("rules", []), f"{where}.tool.driver.rules")
        for rule_index, rule_value in enumerate(rule_list):
            rule = reader.obj(rule_value, f"{where}.tool.driver.rules[{rule_index}]")
            rule_id = reader.text(rule.get("id"), f"{where}.tool.driver.rules[{rule_index}].id")
            rules[rule_id] = rule
        results = reader.arr(run.get("results", []), f"{where}.results")
        for result_index, result_value in enumerate(results):
            field = f"{where}.results[{result_index}]"
            findings.append(_read_result(reader, result_value, field, rules, rule_list, run_origin))
    return findings


def _read_result(
    reader: JsonReader,
    value: Any,
    field: str,
    rules: Mapping[str, Mapping[str, Any]],
    rule_list: Sequence[Any],
    run_origin: Origin,
) -> Finding:
    result = reader.obj(value, field)
    rule_id = reader.opt_text(result, "ruleId", field)
    if rule_id is None:
        index = result.get("ruleIndex")
        if isinstance(index, int) and 0 <= index < len(rule_list):
            rule_id = reader.text(rule_list[index].get("id"), f"{field}.ruleIndex")
    if not rule_id:
        raise reader.fail(f"{field}.ruleId", "a result needs a rule id")
    rule = rules.get(rule_id, {})
    message_obj = reader.obj(result.get("message"), f"{field}.message")
    message = reader.text(message_obj.get("text"), f"{field}.message.text")
    props = reader.obj(result.get("properties", {}), f"{field}.properties")
    rule_props = rule.get("properties", {})
    rule_props = rule_props if isinstance(rule_props, Mapping) else {}

    origin = run_origin
    if "origin" in props:
        try:
            origin = Origin(props["origin"])
        except ValueError:
            raise reader.fail(f"{field}.properties.origin", "expected 'policy' or 'scanner'") from None
    severity = _read_severity(reader, result, props, rule_props, field)

    locations = reader.arr(result.get("locations", []), f"{field}.locations")
    location = _read_location(reader, locations[0], f"{field}.locations[0]") if locations else None
    related = reader.arr(result.get("relatedLocations", []), f"{field}.relatedLocations")
    template = _read_location(reader, related[0], f"{field}.relatedLocations[0]") if related else None
    if template is not None and _TEMPLATE_SUFFIX.search(message):
        message = _unescape_message(_TEMPLATE_SUFFIX.sub("", message))

    suppressed_by = None
    for index, item in enumerate(reader.arr(result.get("suppressions", []), f"{field}.suppressions")):
        suppression = reader.obj(item, f"{field}.suppressions[{index}]")
        if suppression.get("status") in (None, "accepted"):
            suppressed_by = (
                reader.opt_text(suppression, "justification", f"{field}.suppressions[{index}]")
                or "suppressed"
            )
            break

    cvss = props.get("cvssScore")
    if cvss is not None and (not isinstance(cvss, (int, float)) or isinstance(cvss, bool)):
        raise reader.fail(f"{field}.properties.cvssScore", "expected a number")
    references = rule_props.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        references = []
    full = rule.get("fullDescription")
    help_uri = rule.get("helpUri")
    return Finding(
        origin=origin,
        rule_id=rule_id,
        severity=severity,
        message=message,
        image=reader.opt_text(props, "image", f"{field}.properties") or "",
        title=reader.opt_text(props, "title", f"{field}.properties") or "",
        package=reader.opt_text(props, "package", f"{field}.properties"),
        installed_version=reader.opt_text(props, "installedVersion", f"{field}.properties"),
        fixed_version=reader.opt_text(props, "fixedVersion", f"{field}.properties"),
        package_type=reader.opt_text(props, "packageType", f"{field}.properties"),
        image_path=reader.opt_text(props, "imagePath", f"{field}.properties"),
        cvss_score=float(cvss) if cvss is not None else None,
        status=reader.opt_text(props, "status", f"{field}.properties"),
        primary_url=help_uri if isinstance(help_uri, str) else None,
        references=tuple(references),
        description=full.get("text", "") if isinstance(full, Mapping) else "",
        location=location,
        template_location=template,
        suppressed_by=suppressed_by,
    )


def _read_severity(
    reader: JsonReader,
    result: Mapping[str, Any],
    props: Mapping[str, Any],
    rule_props: Mapping[str, Any],
    field: str,
) -> Severity:
    label = props.get("severity")
    if label is not None:
        if not isinstance(label, str):
            raise reader.fail(f"{field}.properties.severity", "expected a string")
        try:
            return Severity.parse(label)
        except ValueError as exc:
            raise reader.fail(f"{field}.properties.severity", str(exc)) from None
    score = rule_props.get("security-severity")
    if isinstance(score, str):
        try:
            return _severity_from_score(float(score))
        except ValueError:
            pass
    level = result.get("level", "warning")
    if level not in _SEVERITY_OF_LEVEL:
        raise reader.fail(f"{field}.level", f"expected one of {sorted(_SEVERITY_OF_LEVEL)}")
    return _SEVERITY_OF_LEVEL[level]


__all__ = [
    "FALLBACK_SECURITY_SEVERITY",
    "ToolInfo",
    "build_sarif",
    "default_category",
    "dumps",
    "findings_from_sarif",
    "write_sarif",
]
