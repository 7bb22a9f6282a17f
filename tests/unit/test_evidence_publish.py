"""VEX, provenance and gate record from run records; publish and verify on an in-memory registry.

The real registry, cosign and Trivy check the same code in tests/registry/test_evidence_real.py;
here a fake registry makes every tampering and failure cheap to stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hardening.errors import Location, PolicyError, RegistryError, ReportInputError
from hardening.evidence.gaterecord import db_age_seconds, gate_record
from hardening.evidence.inputs import RunRecords, load_run_records
from hardening.evidence.keys import SigningKey, generate, load_public_key, load_signing_key
from hardening.evidence.oci import Manifest, sha256_digest
from hardening.evidence.provenance import provenance
from hardening.evidence.publish import Prepared, publish
from hardening.evidence.statements import Attestation, attestation_tag, signature_tag
from hardening.evidence.verify import ImageRef, parse_reference, verify
from hardening.evidence.vex import AFFECTED, NOT_AFFECTED, image_purl, openvex_document, vex_entries
from hardening.findings import Finding, Origin, Severity
from hardening.gate import Suppression, load_suppressions

PASSPHRASE = b"unit-test passphrase, long enough"
SITE = "/opt/venv/lib/python3.11/site-packages"
HOST = "registry.test:5000"
REPOSITORY = "hardening/demo"


def _vuln(rule: str, package: str, version: str, **extra: Any) -> Finding:
    return Finding(
        origin=Origin.SCANNER,
        rule_id=rule,
        severity=Severity.HIGH,
        message=f"{rule} in {package}",
        image="demo",
        package=package,
        installed_version=version,
        fixed_version="99",
        package_type="python-pkg",
        image_path=f"{SITE}/{package}-{version}.dist-info/METADATA",
        properties=(("trivy.vendor_ids", f"GHSA-{rule[-4:]}"),),
        **extra,
    )


SBOM: dict[str, Any] = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "components": [
        {
            "name": name,
            "version": version,
            "purl": f"pkg:pypi/{name}@{version}",
            "properties": [
                {"name": "aquasecurity:trivy:PkgType", "value": "python-pkg"},
                {
                    "name": "aquasecurity:trivy:FilePath",
                    "value": f"{SITE[1:]}/{name}-{version}.dist-info/METADATA",
                },
            ],
        }
        for name, version in (("setuptools", "69.0.0"), ("pip", "23.2"))
    ],
}


def _suppression(rule: str, reason: str, justification: str | None = None) -> Suppression:
    return Suppression(
        id=rule,
        reason=reason,
        expires=date(2099, 12, 31),
        images=("demo",),
        package=None,
        version=None,
        path=None,
        source=Location(Path("policies/suppressions.yaml"), 3, "suppressions[0]"),
        justification=justification,
    )


SUPPRESSIONS = (
    _suppression("CVE-2024-6345", "package_index is not in this image", "vulnerable_code_not_present"),
    _suppression("CVE-2025-47273", "accepted while nothing is downloaded"),
)
FINDINGS = (
    _vuln("CVE-2024-6345", "setuptools", "69.0.0", suppressed_by=SUPPRESSIONS[0].reason),
    _vuln("CVE-2025-47273", "setuptools", "69.0.0", suppressed_by=SUPPRESSIONS[1].reason),
    _vuln("CVE-2023-5752", "pip", "23.2"),
    _vuln("CVE-2025-8869", "pip", "23.2"),
)
BASELINE = frozenset({FINDINGS[2].key})


def _entries(findings: tuple[Finding, ...] = FINDINGS, sbom: dict[str, Any] = SBOM) -> Any:
    return vex_entries(
        "demo",
        findings,
        sbom,
        SUPPRESSIONS,
        BASELINE,
        findings_file=Path("run/demo/findings.json"),
        baseline_file=Path("baselines/demo.json"),
    )


# --- OpenVEX -------------------------------------------------------------------------------------


def test_vex_says_exactly_what_the_gate_decided() -> None:
    entries = {(e.vulnerability, e.status): e for e in _entries()}
    assert set(entries) == {
        ("CVE-2024-6345", NOT_AFFECTED),
        ("CVE-2025-47273", AFFECTED),
        ("CVE-2023-5752", AFFECTED),
    }, "an open finding got a statement, or an accepted one none"
    safe = entries[("CVE-2024-6345", NOT_AFFECTED)]
    assert safe.justification == "vulnerable_code_not_present"
    assert safe.impact_statement == "package_index is not in this image"
    assert safe.purls == ("pkg:pypi/setuptools@69.0.0",) and safe.aliases == ("GHSA-6345",)
    risk = entries[("CVE-2025-47273", AFFECTED)]
    assert risk.action_statement is not None
    assert "until 2099-12-31" in risk.action_statement and "nothing is downloaded" in risk.action_statement
    baselined = entries[("CVE-2023-5752", AFFECTED)].action_statement
    assert baselined is not None and "baselines/demo.json" in baselined


def test_a_suppressed_finding_no_suppression_explains_any_more_is_bad_input() -> None:
    changed = (replace(FINDINGS[0], suppressed_by="a reason nobody wrote"),)
    with pytest.raises(ReportInputError, match="no suppression of the gate policy matches it"):
        _entries(changed)


def test_a_package_missing_from_the_sbom_is_bad_input() -> None:
    with pytest.raises(ReportInputError, match=r"SBOM of the run has no package setuptools 69\.0\.0"):
        _entries(sbom={"bomFormat": "CycloneDX", "components": []})


def test_one_statement_per_vulnerability_and_package_and_affected_wins() -> None:
    twin = replace(FINDINGS[0], suppressed_by=None, image_path="/elsewhere/METADATA")
    entries = _entries((FINDINGS[0], twin), {**SBOM})
    assert [e.status for e in entries] == [NOT_AFFECTED]  # the twin is open: no statement, no merge
    baselined_twin = replace(twin, rule_id="CVE-2023-5752", package="pip", installed_version="23.2")
    merged = _entries((FINDINGS[2], replace(baselined_twin, image_path=FINDINGS[2].image_path)))
    assert len(merged) == 1 and merged[0].status == AFFECTED


def test_the_openvex_document_names_the_image_by_digest() -> None:
    digest = "sha256:" + "0f" * 32
    doc = openvex_document(
        _entries(),
        repository="127.0.0.1:5000/hardening/Demo",
        digest=digest,
        author="a",
        timestamp="t",
        tooling="x",
    )
    assert doc["@context"] == "https://openvex.dev/ns/v0.2.0"
    assert image_purl("127.0.0.1:5000/hardening/Demo", digest) == f"pkg:oci/demo@{digest}"
    products = {s["vulnerability"]["name"]: s["products"] for s in doc["statements"]}
    assert products["CVE-2024-6345"] == [
        {"@id": f"pkg:oci/demo@{digest}", "subcomponents": [{"@id": "pkg:pypi/setuptools@69.0.0"}]}
    ]
    statuses = {s["vulnerability"]["name"]: s for s in doc["statements"]}
    assert "justification" not in statuses["CVE-2025-47273"]
    assert "action_statement" not in statuses["CVE-2024-6345"]


def test_suppressions_accept_an_openvex_justification_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "suppressions.yaml"
    body = (
        "version: 1\nsuppressions:\n  - id: CVE-1\n    reason: a reason long enough\n"
        "    expires: 2099-01-01\n"
    )
    path.write_text(body + "    justification: component_not_present\n")
    (loaded,) = load_suppressions(path)
    assert loaded.justification == "component_not_present"
    path.write_text(body + "    justification: trust me\n")
    with pytest.raises(PolicyError) as info:
        load_suppressions(path)
    assert f"{path}:6: suppressions[0].justification" in str(info.value)
    assert "vulnerable_code_not_present" in info.value.diagnostics()
    path.write_text(body)
    assert load_suppressions(path)[0].justification is None


# --- provenance and gate record ------------------------------------------------------------------

BUILD: dict[str, Any] = {
    "schema_version": 1,
    "image": "demo",
    "image_id": "sha256:" + "11" * 32,
    "candidate_ref": "hardening/demo:candidate",
    "template": "dockerfiles/demo/Dockerfile.j2",
    "dockerfile": "dockerfiles/demo/Dockerfile",
    "variables": {"uid": 10001},
    "labels": {
        "org.opencontainers.image.revision": "c0ffee" * 6 + "c0ff",
        "org.opencontainers.image.source": "https://example.invalid/repo",
        "org.hardening.builder-version": "0.1.0",
        "org.hardening.base.suite": "bookworm",
        "org.hardening.base.mirror": "http://mirror.invalid/debian",
    },
    "base": {"ref": "hardening/debian:bookworm", "id": "sha256:" + "22" * 32},
    "started_at": "2026-11-30T10:00:00Z",
    "finished_at": "2026-11-30T10:01:00Z",
    "input_digests": {
        "dockerfiles/demo/Dockerfile.j2": "33" * 32,
        "dockerfiles/demo/Dockerfile": "44" * 32,
        "dockerfiles/demo/requirements.lock": "55" * 32,
    },
}
SCAN = {
    "image_id": BUILD["image_id"],
    "trivy_version": "0.76.0",
    "db_updated_at": "2026-11-29T10:00:00Z",
    "scanned_at": "2026-11-30T10:02:00Z",
    "scanner": "trivy",
    "offline": True,
}
GATE = {"passed": True, "decision": "pass", "reasons": [], "counted": 0, "suppressed": 2, "baselined": 1}


def test_provenance_names_every_input_and_the_build_times() -> None:
    doc = provenance(BUILD, run_id="run-1", fallback_version="9.9")
    deps = {d["name"]: d for d in doc["buildDefinition"]["resolvedDependencies"]}
    assert deps["source"] == {
        "name": "source",
        "uri": "git+https://example.invalid/repo",
        "digest": {"gitCommit": BUILD["labels"]["org.opencontainers.image.revision"]},
    }
    assert deps["template"]["digest"] == {"sha256": "33" * 32}
    assert deps["dockerfile"]["digest"] == {"sha256": "44" * 32}
    assert deps["wheelhouse-lock"]["uri"].endswith("#dockerfiles/demo/requirements.lock")
    assert deps["base-image"]["digest"] == {"sha256": "22" * 32}
    assert deps["base-image"]["annotations"] == {
        "debian_suite": "bookworm",
        "debian_mirror": "http://mirror.invalid/debian",
    }
    assert doc["runDetails"]["builder"]["version"] == {"harden": "0.1.0"}
    assert doc["runDetails"]["metadata"] == {
        "invocationId": "run-1",
        "startedOn": "2026-11-30T10:00:00Z",
        "finishedOn": "2026-11-30T10:01:00Z",
    }
    assert doc["buildDefinition"]["externalParameters"]["variables"] == {"uid": 10001}


def test_the_gate_record_carries_the_db_fields_and_age() -> None:
    digest = "sha256:" + "66" * 32
    record = gate_record(
        gate=GATE,
        scan={**SCAN, "db_digest": "sha256:77"},
        counts={"total": 4},
        image="demo",
        image_id=BUILD["image_id"],
        repository=f"{HOST}/{REPOSITORY}",
        digest=digest,
        run_id="run-1",
    )
    assert record["image"]["digest"] == digest and record["passed"] is True
    assert record["database"] == {
        "updated_at": "2026-11-29T10:00:00Z",
        "digest": "sha256:77",
        "age_seconds_at_scan": 86520,
    }
    assert db_age_seconds({"db_updated_at": "garbage", "scanned_at": "x"}) is None


# --- run records -----------------------------------------------------------------------------------


def _write_run(directory: Path, *, findings: tuple[Finding, ...] = FINDINGS) -> Path:
    from hardening.report.jsonreport import build_report

    image_dir = directory / "run-1" / "demo"
    image_dir.mkdir(parents=True)
    (image_dir / "build.json").write_text(json.dumps(BUILD))
    (image_dir / "scan.json").write_text(json.dumps(SCAN))
    (image_dir / "gate.json").write_text(json.dumps(GATE))
    (image_dir / "sbom.cdx.json").write_text(json.dumps(SBOM))
    (image_dir / "findings.json").write_text(json.dumps(build_report("demo", list(findings))))
    return image_dir


def test_run_records_are_read_and_checked(tmp_path: Path) -> None:
    image_dir = _write_run(tmp_path)
    records = load_run_records(image_dir, "demo")
    assert records.run_id == "run-1" and records.image_id == BUILD["image_id"]
    assert len(records.findings) == 4 and records.sbom_bytes == (image_dir / "sbom.cdx.json").read_bytes()

    (image_dir / "sbom.cdx.json").unlink()
    with pytest.raises(ReportInputError, match="missing from the run") as info:
        load_run_records(image_dir, "demo")
    assert "harden run demo" in info.value.diagnostics()


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        ("build.json", lambda d: d.pop("started_at"), "build.json: started_at: required"),
        ("scan.json", lambda d: d.update(image_id="sha256:other"), "is not the built image"),
        ("sbom.cdx.json", lambda d: d.update(bomFormat="SPDX"), "not a CycloneDX SBOM"),
        ("gate.json", lambda d: d.pop("decision"), "gate.json: decision: required"),
    ],
)
def test_run_records_that_disagree_are_bad_input(
    tmp_path: Path, file: str, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    image_dir = _write_run(tmp_path)
    doc = json.loads((image_dir / file).read_text())
    change(doc)
    (image_dir / file).write_text(json.dumps(doc))
    with pytest.raises(ReportInputError) as info:
        load_run_records(image_dir, "demo")
    assert message in str(info.value)


# --- publish and verify on a fake registry --------------------------------------------------------


class FakeRegistry:
    """Manifests by tag and digest, blobs by digest; ``fail`` makes chosen writes fail."""

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, Manifest] = {}  # by digest
        self.tags: dict[str, str] = {}  # tag → digest
        self.fail: Callable[[str, str], bool] = lambda _operation, _name: False
        self.deleted: list[str] = []

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        digest = reference if reference.startswith("sha256:") else self.tags.get(reference)
        return self.manifests.get(digest or "")

    def blob(self, repository: str, digest: str) -> bytes | None:
        return self.blobs.get(digest)

    def put_blob(self, repository: str, data: bytes) -> str:
        if self.fail("blob", sha256_digest(data)):
            raise RegistryError("upload blob: the registry answered 503 (tried 3 times)")
        self.blobs[sha256_digest(data)] = data
        return sha256_digest(data)

    def put_manifest(self, repository: str, tag: str, data: bytes, media_type: str) -> str:
        if self.fail("manifest", tag):
            raise RegistryError(f"PUT manifest {tag}: the registry answered 500")
        digest = sha256_digest(data)
        self.manifests[digest] = Manifest(data, digest, media_type)
        self.tags[tag] = digest
        return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        self.deleted.append(digest)
        self.manifests.pop(digest, None)
        self.tags = {t: d for t, d in self.tags.items() if d != digest}


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningKey, Path]:
    pair = generate(tmp_path_factory.mktemp("keys") / "k", PASSPHRASE)
    return load_signing_key(pair.private, PASSPHRASE), pair.public


def _prepared(gate: dict[str, Any] | None = None) -> Prepared:
    records = RunRecords(
        image="demo",
        run_id="run-1",
        directory=Path("run-1/demo"),
        build=BUILD,
        scan=SCAN,
        gate=gate or GATE,
        findings=FINDINGS,
        counts={"total": 4},
        sbom=SBOM,
        sbom_bytes=json.dumps(SBOM).encode(),
    )
    return Prepared(records, _entries(), "https://example.invalid/repo")


def _pushed(registry: FakeRegistry, tag: str = "1", content: bytes = b'{"schemaVersion": 2}') -> str:
    """An image manifest in the registry, as `docker push` leaves it."""
    return registry.put_manifest(
        REPOSITORY, tag, content, "application/vnd.docker.distribution.manifest.v2+json"
    )


def _ref(digest: str) -> ImageRef:
    return ImageRef(HOST, REPOSITORY, None, digest)


def test_published_evidence_verifies(signing: tuple[SigningKey, Path]) -> None:
    key, public = signing
    registry = FakeRegistry()
    digest = _pushed(registry)
    published = publish(registry, REPOSITORY, digest, _prepared(), key)
    assert published.attestations == tuple(Attestation)
    assert set(registry.tags) == {"1", signature_tag(digest), attestation_tag(digest)}
    result = verify(registry, ImageRef(HOST, REPOSITORY, "1", None), load_public_key(public))
    assert result.ok, result.failures
    assert result.digest == digest
    assert [c.subject for c in result.checks] == [
        "image",
        "signature",
        "sbom",
        "provenance",
        "openvex",
        "gate",
    ]
    gate = next(c for c in result.checks if c.subject == "gate")
    assert gate.detail.startswith("pass: 0 counted, 2 suppressed, 1 baselined; DB updated 2026-11-29")
    assert "24 h old at scan" in gate.detail


def test_no_evidence_is_attached_to_a_digest_the_registry_does_not_have(
    signing: tuple[SigningKey, Path],
) -> None:
    registry = FakeRegistry()
    with pytest.raises(RegistryError, match="is not in the registry; no evidence was attached"):
        publish(registry, REPOSITORY, "sha256:" + "99" * 32, _prepared(), signing[0])
    assert registry.tags == {} and registry.blobs == {}


def test_a_failing_blob_upload_stores_no_evidence_manifest(signing: tuple[SigningKey, Path]) -> None:
    registry = FakeRegistry()
    digest = _pushed(registry)
    registry.fail = lambda operation, _name: operation == "blob"
    with pytest.raises(RegistryError, match="503"):
        publish(registry, REPOSITORY, digest, _prepared(), signing[0])
    assert set(registry.tags) == {"1"}


def test_a_failing_signature_push_takes_the_attestations_back(signing: tuple[SigningKey, Path]) -> None:
    registry = FakeRegistry()
    digest = _pushed(registry)
    registry.fail = lambda operation, name: operation == "manifest" and name.endswith(".sig")
    with pytest.raises(RegistryError) as info:
        publish(registry, REPOSITORY, digest, _prepared(), signing[0])
    assert "was stored and then deleted again" in str(info.value.details)
    assert set(registry.tags) == {"1"} and len(registry.deleted) == 1


def _published(
    signing: tuple[SigningKey, Path], gate: dict[str, Any] | None = None
) -> tuple[FakeRegistry, str]:
    registry = FakeRegistry()
    digest = _pushed(registry)
    publish(registry, REPOSITORY, digest, _prepared(gate), signing[0])
    return registry, digest


def _failures(registry: FakeRegistry, digest: str, public: Path) -> dict[str, str]:
    result = verify(registry, _ref(digest), load_public_key(public))
    assert not result.ok
    return {check.subject: check.detail for check in result.failures}


def test_verify_with_another_key_fails_every_part(signing: tuple[SigningKey, Path], tmp_path: Path) -> None:
    registry, digest = _published(signing)
    other = generate(tmp_path / "other", PASSPHRASE).public
    failures = _failures(registry, digest, other)
    assert set(failures) == {"signature", "sbom", "provenance", "openvex", "gate"}
    assert all("does not verify with key" in detail for detail in failures.values())


def test_verify_rejects_attestations_about_another_digest(signing: tuple[SigningKey, Path]) -> None:
    registry, digest = _published(signing)
    other = _pushed(registry, "2", b'{"schemaVersion": 2, "other": true}')
    publish(registry, REPOSITORY, other, _prepared(), signing[0])
    registry.tags[attestation_tag(digest)] = registry.tags[attestation_tag(other)]
    failures = _failures(registry, digest, signing[1])
    assert set(failures) == {"sbom", "provenance", "openvex", "gate"}
    assert all(f"the statement is about {other}, not {digest}" in d for d in failures.values())


def test_verify_rejects_a_signature_whose_blob_is_gone(signing: tuple[SigningKey, Path]) -> None:
    registry, digest = _published(signing)
    sig = registry.manifest(REPOSITORY, signature_tag(digest))
    assert sig is not None
    (layer,) = json.loads(sig.data)["layers"]
    del registry.blobs[layer["digest"]]
    failures = _failures(registry, digest, signing[1])
    assert list(failures) == ["signature"]
    assert f"blob {layer['digest']} is missing from the registry" in failures["signature"]


def test_verify_rejects_a_changed_blob(signing: tuple[SigningKey, Path]) -> None:
    registry, digest = _published(signing)
    att = registry.manifest(REPOSITORY, attestation_tag(digest))
    assert att is not None
    layer = json.loads(att.data)["layers"][0]
    registry.blobs[layer["digest"]] = b"{}"
    assert "does not match its digest" in _failures(registry, digest, signing[1])["sbom"]


def test_verify_requires_every_kind_and_a_passing_gate(signing: tuple[SigningKey, Path]) -> None:
    failed = {**GATE, "passed": False, "decision": "fail", "reasons": ["1 vulnerabilities at or above high"]}
    registry, digest = _published(signing, failed)
    assert _failures(registry, digest, signing[1])["gate"].startswith("the gate did not pass: fail")

    registry, digest = _published(signing)
    att = registry.manifest(REPOSITORY, attestation_tag(digest))
    assert att is not None
    doc = json.loads(att.data)
    doc["layers"] = [
        layer for layer in doc["layers"] if "openvex" not in layer["annotations"]["predicateType"]
    ]
    registry.put_manifest(REPOSITORY, attestation_tag(digest), json.dumps(doc).encode(), att.media_type)
    assert _failures(registry, digest, signing[1]) == {
        "openvex": f"no https://openvex.dev/ns attestation for {digest}"
    }


def test_verify_of_a_missing_image_or_missing_evidence(signing: tuple[SigningKey, Path]) -> None:
    registry = FakeRegistry()
    result = verify(registry, ImageRef(HOST, REPOSITORY, "nope", None), load_public_key(signing[1]))
    assert not result.ok and result.failures[0].subject == "image"
    digest = _pushed(registry)
    failures = _failures(registry, digest, signing[1])
    assert failures["signature"].startswith("no signature: tag")
    assert failures["attestations"].startswith("no attestations: tag")


@pytest.mark.parametrize(
    "text",
    ["python-secure:3.11", "127.0.0.1:5000", "127.0.0.1:5000/UPPER/case", "registry.test/a@sha256:12", ""],
)
def test_references_must_name_a_registry_and_be_well_formed(text: str) -> None:
    from hardening.errors import UsageError

    with pytest.raises(UsageError):
        parse_reference(text)


def test_references_parse() -> None:
    digest = "sha256:" + "ab" * 32
    ref = parse_reference(f"127.0.0.1:5000/hardening/python-secure:3.11@{digest}")
    assert ref == ImageRef("127.0.0.1:5000", "hardening/python-secure", "3.11", digest)
    assert str(ref) == f"127.0.0.1:5000/hardening/python-secure:3.11@{digest}"
    assert parse_reference("localhost/a").host == "localhost"


def test_releasing_the_same_run_again_stores_identical_evidence(signing: tuple[SigningKey, Path]) -> None:
    registry, digest = _published(signing)
    before = dict(registry.tags)
    publish(registry, REPOSITORY, digest, _prepared(), signing[0])
    assert registry.tags == before
