"""Release evidence on a real registry, checked by real peers.

`harden run` builds two tiny images from the project's base in a throwaway repository; `harden
release` pushes them to Debian's docker-registry and attaches a signature and four attestations
to each digest. Then:

- `harden verify` and cosign 2.5.0 (Debian's build, `scripts/install-cosign`) verify them;
- real Trivy, scanning the pushed image from the registry, consumes our OpenVEX and drops exactly
  the findings it marks not_affected;
- bad keys, tampered evidence and a registry failing between the image push and the evidence
  push each fail with their exit code, and never leave evidence that verifies as complete.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hardening.db.build import build_db
from hardening.engine.client import Engine
from hardening.evidence.oci import OrasRegistry
from hardening.evidence.statements import Attestation, attestation_tag, signature_tag
from hardening.scan.trivy import OFFLINE_FLAGS
from tests.conftest import REPO_ROOT, ReleaseKey
from tests.registry.faulty import FaultyProxy
from tests.registry.server import RegistryServer, start_registry
from tests.registry.test_release_real import PASSING_TEMPLATE, ThrowawayRepo, _output

pytestmark = [pytest.mark.registry, pytest.mark.docker, pytest.mark.trivy]

COSIGN = REPO_ROOT / ".tools" / "cosign" / "cosign"
INSTALL_COSIGN = REPO_ROOT / "scripts" / "install-cosign"
TRIVY = Path(sys.executable).parent / "trivy"
IMAGES = ("vexy", "plain")
TAGS = ("1",)
SITE = "/opt/venv/lib/python3.11/site-packages"
META = "Metadata-Version: 2.1\\nName: %s\\nVersion: %s\\n"

# Package records only, no code: the scanner reads dist-info METADATA, which gives findings with
# known advisories (advisories/): setuptools 69.0.0 → CVE-2024-6345, CVE-2025-47273;
# pip 23.2 → CVE-2023-5752, CVE-2025-8869.
VEXY_TEMPLATE = f"""\
FROM {{{{ base_image }}}}
WORKDIR {SITE}
RUN mkdir setuptools-69.0.0.dist-info pip-23.2.dist-info \\
 && printf '{META}' setuptools 69.0.0 > setuptools-69.0.0.dist-info/METADATA \\
 && printf '{META}' pip 23.2 > pip-23.2.dist-info/METADATA
WORKDIR /
USER {{{{ uid }}}}:{{{{ uid }}}}
HEALTHCHECK --interval=30s --timeout=3s CMD ["test", "-d", "{SITE}"]
CMD ["sleep", "infinity"]
"""

GATE = """\
version: 1
fail_on: high
only_fixable: true
suppressions: [policies/suppressions.yaml]
baseline_dir: baselines
"""
SUPPRESSIONS = """\
version: 1
suppressions:
  - id: CVE-2024-6345
    images: [vexy]
    package: setuptools
    version: 69.0.0
    justification: vulnerable_code_not_present
    reason: only setuptools' package record is in this image; package_index is not
    expires: 2099-12-31
  - id: CVE-2025-47273
    images: [vexy]
    package: setuptools
    reason: accepted while the image never downloads packages at run time
    expires: 2099-12-31
"""
BASELINED = ["scanner", "CVE-2023-5752", "pip", "23.2", f"{SITE}/pip-23.2.dist-info/METADATA"]
NOT_AFFECTED = ("CVE-2024-6345", "setuptools")


def _catalog(token: str) -> str:
    head = """\
[project]
output_dir = "out"
source = "https://example.invalid/hardening-evidence-test"
default_base = "bookworm"

[base.bookworm]
repository = "hardening/debian"
tag = "bookworm"
suite = "bookworm"
"""
    tables = [
        f"""
[[image]]
name = "{name}"
template = "dockerfiles/{name}/Dockerfile.j2"
repository = "hardening-test/{name}-{token}"
tags = ["1"]
version = "1.0.0"
policies = ["policies/evidence.yaml"]

[image.variables]
greeting = "hello-{name}"
uid = 10001
"""
        for name in IMAGES
    ]
    return head + "".join(tables)


def _policy() -> str:
    """The default policy without package floors: the test image's old setuptools and pip are the
    point, and only the scanner should report them."""
    import yaml

    policy = yaml.safe_load((REPO_ROOT / "policies" / "default.yaml").read_text())
    del policy["checks"]["package_floors"]
    return yaml.safe_dump(policy)


@dataclass
class Built:
    repo: ThrowawayRepo
    run_dir: Path
    key: ReleaseKey


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cosign() -> Path:
    """The pinned cosign; scripts/install-cosign is a no-op when it is already in place."""
    result = subprocess.run([str(INSTALL_COSIGN)], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"scripts/install-cosign failed:\n{result.stdout}\n{result.stderr}"
    return COSIGN


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, engine: Engine, base_image: str, release_key: ReleaseKey
) -> Iterator[Built]:
    """Both images built, checked, scanned and passed by the gate, once for the module."""
    root = tmp_path_factory.mktemp("evidence") / "repo"
    cache = tmp_path_factory.mktemp("trivy-cache")
    build_db([REPO_ROOT / "advisories"], cache)
    (root / "policies").mkdir(parents=True)
    (root / "policies" / "evidence.yaml").write_text(_policy())
    (root / "policies" / "gate.yaml").write_text(GATE)
    (root / "policies" / "suppressions.yaml").write_text(SUPPRESSIONS)
    (root / "baselines").mkdir()
    (root / "baselines" / "vexy.json").write_text(
        json.dumps({"schema_version": 1, "image": "vexy", "accepted": [BASELINED]})
    )
    token = uuid.uuid4().hex[:10]
    (root / "hardening.toml").write_text(_catalog(token))
    for name, template in (("vexy", VEXY_TEMPLATE), ("plain", PASSING_TEMPLATE)):
        path = root / "dockerfiles" / name / "Dockerfile.j2"
        path.parent.mkdir(parents=True)
        path.write_text(template)
    repo = ThrowawayRepo(root, cache, token, key=release_key, images=IMAGES)
    repo.git("init", "--quiet")
    try:
        rendered = repo.harden("render", timeout=120)
        assert rendered.returncode == 0, _output(rendered)
        repo.git("add", "-A")
        repo.git("commit", "--quiet", "--message", "evidence test repository")
        ran, run_dir = repo.run(*IMAGES)
        assert ran.returncode == 0, _output(ran)
        gate = _json(run_dir / "vexy" / "gate.json")
        assert (gate["passed"], gate["suppressed"], gate["baselined"]) == (True, 2, 1), gate
        # the complete record marks the finding the baseline accepts, and does not count it open
        report = _json(run_dir / "vexy" / "findings.json")
        marked = [f for f in report["findings"] if f.get("baselined")]
        assert [[f["rule_id"], f["package"], f["installed_version"]] for f in marked] == [BASELINED[1:4]]
        assert report["counts"]["baselined"] == 1
        yield Built(repo, run_dir, release_key)
    finally:
        for ref in repo.all_refs():
            engine.remove_image(ref, missing_ok=True)


@pytest.fixture(scope="module")
def released(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry both images were released to, shared by the tests that only read it."""
    server = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        result = built.repo.release(server.address, *IMAGES)
        assert result.returncode == 0, _output(result)
        yield server
    finally:
        server.stop()


def _release_record(built: Built, image: str) -> dict[str, Any]:
    record: dict[str, Any] = _json(built.run_dir / image / "release.json")
    return record


def _ref(registry: str, built: Built, image: str) -> str:
    digest = _release_record(built, image)["pushed"][0]["digest"]
    return f"{registry}/{built.repo.repository(image)}@{digest}"


def _status(stdout: str, subject: str) -> str | None:
    """The status `harden verify` printed for one check ("ok" or "FAILED")."""
    found = re.search(rf"^  (ok|FAILED) +{re.escape(subject)} ", stdout, re.MULTILINE)
    return found.group(1) if found else None


def _cosign(cosign: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSIGN_")}
    env["HOME"] = str(Path(os.environ.get("TMPDIR", "/tmp")))  # no user cosign config or cache
    return subprocess.run(
        [str(cosign), *args], capture_output=True, text=True, timeout=300, env=env, check=False
    )


def _cosign_verify(cosign: Path, key: Path, ref: str) -> subprocess.CompletedProcess[str]:
    return _cosign(
        cosign, "verify", "--key", str(key), "--insecure-ignore-tlog", "--allow-http-registry", ref
    )


def _cosign_attestation(cosign: Path, key: Path, ref: str, kind: str) -> subprocess.CompletedProcess[str]:
    return _cosign(
        cosign,
        "verify-attestation",
        "--key",
        str(key),
        "--insecure-ignore-tlog",
        "--allow-http-registry",
        "--type",
        kind,
        ref,
    )


def _verify(built: Built, ref: str, key: Path | None = None) -> subprocess.CompletedProcess[str]:
    return built.repo.harden("verify", ref, "--key", str(key or built.key.public), timeout=300)


def _statements(output: str) -> list[dict[str, Any]]:
    """The in-toto statements in `cosign verify-attestation`'s output (one envelope per line)."""
    found = []
    for line in output.splitlines():
        if line.startswith("{"):
            envelope = json.loads(line)
            found.append(json.loads(base64.b64decode(envelope["payload"])))
    return found


# --- what a consumer sees ----------------------------------------------------------------------------


def test_release_signs_and_attests_every_digest_and_both_verifiers_accept_it(
    built: Built, released: RegistryServer, cosign: Path
) -> None:
    for image in IMAGES:
        record = _release_record(built, image)
        digest = record["pushed"][0]["digest"]
        repository = built.repo.repository(image)
        assert record["key"].startswith("sha256:")
        (evidence,) = record["evidence"]
        assert evidence["digest"] == digest
        tags = released.client.tags(repository)
        assert tags == sorted([*TAGS, signature_tag(digest), attestation_tag(digest)])

        ref = f"{released.address}/{repository}@{digest}"
        ours = _verify(built, ref)
        assert ours.returncode == 0, _output(ours)
        for subject in ("image", "signature", *(kind.value for kind in Attestation)):
            assert _status(ours.stdout, subject) == "ok", ours.stdout
        assert "verified:" in ours.stdout
        by_tag = _verify(built, f"{released.address}/{repository}:1")
        assert by_tag.returncode == 0 and digest in by_tag.stdout, _output(by_tag)

        peer = _cosign_verify(cosign, built.key.public, ref)
        assert peer.returncode == 0, _output(peer)
        (claim,) = json.loads(peer.stdout)
        assert claim["critical"]["image"]["docker-manifest-digest"] == digest

        for kind in Attestation:
            attested = _cosign_attestation(cosign, built.key.public, ref, kind.cosign_type)
            assert attested.returncode == 0, f"{kind}: {_output(attested)}"
            (statement,) = _statements(attested.stdout)
            assert statement["predicateType"] == kind.predicate_type
            assert statement["subject"][0]["digest"]["sha256"] == digest.removeprefix("sha256:")


def test_the_attestations_say_what_the_run_recorded(
    built: Built, released: RegistryServer, cosign: Path
) -> None:
    ref = _ref(released.address, built, "vexy")
    digest = ref.rsplit("@", 1)[1]
    predicates: dict[Attestation, dict[str, Any]] = {}
    for kind in Attestation:
        attested = _cosign_attestation(cosign, built.key.public, ref, kind.cosign_type)
        (statement,) = _statements(attested.stdout)
        predicates[kind] = statement["predicate"]
    run = built.run_dir / "vexy"
    assert predicates[Attestation.SBOM] == _json(run / "sbom.cdx.json")

    build = _json(run / "build.json")
    provenance = predicates[Attestation.PROVENANCE]
    assert provenance["runDetails"]["metadata"]["startedOn"] == build["started_at"]
    assert provenance["runDetails"]["metadata"]["finishedOn"] == build["finished_at"]
    assert (
        provenance["runDetails"]["builder"]["version"]["harden"]
        == build["labels"]["org.hardening.builder-version"]
    )
    dependencies = {d["name"]: d for d in provenance["buildDefinition"]["resolvedDependencies"]}
    revision = build["labels"]["org.opencontainers.image.revision"]
    assert dependencies["source"]["digest"] == {"gitCommit": revision}
    template = (built.repo.root / "dockerfiles/vexy/Dockerfile.j2").read_bytes()
    rendered = (built.repo.root / "dockerfiles/vexy/Dockerfile").read_bytes()
    import hashlib

    assert dependencies["template"]["digest"]["sha256"] == hashlib.sha256(template).hexdigest()
    assert dependencies["dockerfile"]["digest"]["sha256"] == hashlib.sha256(rendered).hexdigest()
    assert dependencies["base-image"]["digest"]["sha256"] == build["base"]["id"].removeprefix("sha256:")
    assert dependencies["base-image"]["annotations"]["debian_suite"] == "bookworm"
    assert dependencies["base-image"]["annotations"]["debian_mirror"].startswith("http")
    assert provenance["buildDefinition"]["externalParameters"]["variables"] == build["variables"]

    gate = predicates[Attestation.GATE]
    assert gate["image"]["digest"] == digest and gate["passed"] is True and gate["decision"] == "pass"
    assert (gate["counts"]["suppressed"], gate["counts"]["baselined"]) == (2, 1)
    assert gate["database"]["updated_at"] == _json(run / "scan.json")["db_updated_at"]
    assert isinstance(gate["database"]["age_seconds_at_scan"], int)

    vex = predicates[Attestation.VEX]
    statements = {(s["vulnerability"]["name"], s["status"]): s for s in vex["statements"]}
    assert set(statements) == {
        ("CVE-2024-6345", "not_affected"),
        ("CVE-2025-47273", "affected"),
        ("CVE-2023-5752", "affected"),
    }
    not_affected = statements[("CVE-2024-6345", "not_affected")]
    assert not_affected["justification"] == "vulnerable_code_not_present"
    assert not_affected["impact_statement"].startswith("only setuptools' package record")
    assert not_affected["products"] == [
        {"@id": f"pkg:oci/{built.repo.repository('vexy').rsplit('/', 1)[1]}@{digest}",
         "subcomponents": [{"@id": "pkg:pypi/setuptools@69.0.0"}]}
    ]  # fmt: skip
    accepted = statements[("CVE-2025-47273", "affected")]["action_statement"]
    assert "2099-12-31" in accepted and "never downloads packages" in accepted
    assert "baseline" in statements[("CVE-2023-5752", "affected")]["action_statement"]


def _trivy(cache: Path, ref: str, *extra: str) -> set[tuple[str, str]]:
    """(vulnerability, package) Trivy finds in the image pulled from the registry."""
    argv = [str(TRIVY), "image", "--image-src", "remote", "--cache-dir", str(cache), *OFFLINE_FLAGS,
            "--scanners", "vuln", "--format", "json", "--quiet", *extra, ref]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, _output(result)
    report = json.loads(result.stdout)
    return {
        (vuln["VulnerabilityID"], vuln["PkgName"])
        for entry in report.get("Results") or []
        for vuln in entry.get("Vulnerabilities") or []
    }


def test_trivy_drops_exactly_the_findings_our_vex_marks_not_affected(
    built: Built, released: RegistryServer, cosign: Path, tmp_path: Path
) -> None:
    ref = _ref(released.address, built, "vexy")
    attested = _cosign_attestation(cosign, built.key.public, ref, "openvex")
    assert attested.returncode == 0, _output(attested)
    (statement,) = _statements(attested.stdout)
    vex_file = tmp_path / "vex.json"
    vex_file.write_text(json.dumps(statement["predicate"]))
    marked = {
        (s["vulnerability"]["name"], sub["@id"].split("/")[-1].split("@")[0])
        for s in statement["predicate"]["statements"]
        if s["status"] == "not_affected"
        for product in s["products"]
        for sub in product["subcomponents"]
    }
    assert marked == {NOT_AFFECTED}

    without = _trivy(built.repo.cache_dir, ref)
    assert {
        ("CVE-2024-6345", "setuptools"),
        ("CVE-2025-47273", "setuptools"),
        ("CVE-2023-5752", "pip"),
        ("CVE-2025-8869", "pip"),
    } <= without
    with_file = _trivy(built.repo.cache_dir, ref, "--vex", str(vex_file))
    assert without - with_file == marked, "Trivy dropped something else, or not what we marked"
    assert with_file <= without
    # Trivy finds the same document attached to the image on its own (the legacy .att tag).
    with_attestation = _trivy(built.repo.cache_dir, ref, "--vex", "oci")
    assert with_attestation == with_file


def test_verify_with_a_key_that_did_not_sign_fails_naming_every_part(
    built: Built, released: RegistryServer, tmp_path: Path
) -> None:
    from hardening.evidence.keys import generate

    other = generate(tmp_path / "other", b"another passphrase entirely")
    ref = _ref(released.address, built, "plain")
    result = _verify(built, ref, other.public)
    assert result.returncode == 1, _output(result)
    assert "error: not verified" in result.stderr
    assert _status(result.stdout, "signature") == "FAILED" and "does not verify with key" in result.stdout
    for kind in Attestation:
        assert f"{kind.value}: " in result.stderr, result.stderr


def test_verify_of_an_image_that_was_never_signed_fails(built: Built, released: RegistryServer) -> None:
    """The base layers are in the registry, but nothing signed this digest."""
    ref = _ref(released.address, built, "plain")
    digest = ref.rsplit("@", 1)[1]
    registry = OrasRegistry(released.address)
    repository = built.repo.repository("plain")
    manifest = registry.manifest(repository, digest)
    assert manifest is not None
    # The same image under a repository no release wrote to: no .sig, no .att.
    for layer in json.loads(manifest.data)["layers"] + [json.loads(manifest.data)["config"]]:
        data = registry.blob(repository, layer["digest"])
        assert data is not None
        registry.put_blob("hardening-test/unsigned", data)
    registry.put_manifest("hardening-test/unsigned", "1", manifest.data, manifest.media_type)
    result = _verify(built, f"{released.address}/hardening-test/unsigned:1")
    assert result.returncode == 1, _output(result)
    assert "no signature" in result.stdout and "no attestations" in result.stdout


# --- tampered evidence -------------------------------------------------------------------------------


@pytest.fixture
def fresh(built: Built, tmp_path: Path) -> Iterator[RegistryServer]:
    """An empty registry for a test that changes what is in it."""
    workdir = tmp_path / "registry"
    workdir.mkdir()
    server = start_registry(workdir)
    try:
        yield server
    finally:
        server.stop()


def test_an_attestation_about_another_image_fails_verification(
    built: Built, fresh: RegistryServer, cosign: Path
) -> None:
    released = built.repo.release(fresh.address, *IMAGES)
    assert released.returncode == 0, _output(released)
    registry = OrasRegistry(fresh.address)
    victim, other = built.repo.repository("vexy"), built.repo.repository("plain")
    victim_digest = _release_record(built, "vexy")["pushed"][0]["digest"]
    other_digest = _release_record(built, "plain")["pushed"][0]["digest"]
    # The other image's attestations, validly signed by the release key, put where the victim's were.
    foreign = registry.manifest(other, attestation_tag(other_digest))
    assert foreign is not None
    doc = json.loads(foreign.data)
    for descriptor in [doc["config"], *doc["layers"]]:
        data = registry.blob(other, descriptor["digest"])
        assert data is not None
        registry.put_blob(victim, data)
    registry.put_manifest(victim, attestation_tag(victim_digest), foreign.data, foreign.media_type)

    ref = f"{fresh.address}/{victim}@{victim_digest}"
    result = _verify(built, ref)
    assert result.returncode == 1, _output(result)
    assert _status(result.stdout, "signature") == "ok"  # the image signature itself is still good
    assert (
        f"the statement is about sha256:{other_digest.removeprefix('sha256:')}, not {victim_digest}"
        in result.stdout
    )
    peer = _cosign_attestation(cosign, built.key.public, ref, "openvex")
    assert peer.returncode != 0, "cosign accepted an attestation about another digest"


def test_a_signature_tag_whose_blob_is_gone_fails_verification(
    built: Built, fresh: RegistryServer, cosign: Path
) -> None:
    released = built.repo.release(fresh.address, "plain")
    assert released.returncode == 0, _output(released)
    repository = built.repo.repository("plain")
    digest = _release_record(built, "plain")["pushed"][0]["digest"]
    manifest = OrasRegistry(fresh.address).manifest(repository, signature_tag(digest))
    assert manifest is not None
    (layer,) = json.loads(manifest.data)["layers"]
    request = urllib.request.Request(
        f"http://{fresh.address}/v2/{repository}/blobs/{layer['digest']}", method="DELETE"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback registry
        assert response.status == 202

    ref = f"{fresh.address}/{repository}@{digest}"
    result = _verify(built, ref)
    assert result.returncode == 1, _output(result)
    assert f"blob {layer['digest']} is missing from the registry" in result.stdout
    assert "signature: " in result.stderr
    peer = _cosign_verify(cosign, built.key.public, ref)
    assert peer.returncode != 0


# --- bad keys push nothing ---------------------------------------------------------------------------


@pytest.mark.parametrize("problem", ["wrong-passphrase", "missing", "malformed", "public-key"])
def test_an_unusable_release_key_pushes_nothing(
    built: Built, fresh: RegistryServer, tmp_path: Path, problem: str
) -> None:
    key = built.key.private
    env: dict[str, str] = {}
    if problem == "wrong-passphrase":
        env = {"HARDENING_KEY_PASSPHRASE": "not the passphrase of this key"}
    elif problem == "missing":
        key = tmp_path / "nowhere" / "release.key"
    elif problem == "malformed":
        key = tmp_path / "release.key"
        key.write_text(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nbm90IGEga2V5\n-----END ENCRYPTED PRIVATE KEY-----\n"
        )
    elif problem == "public-key":
        key = built.key.public
    result = built.repo.harden("release", "--registry", fresh.address, "--key", str(key), *IMAGES, env=env)
    assert result.returncode == 2, _output(result)
    assert "error: unusable signing key" in result.stderr and str(key) in result.stderr
    expected = {
        "wrong-passphrase": "wrong passphrase in $HARDENING_KEY_PASSPHRASE",
        "missing": "no private key here",
        "malformed": "cannot decrypt the private key",
        "public-key": "not a PEM private key",
    }[problem]
    assert expected in result.stderr
    assert "not the passphrase" not in result.stdout + result.stderr
    assert fresh.client.catalog() == []


# --- the registry failing between the image push and the evidence push -----------------------------


def _proxied_release(built: Built, proxy: FaultyProxy) -> subprocess.CompletedProcess[str]:
    try:
        return built.repo.release(proxy.address, "plain")
    finally:
        proxy.close()


def test_a_registry_failing_after_the_image_push_leaves_no_evidence(
    built: Built, fresh: RegistryServer
) -> None:
    proxy = FaultyProxy(fresh.address, lambda _method, _path, from_engine: None if from_engine else 503)
    result = _proxied_release(built, proxy)

    assert result.returncode == 3, _output(result)
    repository = built.repo.repository("plain")
    assert "registry operation failed" in result.stderr
    assert "but its evidence was not attached" in result.stderr and "503" in result.stderr
    assert "tried 3 times" in result.stderr
    assert fresh.client.tags(repository) == ["1"], "evidence tags, or nothing at all"
    assert any(not seen.from_engine for seen in proxy.seen)
    record = built.run_dir / "plain" / "release.json"
    assert not record.exists() or _json(record)["registry"] != proxy.address, "a failed release was recorded"
    ref = f"{fresh.address}/{repository}:1"
    verified = _verify(built, ref)
    assert verified.returncode == 1 and "no signature" in verified.stdout, _output(verified)


def test_a_transient_evidence_push_failure_is_retried(built: Built, fresh: RegistryServer) -> None:
    failures = {"left": 2}

    def decide(_method: str, _path: str, from_engine: bool) -> int | None:
        if from_engine or failures["left"] == 0:
            return None
        failures["left"] -= 1
        return 503

    result = _proxied_release(built, FaultyProxy(fresh.address, decide))
    assert result.returncode == 0, _output(result)
    assert failures["left"] == 0
    ref = f"{fresh.address}/{built.repo.repository('plain')}:1"
    verified = _verify(built, ref)
    assert verified.returncode == 0, _output(verified)


def test_a_failed_signature_push_takes_the_attestations_back(built: Built, fresh: RegistryServer) -> None:
    def decide(method: str, path: str, from_engine: bool) -> int | None:
        return 500 if not from_engine and method == "PUT" and path.endswith(".sig") else None

    result = _proxied_release(built, FaultyProxy(fresh.address, decide))
    assert result.returncode == 3, _output(result)
    assert ".att was stored and then deleted again" in result.stderr
    assert fresh.client.tags(built.repo.repository("plain")) == ["1"]


def test_cosign_is_the_pinned_debian_build(cosign: Path) -> None:
    pin = (cosign.parent / ".installed").read_text()
    assert pin.startswith("cosign 2.5.0 debian 2.5.0-2+b5 ")
    check = subprocess.run([str(INSTALL_COSIGN), "--check"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert shutil.which("dpkg-deb")
