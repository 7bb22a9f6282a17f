"""The boundary with Trivy's JSON report: validated, checked to be about our image, made findings.

The report is decoded and validated in one pass by msgspec into the frozen structs below (about
four times faster than ``json.loads`` plus a pydantic model on a 60 MB report, and no dict of
every field on the way). Only a report that fails that pass is read again with ``json.loads``,
which gives the messages people know for broken JSON (and accepts the few inputs the strict
decoder refuses but Python's reader takes: a byte-order mark, UTF-16, ``NaN``, lone surrogates),
and is then checked field by field in the same order as a good report.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import msgspec

from hardening.errors import ScannerError
from hardening.findings import Finding, Origin, Severity

REPORT_SCHEMA_VERSION = 2

# Where OS package managers keep their database, for findings on OS packages.
_OS_PACKAGE_DB = {
    "debian": "/var/lib/dpkg/status",
    "ubuntu": "/var/lib/dpkg/status",
    "alpine": "/lib/apk/db/installed",
}

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class _Model(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    # Strict on what we read (no text for a number, no number for text); Trivy adds fields
    # between releases and we ignore those.
    pass


class TrivyLayer(_Model, frozen=True):
    DiffID: str | None = None


class TrivyCvss(_Model, frozen=True):
    V3Score: float | None = None


class TrivyDataSource(_Model, frozen=True):
    ID: str | None = None


class TrivyVulnerability(_Model, frozen=True):
    VulnerabilityID: _NonEmpty
    PkgName: _NonEmpty
    InstalledVersion: str
    Severity: str
    VendorIDs: list[str] = []
    PkgPath: str | None = None
    FixedVersion: str | None = None
    Status: str | None = None
    Layer: TrivyLayer | None = None
    SeveritySource: str | None = None
    PrimaryURL: str | None = None
    DataSource: TrivyDataSource | None = None
    Title: str = ""
    Description: str = ""
    CVSS: dict[str, TrivyCvss] = {}
    # a tuple, as findings hold them: no copy per finding
    References: tuple[str, ...] = ()


class TrivySecret(_Model, frozen=True):
    RuleID: _NonEmpty
    Severity: str
    Category: str | None = None
    Title: str = ""
    StartLine: int | None = None
    EndLine: int | None = None
    Layer: TrivyLayer | None = None


class TrivyCause(_Model, frozen=True):
    StartLine: int | None = None
    EndLine: int | None = None


class TrivyMisconfiguration(_Model, frozen=True):
    ID: _NonEmpty
    Severity: str
    Status: str
    Type: str | None = None
    Title: str = ""
    Description: str = ""
    Message: str = ""
    Resolution: str = ""
    PrimaryURL: str | None = None
    # a tuple, as findings hold them: no copy per finding
    References: tuple[str, ...] = ()
    Layer: TrivyLayer | None = None
    CauseMetadata: TrivyCause | None = None


class TrivyPackage(_Model, frozen=True):
    Name: str


class TrivyResult(_Model, frozen=True):
    Target: str
    Class: str
    Type: str | None = None
    Packages: list[TrivyPackage] = []
    Vulnerabilities: list[TrivyVulnerability] = []
    Secrets: list[TrivySecret] = []
    Misconfigurations: list[TrivyMisconfiguration] = []


class TrivyOs(_Model, frozen=True):
    Family: str
    Name: str = ""


class TrivyMetadata(_Model, frozen=True):
    ImageID: str | None = None
    OS: TrivyOs | None = None


class TrivyVersionInfo(_Model, frozen=True):
    Version: str


class TrivyReport(_Model, frozen=True):
    SchemaVersion: int
    ArtifactName: str
    Results: list[TrivyResult]
    ArtifactType: str | None = None
    Trivy: TrivyVersionInfo | None = None
    Metadata: TrivyMetadata | None = None


_DECODER = msgspec.json.Decoder(TrivyReport)


@dataclass(frozen=True)
class ParsedReport:
    findings: tuple[Finding, ...]
    packages: int
    trivy_version: str | None
    os: str | None
    artifact: str = ""


def parse_report(
    raw: bytes,
    *,
    image: str | None,
    artifact_name: str | None,
    image_id: str | None,
    scanners: Sequence[str] = ("vuln",),
) -> ParsedReport:
    """Check that ``raw`` is a Trivy report about our artifact, and turn it into findings.

    ``artifact_name`` is the path Trivy was given (None when re-reading a cached report, which
    was checked when it was made); ``image_id`` must match the report's ImageID. With ``image``
    None, findings are named after the report's own ArtifactName (a report handed to us).
    """
    what = f"Trivy's report for {image}" if image else "the Trivy report"
    try:
        report = _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        # rare: a broken report, or one only Python's reader takes; the slow path says which
        report = _decode_slowly(raw, what)
    schema = report.SchemaVersion
    if schema != REPORT_SCHEMA_VERSION:
        raise _schema_error(what, schema)
    if artifact_name is not None and report.ArtifactName != artifact_name:
        raise ScannerError(
            f"{what} is about {report.ArtifactName!r}, not the tarball we asked for ({artifact_name})",
            hint="something other than our scan produced this report; run the scan again",
        )
    found_id = report.Metadata.ImageID if report.Metadata else None
    if image_id is not None and found_id is not None and found_id != image_id:
        raise ScannerError(
            f"{what} is about image {found_id}, not {image_id}",
            hint="the tarball does not hold the image that was built; run `harden build` and scan again",
        )
    packages = sum(len(result.Packages) for result in report.Results)
    os_name = (
        f"{report.Metadata.OS.Family} {report.Metadata.OS.Name}".strip()
        if (report.Metadata and report.Metadata.OS)
        else None
    )
    if "vuln" in scanners and packages == 0 and os_name is None:
        # A vulnerability scan that saw no OS and no package cannot vouch for anything.
        raise ScannerError(
            f"{what} lists no operating system and no package: the scan saw nothing to check",
            hint="check that the image is a Linux image Trivy supports and that --list-all-pkgs was passed",
        )
    image = image or report.ArtifactName
    findings: list[Finding] = []
    for index, result in enumerate(report.Results):
        where = f"{what}, Results[{index}] ({result.Target})"
        findings.extend(_vulnerability(v, result, image, where) for v in result.Vulnerabilities)
        findings.extend(_secret(s, result, image, where) for s in result.Secrets)
        findings.extend(
            _misconfiguration(m, result, image, where) for m in result.Misconfigurations if m.Status == "FAIL"
        )
    return ParsedReport(
        findings=tuple(findings),
        packages=packages,
        trivy_version=report.Trivy.Version if report.Trivy else None,
        os=os_name,
        artifact=report.ArtifactName,
    )


def _decode_slowly(raw: bytes, what: str) -> TrivyReport:
    """What is wrong with a report the fast decoder refused, in the order a reader checks it.

    Python's reader, then the report's top-level keys, then every field: the same checks as the
    fast path, one at a time, so that the error names the first thing wrong.
    """
    rerun = "run the scan again; if it persists, run trivy by hand with the same flags"
    if not raw.strip():
        raise ScannerError(f"{what} is empty: Trivy exited without writing a report", hint=rerun)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        if _truncated(raw, exc):
            message = f"{what} is truncated: the JSON stops in the middle ({exc})"
        else:
            message = f"{what} is not valid JSON ({exc})"
        raise ScannerError(message, details=raw[:300].decode("utf-8", "replace"), hint=rerun) from None
    if not isinstance(data, dict):
        raise ScannerError(f"{what} is not a Trivy JSON report (a {type(data).__name__}, not an object)")
    schema = data.get("SchemaVersion")
    if schema != REPORT_SCHEMA_VERSION or type(schema) is not int:
        raise _schema_error(what, schema)
    for key in ("ArtifactName", "Results"):
        if key not in data:
            raise ScannerError(
                f"{what} has no {key}: Trivy analysed nothing it could report on",
                hint="check that the tarball is a `docker save` image with an OS or packages Trivy knows",
            )
    try:
        return msgspec.convert(data, TrivyReport, strict=True)
    except msgspec.ValidationError as exc:
        where, problem = _shape_error(str(exc), data)
        raise ScannerError(
            f"{what} does not have the shape Trivy 0.76 writes: {where}: {problem}",
            details=str(exc)[:2000],
            hint="check that the binary is the pinned Trivy",
        ) from None


def _schema_error(what: str, schema: object) -> ScannerError:
    return ScannerError(
        f"{what} is not a Trivy JSON report: SchemaVersion is {schema!r}, expected {REPORT_SCHEMA_VERSION}",
        hint="check that the binary is Trivy 0.76 and that --format json was honoured",
    )


# msgspec says "Expected `str | null`, got `int` - at `$.Results[0].Vulnerabilities[2].PkgPath`";
# people read "Results.0.Vulnerabilities.2.PkgPath: Input should be a valid string".
_MSGSPEC_ERROR = re.compile(r"\A(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?\Z", re.DOTALL)
_MISSING = re.compile(r"\AObject missing required field `(?P<field>[^`]+)`\Z")
_EXPECTED = re.compile(r"\AExpected `(?P<expected>[^`]+)`, got `[^`]+`\Z")
_TOO_SHORT = re.compile(r"\AExpected `str` of length >= (?P<n>\d+)\Z")
_KIND = {"str": "string", "int": "integer", "float": "number", "array": "list", "object": "dictionary"}


def _shape_error(text: str, data: dict[str, Any]) -> tuple[str, str]:
    """``(where, problem)`` of a msgspec validation error, as a dotted path and a sentence."""
    match = _MSGSPEC_ERROR.match(text)
    problem = match["problem"] if match else text
    parts = re.findall(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]", (match["path"] or "") if match else "")
    path = _name_keys([name or index for name, index in parts], data)
    if missing := _MISSING.match(problem):
        return ".".join([*path, missing["field"]]), "Field required"
    if too_short := _TOO_SHORT.match(problem):
        n = int(too_short["n"])
        return ".".join(path) or "$", f"String should have at least {n} character{'s' if n != 1 else ''}"
    if expected := _EXPECTED.match(problem):
        kinds = [k for k in expected["expected"].split(" | ") if k != "null"]
        if len(kinds) == 1 and kinds[0] in _KIND:
            problem = f"Input should be a valid {_KIND[kinds[0]]}"
    return ".".join(path) or "$", problem


def _name_keys(path: list[str], data: dict[str, Any]) -> list[str]:
    """The path with msgspec's ``...`` for a mapping key (CVSS's vendor) replaced by the key.

    The key is the first whose value does not convert to the mapping's value type.
    """
    named: list[str] = []
    node: Any = data
    kind: Any = TrivyReport
    for part in path:
        kind = _strip_optional(kind)
        if part == "..." and isinstance(node, dict) and get_origin(kind) is dict:
            kind = get_args(kind)[1]
            part = next((key for key, value in node.items() if not _converts(value, kind)), "*")
        elif part.isdigit() and isinstance(node, list) and get_origin(kind) is list:
            kind = get_args(kind)[0]
        elif isinstance(node, dict) and isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            kind = get_type_hints(kind).get(part)
        else:
            return [*named, *("*" if p == "..." else p for p in path[len(named) :])]
        named.append(part)
        node = node[int(part)] if isinstance(node, list) else node.get(part)
    return named


def _strip_optional(kind: Any) -> Any:
    args = [arg for arg in get_args(kind) if arg is not type(None)]
    return args[0] if get_origin(kind) in (UnionType, Union) and len(args) == 1 else kind


def _converts(value: Any, kind: Any) -> bool:
    try:
        msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError:
        return False
    return True


def _truncated(raw: bytes, exc: ValueError) -> bool:
    """An object that starts well and breaks off where the input ends: a cut-off write."""
    if not raw.lstrip().startswith(b"{") or not isinstance(exc, json.JSONDecodeError):
        return False
    return exc.msg.startswith("Unterminated") or exc.pos >= len(exc.doc.rstrip())


# Trivy writes a handful of severity words thousands of times.
_SEVERITY_OF: dict[str, Severity] = {}


def _severity(text: str, where: str, rule_id: str) -> Severity:
    try:
        return _SEVERITY_OF[text]
    except KeyError:
        pass
    try:
        severity = _SEVERITY_OF[text] = Severity.parse(text)
    except ValueError as exc:
        raise ScannerError(
            f"{where}, {rule_id}: {exc}", hint="check that the binary is the pinned Trivy"
        ) from None
    return severity


def _diff_id(layer: TrivyLayer | None) -> str | None:
    return layer.DiffID if layer and layer.DiffID else None


def _in_image(path: str) -> str:
    return "/" + path.lstrip("/")


def _cvss_score(vuln: TrivyVulnerability) -> float | None:
    vendor = vuln.SeveritySource or (vuln.DataSource.ID if vuln.DataSource else None)
    for source in ("nvd", vendor):
        if source and source in vuln.CVSS:
            score = vuln.CVSS[source].V3Score
            if score is not None and math.isfinite(score) and score > 0:
                return score
    return None


def _vulnerability(vuln: TrivyVulnerability, result: TrivyResult, image: str, where: str) -> Finding:
    if result.Class == "os-pkgs":
        image_path = _OS_PACKAGE_DB.get(result.Type or "")
    else:
        image_path = _in_image(vuln.PkgPath) if vuln.PkgPath else None
    fix = f"fixed in {vuln.FixedVersion}" if vuln.FixedVersion else "no fixed version"
    message = f"{vuln.VulnerabilityID} in {vuln.PkgName} {vuln.InstalledVersion} ({fix})"
    if vuln.Title:
        message += f": {vuln.Title}"
    properties: list[tuple[str, str]] = [("scanner", "trivy"), ("trivy.class", result.Class)]
    if vuln.DataSource and vuln.DataSource.ID:
        properties.append(("trivy.data_source", vuln.DataSource.ID))
    if vuln.VendorIDs:
        properties.append(("trivy.vendor_ids", ",".join(vuln.VendorIDs)))
    return Finding(
        origin=Origin.SCANNER,
        rule_id=vuln.VulnerabilityID,
        severity=_severity(vuln.Severity, where, vuln.VulnerabilityID),
        message=message,
        image=image,
        title=vuln.Title or vuln.VulnerabilityID,
        package=vuln.PkgName,
        installed_version=vuln.InstalledVersion,
        fixed_version=vuln.FixedVersion or None,
        package_type=result.Type,
        image_path=image_path,
        layer=_diff_id(vuln.Layer),
        cvss_score=_cvss_score(vuln),
        status=vuln.Status,
        primary_url=vuln.PrimaryURL,
        references=vuln.References,
        description=vuln.Description,
        properties=tuple(properties),
    )


def _secret(secret: TrivySecret, result: TrivyResult, image: str, where: str) -> Finding:
    path = _in_image(result.Target)
    line = f":{secret.StartLine}" if secret.StartLine else ""
    title = secret.Title or secret.RuleID
    # Trivy's Match and Code carry the file's text; a finding names the place, never the secret.
    properties: list[tuple[str, str]] = [("scanner", "trivy"), ("trivy.class", result.Class)]
    if secret.Category:
        properties.append(("trivy.category", secret.Category))
    if secret.StartLine:
        properties.append(("trivy.start_line", str(secret.StartLine)))
    return Finding(
        origin=Origin.SCANNER,
        rule_id=secret.RuleID,
        severity=_severity(secret.Severity, where, secret.RuleID),
        message=f"secret in the image: {title} in {path}{line}",
        image=image,
        title=title,
        image_path=path,
        layer=_diff_id(secret.Layer),
        properties=tuple(properties),
    )


def _misconfiguration(misconf: TrivyMisconfiguration, result: TrivyResult, image: str, where: str) -> Finding:
    path = _in_image(result.Target)
    cause = misconf.CauseMetadata
    line = f":{cause.StartLine}" if cause and cause.StartLine else ""
    text = misconf.Message or misconf.Title or misconf.ID
    properties: list[tuple[str, str]] = [("scanner", "trivy"), ("trivy.class", result.Class)]
    if cause and cause.StartLine:
        properties.append(("trivy.start_line", str(cause.StartLine)))
    if misconf.Resolution:
        properties.append(("trivy.resolution", misconf.Resolution))
    return Finding(
        origin=Origin.SCANNER,
        rule_id=misconf.ID,
        severity=_severity(misconf.Severity, where, misconf.ID),
        message=f"{misconf.ID} in {path}{line}: {text}",
        image=image,
        title=misconf.Title or misconf.ID,
        package_type=result.Type,
        image_path=path,
        layer=_diff_id(misconf.Layer),
        status=misconf.Status.lower(),
        primary_url=misconf.PrimaryURL,
        references=misconf.References,
        description=misconf.Description,
        properties=tuple(properties),
    )


def scrub_report(raw: bytes) -> bytes:
    """The report without the file excerpts Trivy attaches to secrets.

    Trivy masks the matched secret but prints neighbouring lines verbatim, which can hold the
    rest of a credential; a report kept on disk must not.
    """
    data: Any = json.loads(raw)
    for result in data.get("Results") or ():
        for secret in result.get("Secrets") or ():
            if isinstance(secret, dict):
                secret.pop("Code", None)
                secret.pop("Match", None)
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def check_sbom(raw: bytes, where: str) -> None:
    try:
        data = json.loads(raw)
    except ValueError:
        raise ScannerError(f"{where} is not valid JSON", hint="run the scan again") from None
    if (
        not isinstance(data, dict)
        or data.get("bomFormat") != "CycloneDX"
        or not isinstance(data.get("components", []), list)
    ):
        raise ScannerError(f"{where} is not a CycloneDX document", hint="run the scan again")
