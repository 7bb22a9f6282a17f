"""Trivy, the only scanner that runs an external binary: one module per job.

``pin`` the version we accept, ``binary`` finding and checking it, ``process`` running it,
``db`` the vulnerability DB it reads, ``report`` its JSON report turned into findings, and
``scanner`` the ``Scanner`` implementation with its SBOM step and result cache.
"""

from typing import TYPE_CHECKING, Any

from hardening.scan.trivy.binary import check_version, resolve_binary, version_supported
from hardening.scan.trivy.db import DB_SCHEMA_VERSION, DbState, check_db, read_db_updated_at
from hardening.scan.trivy.pin import PINNED, SUPPORTED_SERIES
from hardening.scan.trivy.scanner import CACHE_SUBDIR, KNOWN_SCANNERS, OFFLINE_FLAGS, TrivyScanner

if TYPE_CHECKING:
    from hardening.scan.trivy.report import REPORT_SCHEMA_VERSION, ParsedReport, parse_report, scrub_report

__all__ = [
    "CACHE_SUBDIR",
    "DB_SCHEMA_VERSION",
    "KNOWN_SCANNERS",
    "OFFLINE_FLAGS",
    "PINNED",
    "REPORT_SCHEMA_VERSION",
    "SUPPORTED_SERIES",
    "DbState",
    "ParsedReport",
    "TrivyScanner",
    "check_db",
    "check_version",
    "parse_report",
    "read_db_updated_at",
    "resolve_binary",
    "scrub_report",
    "version_supported",
]

# ``report`` (Trivy's JSON schema as msgspec structs and its parser) loads when a report is first
# read, not with the package: `harden --help` and option parsing do not pay for defining it.
_REPORT_NAMES = frozenset({"REPORT_SCHEMA_VERSION", "ParsedReport", "parse_report", "scrub_report"})


def __getattr__(name: str) -> Any:
    if name in _REPORT_NAMES:
        from hardening.scan.trivy import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
