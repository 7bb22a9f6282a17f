"""Trivy on a `docker save` tarball: the scanner, its SBOM step and its result cache."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from hardening.atomic import write_bytes_atomic
from hardening.errors import ScannerError
from hardening.findings import ToolInfo, with_tool
from hardening.freshness import with_age
from hardening.scan.interface import Scanner, ScanOptions, ScanResult, ScanTarget
from hardening.scan.trivy.binary import check_version, resolve_binary
from hardening.scan.trivy.db import DbState, check_db, read_db_after_online_scan
from hardening.scan.trivy.process import hard_timeout, run_checked, workdir

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


CACHE_SUBDIR = "hardening-scan-cache"
_CACHE_FORMAT = 2  # 2: keyed by tool name and version

TOOL_NAME = "Trivy"
INFORMATION_URI = "https://trivy.dev"


def trivy_default_cache_dir() -> Path:
    """Trivy's own default cache directory, made explicit so that we know which DB was used.

    (Not the facts cache of the inspector, ``inspect.cache.default_cache_dir``, nor the default of
    `--cache-dir`, ``~/.cache/hardening/trivy``, which commands always pass.)
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trivy"


def tool_info(version: str, db: DbState | None, *, now: datetime | None = None) -> ToolInfo:
    """Trivy as records name it; with ``now``, the DB's age at that moment (the scan's) too."""
    identity = db.identity() if db is not None else None
    if identity is not None and now is not None:
        identity = with_age(identity, now)
    return ToolInfo(TOOL_NAME, version, INFORMATION_URI, identity)


class TrivyScanner(Scanner):
    """Trivy on a `docker save` tarball, offline unless asked otherwise."""

    @property
    def name(self) -> str:
        return "trivy"

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

    def prepare(self, options: ScanOptions) -> ToolInfo:
        version = self.version()
        db: DbState | None = None
        if options.offline or options.skip_db_update:
            db = self._check_db(options.cache_dir or trivy_default_cache_dir())
        return tool_info(version, db)

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
        db = self._check_db(options.cache_dir or trivy_default_cache_dir())
        entry = self._cache_entry(
            options.cache_dir or trivy_default_cache_dir(), target, options, version, db
        )
        return self._from_cache(entry, target, options, version, db) if entry else None

    def scan(self, target: ScanTarget, options: ScanOptions) -> ScanResult:
        version = self.version()
        cache_dir = options.cache_dir or trivy_default_cache_dir()
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
        with workdir() as work:
            report = work / "report.json"
            argv = self.command(target, options, cache_dir)
            run_checked(
                argv,
                work=work,
                stdout=report,
                timeout=hard_timeout(options.timeout),
                what=f"trivy (scanning {target.image})",
                failed=f"while scanning {target.image} ({target.ref})",
                hint=lambda stderr: _failure_hint(stderr, cache_dir),
            )
            raw = report.read_bytes()
            # The report's schema loads when a report is read, not with the package.
            from hardening.scan.trivy.report import parse_report, scrub_report

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
        if db is None:  # Trivy may have downloaded a DB during an online scan
            db = read_db_after_online_scan(cache_dir)
        return ScanResult(
            findings=with_tool(parsed.findings, TOOL_NAME),
            tool=tool_info(version, db, now=datetime.now(UTC)),
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
        run_checked(
            argv,
            work=work,
            stdout=out,
            timeout=hard_timeout(options.timeout),
            what=f"trivy convert (SBOM of {target.image})",
            failed=f"while writing the SBOM of {target.image}",
            hint=lambda _stderr: "run the scan again; the report itself was valid",
        )
        raw = out.read_bytes() if out.is_file() else b""
        from hardening.scan.trivy.report import check_sbom

        check_sbom(raw, f"the SBOM of {target.image}")
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
            "tool": TOOL_NAME,
            "version": version,
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
        from hardening.scan.trivy.report import check_sbom, parse_report

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
                    check_sbom(sbom, str(sbom_entry))
                except (OSError, ScannerError):
                    with workdir() as work:
                        sbom = self._sbom(entry, work, options, target)
                    write_bytes_atomic(sbom_entry, sbom, mode=0o600)
        except ScannerError:
            return None
        if sbom is not None and options.sbom_path is not None:
            write_bytes_atomic(options.sbom_path, sbom)
        # The result stands for a scan now, with this DB: its age is today's.
        return ScanResult(
            findings=with_tool(parsed.findings, TOOL_NAME),
            tool=tool_info(version, db, now=datetime.now(UTC)),
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
