"""Big logs, byte for byte: generated inputs whose SARIF is pinned by its sha256.

The golden file covers a handful of findings written indented; these cover the other regime,
thousands of findings written compact, truncated to GitHub's 5,000, through the same path as
`harden sarif --from-trivy` (Trivy JSON → findings → SARIF → bytes) and through `harden run`'s
(findings with repository locations, templates, suppressions, policy findings). The digests were
taken from the writer before its serialisation was rewritten; a change to any byte of the output
fails here. If a change is meant, say so in the commit and update the digest.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest

from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report.github_rules import DISPLAYED_RESULTS_PER_RUN, check_github_rules
from hardening.report.sarif import ToolInfo, build_sarif, dumps
from hardening.scan.trivy import parse_report
from tests.unit.test_sarif import DOCKERFILE, FIXTURE_REPO, TOOLS, assert_valid

# Plain words, and what SARIF and Markdown escaping, JSON encoding and clipping must get right.
WORDS = (
    *("buffer", "overflow", "heap", "crafted", "input", "remote", "attacker", "denial", "of"),
    *("[bracket]", "back\\slash", "`tick`", "*star*", "_under_", "<angle>", "|pipe|", "#hash"),
    *("ünïcödé", "漢字", "emoji-😀", "tab\there", "line\u2028sep", "nul\x00", 'quote"d'),
)


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def trivy_report(findings: int, seed: int, cvss: tuple[float, ...] = (9.8, 7.5, 5.3, 3.1, 10.0)) -> bytes:
    """A Trivy 0.76 report with ``findings`` vulnerabilities over few packages, deterministic."""
    rng = random.Random(seed)
    cves = [f"CVE-20{rng.randint(10, 25)}-{rng.randint(1000, 99999)}" for _ in range(findings // 3)]
    cves += ["GHSA-aaaa-bbbb-cccc", "TEMP-0000000-ABCDEF", "DLA-1234-1"]
    severities = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
    results: list[dict[str, Any]] = []
    for klass, kind in (("os-pkgs", "debian"), ("lang-pkgs", "python-pkg")):
        vulns = []
        for n in range(findings // 2):
            cve = rng.choice(cves)
            package = f"pkg{rng.randint(0, 60)}"
            vuln: dict[str, Any] = {
                "VulnerabilityID": cve,
                "PkgName": package,
                "InstalledVersion": f"1.{rng.randint(0, 9)}",
                "Severity": rng.choice(severities),
                "Title": _words(rng, rng.randint(0, 8)),
                # some long enough to be clipped (help text stops at 16,000 characters)
                "Description": _words(rng, 3000 if rng.random() < 0.01 else rng.choice((0, 5, 40))),
                "References": [f"https://example.org/{cve}/{rng.randint(0, 3)}", "not a url", ""][
                    : rng.randint(0, 3)
                ],
            }
            if rng.random() < 0.6:
                vuln["FixedVersion"] = f"1.{rng.randint(10, 19)}"
            if rng.random() < 0.7:
                vuln["CVSS"] = {rng.choice(("nvd", "ghsa", "redhat")): {"V3Score": rng.choice(cvss)}}
                vuln["SeveritySource"] = rng.choice(("nvd", "ghsa", "debian"))
            if rng.random() < 0.5:
                vuln["PrimaryURL"] = rng.choice((f"https://avd.aquasec.com/nvd/{cve.lower()}", "ftp://x"))
            if kind == "python-pkg":
                vuln["PkgPath"] = (
                    f"opt/venv/lib/python3.11/site-packages/{package}-{n % 7}.dist-info/METADATA"
                )
                vuln["DataSource"] = {"ID": "ghsa"}
                vuln["VendorIDs"] = ["GHSA-xxxx-yyyy-zzzz"]
            vulns.append(vuln)
        results.append({"Target": "demo", "Class": klass, "Type": kind, "Vulnerabilities": vulns})
    results.append(
        {
            "Target": "app/creds",
            "Class": "secret",
            "Secrets": [{"RuleID": "aws-access-key-id", "Severity": "CRITICAL", "StartLine": 3}],
        }
    )
    report = {
        "SchemaVersion": 2,
        "ArtifactName": "registry.example:5000/team/demo:1.2@sha256:" + "ab" * 32,
        "Trivy": {"Version": "0.76.0"},
        "Metadata": {"OS": {"Family": "debian", "Name": "12.15"}},
        "Results": results,
    }
    return json.dumps(report, ensure_ascii=False).encode("utf-8")


def from_trivy(raw: bytes) -> dict[str, Any]:
    """What `harden sarif --from-trivy REPORT --dockerfile Dockerfile` builds."""
    parsed = parse_report(raw, image=None, artifact_name=None, image_id=None)
    return build_sarif(
        parsed.artifact,
        parsed.findings,
        tools={Origin.SCANNER: ToolInfo("Trivy", parsed.trivy_version or "unknown", "https://trivy.dev")},
        fallback_location=SourceLocation("Dockerfile", 1),
    )


def findings(count: int, seed: int) -> list[Finding]:
    """Findings of both origins as `harden run` makes them: located, some suppressed."""
    rng = random.Random(seed)
    locations = [SourceLocation(DOCKERFILE, line) for line in (1, 2, 4, 7, 999)] + [
        SourceLocation("dockerfiles/python-secure/Dockerfile.j2", 3, 5),
        SourceLocation("/elsewhere", 2),
    ]
    out = []
    for n in range(count):
        origin = Origin.POLICY if rng.random() < 0.2 else Origin.SCANNER
        rule = rng.choice(("non-root", "no-setuid", "pip-floor")) if origin is Origin.POLICY else None
        out.append(
            Finding(
                origin=origin,
                rule_id=rule or f"CVE-2024-{rng.randint(1, count // 4)}",
                severity=rng.choice(list(Severity)),
                message=_words(rng, rng.randint(0, 12)),
                image=rng.choice(("python-secure", "python-secure:candidate-1a2b")),
                title=_words(rng, rng.randint(0, 4)),
                package=rng.choice((None, "openssl", "pip", f"lib{n % 50}")),
                installed_version=rng.choice((None, "1.0", "3.0.11-1~deb12u2")),
                fixed_version=rng.choice((None, "", "3.0.13")),
                package_type=rng.choice((None, "debian", "python-pkg")),
                image_path=rng.choice((None, "/var/lib/dpkg/status", f"/opt/venv/{n % 9}")),
                cvss_score=rng.choice((None, 0.0, 4.4, 9.1, 10.0, 11.0)),
                status=rng.choice((None, "fixed", "affected")),
                primary_url=rng.choice((None, "https://e.org/x", "https://e.org/a b")),
                references=tuple(
                    rng.sample(("https://r.org/1", "https://r.org/2", "ref"), rng.randint(0, 3))
                ),
                description=_words(rng, rng.randint(0, 30)),
                location=rng.choice((None, *locations)),
                template_location=rng.choice((None, None, locations[5])),
                suppressed_by=rng.choice((None, None, None, "", "accepted: no fix upstream")),
            )
        )
    return out


def digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(dumps(doc).encode("utf-8")).hexdigest()


def check(doc: dict[str, Any], *, schema: bool) -> None:
    # The 2.1.0 schema check takes tens of seconds on a 5,000-result log (test_sarif does one);
    # GitHub's rules are cheap and checked on all.
    if schema:
        assert_valid(doc)
    else:
        assert not check_github_rules(doc)


@pytest.mark.parametrize(
    ("count", "seed", "expected"),
    [
        # truncated to GitHub's 5,000 results, written compact
        (6_000, 1, "4034af35601287a836ad9595d4945d97f4d55bdb7640e0c94f19dc6e4a37242b"),
        # compact, nothing dropped
        (1_500, 2, "f6b3396d167f7f329ffe21f35d8bc941c2c7d0e1b115d0ab01fba52a2aee0457"),
        # indented: at most 1,000 results
        (700, 3, "0d8b994783f9c1613ad272715261a901185591305851b0022783ffc8b560decb"),
    ],
)
def test_trivy_report_to_sarif_is_pinned(count: int, seed: int, expected: str) -> None:
    doc = from_trivy(trivy_report(count, seed))
    check(doc, schema=count < DISPLAYED_RESULTS_PER_RUN)
    assert len(doc["runs"][0]["results"]) == min(count + 1, DISPLAYED_RESULTS_PER_RUN)
    assert digest(doc) == expected


def test_scores_python_spells_with_an_exponent_are_written_as_python_does() -> None:
    # 5e-05 is a usable CVSS score; a fast encoder spells it 0.00005, json.dumps 5e-05
    doc = from_trivy(trivy_report(2_400, 4, cvss=(5e-05, 9.8, 1e-07)))
    text = dumps(doc)
    assert '"cvssScore":5e-05' in text and '"cvssScore":1e-07' in text
    assert digest(doc) == "585386ee9777488319fad13eb43b08bbdb59624209effab68e689ce0e62875b4"


@pytest.mark.parametrize(
    ("count", "seed", "expected"),
    [
        (7_000, 5, "4cec9e64c8eff0f6bf863a8f12077fa83c5b9349dea8284dc3b119cf40a9fb35"),
        (400, 6, "b3e5efe135056a8340077c087dce2a57abde5d258fdf4fcd834227573a4668d6"),
    ],
)
def test_located_findings_of_both_origins_are_pinned(count: int, seed: int, expected: str) -> None:
    doc = build_sarif(
        "python-secure",
        findings(count, seed),
        tools=TOOLS,
        fallback_location=SourceLocation(DOCKERFILE, 1),
        repo_root=FIXTURE_REPO,
    )
    check(doc, schema=count < DISPLAYED_RESULTS_PER_RUN)
    assert digest(doc) == expected
