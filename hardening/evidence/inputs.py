"""What a run recorded about one image, read and checked before anything is pushed.

The evidence describes the run whose gate passed: its build record, scan record, SBOM, complete
findings record and gate decision. Every file is required; a missing or malformed one is bad input
naming the file (exit 2), found before the first push.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardening.errors import Location, ReportInputError
from hardening.findings import Finding
from hardening.report.jsonreport import parse_report
from hardening.run.store import BUILD_FILE, FINDINGS_FILE, GATE_FILE, SBOM_FILE, SCAN_FILE
from hardening.userfile import read_user_text

_RERUN = "run `harden run {image}` again; it writes every record the release evidence is made from"


@dataclass(frozen=True)
class RunRecords:
    image: str
    run_id: str
    directory: Path
    build: Mapping[str, Any]
    scan: Mapping[str, Any]
    gate: Mapping[str, Any]
    findings: tuple[Finding, ...]
    counts: Mapping[str, int]
    sbom: Mapping[str, Any]
    sbom_bytes: bytes  # attached exactly as the scan wrote it

    @property
    def image_id(self) -> str:
        return str(self.build["image_id"])


def _object(path: Path, image: str) -> tuple[dict[str, Any], bytes]:
    """A JSON object of the run, and its bytes (the SBOM is attached exactly as written)."""
    text = read_user_text(
        path,
        error=ReportInputError,
        what=path.name,
        missing="missing from the run",
        hint=_RERUN.format(image=image),
    )
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportInputError(
            f"not valid JSON: {exc.msg} (column {exc.colno})", location=Location(path, exc.lineno)
        ) from None
    if not isinstance(doc, dict):
        raise ReportInputError("expected a JSON object", location=Location(path))
    return doc, text.encode("utf-8")


def _require(doc: Mapping[str, Any], path: Path, image: str, *fields: str) -> None:
    for name in fields:
        value = doc.get(name)
        if value is None or value == "" or value == {}:
            raise ReportInputError(
                "required for the release evidence but missing",
                location=Location(path, None, name),
                hint=_RERUN.format(image=image),
            )


def load_run_records(directory: Path, image: str) -> RunRecords:
    """Read ``directory`` (one image's directory of a run) and check the records agree."""
    build_path, scan_path, gate_path = directory / BUILD_FILE, directory / SCAN_FILE, directory / GATE_FILE
    sbom_path, findings_path = directory / SBOM_FILE, directory / FINDINGS_FILE
    build, _ = _object(build_path, image)
    _require(build, build_path, image, "image_id", "started_at", "finished_at", "input_digests", "labels")
    scan, _ = _object(scan_path, image)
    _require(scan, scan_path, image, "image_id", "trivy_version")
    gate, _ = _object(gate_path, image)
    _require(gate, gate_path, image, "decision")
    if scan["image_id"] != build["image_id"]:
        raise ReportInputError(
            f"scanned image {scan['image_id']} is not the built image {build['image_id']}",
            location=Location(scan_path, None, "image_id"),
            hint=_RERUN.format(image=image),
        )
    sbom, sbom_bytes = _object(sbom_path, image)
    if sbom.get("bomFormat") != "CycloneDX":
        raise ReportInputError("not a CycloneDX SBOM", location=Location(sbom_path, None, "bomFormat"))
    findings_doc, _ = _object(findings_path, image)
    _, findings = parse_report(findings_doc, source=findings_path)
    counts = findings_doc["counts"]
    return RunRecords(
        image=image,
        run_id=directory.parent.name,
        directory=directory,
        build=build,
        scan=scan,
        gate=gate,
        findings=tuple(findings),
        counts=dict(counts),
        sbom=sbom,
        sbom_bytes=sbom_bytes,
    )
