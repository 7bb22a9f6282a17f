"""SARIF from a big Trivy report: `harden sarif --from-trivy` against `trivy convert --format sarif`.

    .venv/bin/python bench/sarif_convert.py [--runs 5] [--findings 20000] [--packages 2000] [--keep DIR]

What is compared: both tools read the same Trivy JSON report (generated here, 20,000
vulnerabilities over ~2,000 packages, in the shape of `tests/data/trivy/image-report.json`:
Debian and Python results, mixed severities, CVSS from NVD and the vendor, references and
descriptions of realistic length) and write SARIF 2.1.0 to a file.  Each run of each tool is a
fresh process, so interpreter and Go runtime start-up both count.

Why it is fair: same input file (in the page cache for both, after an untimed warm-up of each),
same kind of output, no network and no DB for either.  The tools do not do identical work:
Trivy writes every finding as a result; ours validates the report strictly, fingerprints and
sorts all 20,000 findings but writes only the 5,000 most severe (GitHub's display limit, see
hardening/report/github_rules.py), with help text and a property bag per result.  Both are what
a user gets from the tool's one command for this job.

Each run's CPU time (user + system, the process and its children) is printed beside its wall
time: on a shared machine it moves less than wall time does. The ratio is on wall time.

Also checks that our SARIF for this file validates against the 2.1.0 schema and keeps GitHub's
upload rules.  Goal: ours/Trivy <= 0.5.  Exits 0 whatever the figures: it reports, it does not
judge.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = REPO_ROOT / ".venv" / "bin"
HARDEN = BIN / "harden"
TRIVY = BIN / "trivy"
SCHEMA = REPO_ROOT / "tests" / "data" / "schemas" / "sarif-schema-2.1.0.json"
GOAL = 0.5
TIMEOUT = 600.0

LAYERS = (
    "sha256:0b379ab13cc35b683aacab38dafdcdbb266958cbe369d9a0af3f206fcb5d9f67",
    "sha256:8c5cab7a88f578353e27817dc967961d773f52a9837bc117c7596229a70ee48e",
)
# Roughly the spread of a real scan of an old distro image: few criticals, many mediums.
SEVERITY_WEIGHTS = {"CRITICAL": 5, "HIGH": 20, "MEDIUM": 40, "LOW": 30, "UNKNOWN": 5}
SEVERITY_NUMBER = {"UNKNOWN": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
SCORE_RANGE = {
    "CRITICAL": (9.0, 10.0),
    "HIGH": (7.0, 8.9),
    "MEDIUM": (4.0, 6.9),
    "LOW": (0.1, 3.9),
    "UNKNOWN": (0.0, 0.0),
}
VECTOR = "CVSS:3.1/AV:{av}/AC:{ac}/PR:{pr}/UI:{ui}/S:U/C:{c}/I:{i}/A:{a}"
_VOCABULARY = (
    "buffer overflow use-after-free heap stack integer out-of-bounds read write crafted input "
    "remote attacker denial service memory corruption parser function allows cause via leading "
    "arbitrary code execution certificate validation bypass improper handling length check null "
    "pointer dereference library component versions before affected prior local user privilege "
    "escalation information disclosure sensitive data request header response timing side channel"
)
WORDS = tuple(_VOCABULARY.split())
DEBIAN_SOURCE = {
    "ID": "debian",
    "Name": "Debian Security Tracker",
    "URL": "https://salsa.debian.org/security-tracker-team/security-tracker",
}
GHSA_SOURCE = {
    "ID": "ghsa",
    "Name": "GitHub Security Advisory pip",
    "URL": "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Apip",
}


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def _uid(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _vector(rng: random.Random) -> str:
    def pick(*options: str) -> str:
        return rng.choice(options)

    return VECTOR.format(
        av=pick("N", "A", "L"),
        ac=pick("L", "H"),
        pr=pick("N", "L", "H"),
        ui=pick("N", "R"),
        c=pick("N", "L", "H"),
        i=pick("N", "L", "H"),
        a=pick("N", "L", "H"),
    )


def generate_report(findings: int, packages: int, artifact: str, seed: int = 2026) -> dict[str, Any]:
    """A Trivy 0.76 image report (schema 2) with ``findings`` vulnerabilities; deterministic."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible on purpose
    python_count = max(1, packages // 5)
    debian_count = max(1, packages - python_count)
    # Several packages share a CVE, as binary packages of one Debian source do.
    cve_pool = [f"CVE-{rng.randint(2015, 2025)}-{rng.randint(1000, 99999)}" for _ in range(findings // 2)]
    severities = list(SEVERITY_WEIGHTS)
    weights = list(SEVERITY_WEIGHTS.values())
    advisory: dict[str, dict[str, Any]] = {}

    def advisory_of(cve: str) -> dict[str, Any]:
        if cve not in advisory:
            severity = rng.choices(severities, weights)[0]
            low, high = SCORE_RANGE[severity]
            cvss: dict[str, Any] = {}
            if severity != "UNKNOWN":
                score = round(rng.uniform(low, high), 1)
                cvss["nvd"] = {"V3Vector": _vector(rng), "V3Score": score}
                if rng.random() < 0.5:
                    cvss["nvd"]["V2Vector"] = "AV:N/AC:L/Au:N/C:P/I:P/A:P"
                    cvss["nvd"]["V2Score"] = round(rng.uniform(1.0, 10.0), 1)
                if rng.random() < 0.4:
                    cvss["redhat"] = {"V3Vector": _vector(rng), "V3Score": score}
            year = cve.split("-")[1]
            advisory[cve] = {
                "severity": severity,
                "cvss": cvss,
                "title": _sentence(rng, rng.randint(6, 14)).rstrip("."),
                # NVD descriptions run from one line to a long paragraph
                "description": " ".join(
                    _sentence(rng, rng.randint(12, 30)) for _ in range(rng.randint(1, 8))
                ),
                "references": [
                    f"https://nvd.nist.gov/vuln/detail/{cve}",
                    f"https://security-tracker.debian.org/tracker/{cve}",
                    *(
                        f"https://github.com/example/project{rng.randint(1, 400)}/commit/{_uid(cve + str(n))}"
                        for n in range(rng.randint(0, 4))
                    ),
                    *(
                        f"https://www.openwall.com/lists/oss-security/{year}/0{n + 1}/1"
                        for n in range(rng.randint(0, 3))
                    ),
                ],
                "published": f"{year}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T0{rng.randint(0, 9)}:15:00Z",
            }
        return advisory[cve]

    def package_list(kind: str, count: int) -> list[dict[str, Any]]:
        out = []
        for n in range(count):
            name = f"lib{rng.choice(WORDS)}{n}" if kind == "debian" else f"py-{rng.choice(WORDS)}-{n}"
            version = f"{rng.randint(0, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 20)}"
            if kind == "debian":
                release = f"{rng.randint(1, 9)}+deb12u{rng.randint(1, 5)}"
                purl = f"pkg:deb/debian/{name}@{version}-{release}?arch=amd64&distro=debian-12.15"
                entry: dict[str, Any] = {
                    "ID": f"{name}@{version}-{release}",
                    "Name": name,
                    "Identifier": {"PURL": purl, "UID": _uid(purl)},
                    "Version": version,
                    "Release": release,
                    "Arch": "amd64",
                    "SrcName": name.rstrip("0123456789") or name,
                    "SrcVersion": version,
                    "SrcRelease": release,
                    "Licenses": ["GPL-2.0-or-later"],
                    "Maintainer": "Debian Developers <debian-devel@lists.debian.org>",
                    "Repository": {"Class": "official"},
                    "Layer": {"DiffID": LAYERS[0]},
                    "AnalyzedBy": "dpkg",
                }
            else:
                purl = f"pkg:pypi/{name}@{version}"
                entry = {
                    "Name": name,
                    "Identifier": {"PURL": purl, "UID": _uid(purl)},
                    "Version": version,
                    "Licenses": ["MIT"],
                    "Layer": {"DiffID": LAYERS[1]},
                    "FilePath": f"opt/venv/lib/python3.11/site-packages/{name}-{version}.dist-info/METADATA",
                    "AnalyzedBy": "python-pkg",
                }
            out.append(entry)
        return out

    def vulnerability(package: dict[str, Any], kind: str) -> dict[str, Any]:
        cve = rng.choice(cve_pool)
        info = advisory_of(cve)
        debian = kind == "debian"
        installed = f"{package['Version']}-{package['Release']}" if debian else package["Version"]
        fixed = rng.random() < 0.6
        source = "debian" if debian else "ghsa"
        vuln: dict[str, Any] = {"VulnerabilityID": cve}
        if not debian:
            vuln["VendorIDs"] = [f"GHSA-{_uid(cve)[:4]}-{_uid(cve)[4:8]}-{_uid(cve)[8:12]}"]
            vuln["PkgName"] = package["Name"]
            vuln["PkgPath"] = package["FilePath"]
        else:
            vuln["PkgID"] = package["ID"]
            vuln["PkgName"] = package["Name"]
        vuln["PkgIdentifier"] = package["Identifier"]
        vuln["InstalledVersion"] = installed
        if fixed:
            vuln["FixedVersion"] = f"{package['Version']}-{rng.randint(10, 20)}" if debian else "99.0.0"
        vuln["Status"] = "fixed" if fixed else rng.choice(("affected", "will_not_fix", "fix_deferred"))
        vuln["Layer"] = package["Layer"]
        vuln["SeveritySource"] = "nvd" if info["cvss"] else source
        vuln["PrimaryURL"] = f"https://avd.aquasec.com/nvd/{cve.lower()}"
        vuln["DataSource"] = DEBIAN_SOURCE if debian else GHSA_SOURCE
        vuln["Fingerprint"] = "sha256:" + hashlib.sha256(f"{cve}{package['Name']}".encode()).hexdigest()
        vuln["Title"] = info["title"]
        vuln["Description"] = info["description"]
        vuln["Severity"] = info["severity"]
        vuln["CweIDs"] = [f"CWE-{rng.choice((20, 79, 119, 125, 190, 416, 476, 787))}"]
        vuln["VendorSeverity"] = {
            source: SEVERITY_NUMBER[info["severity"]],
            "nvd": SEVERITY_NUMBER[info["severity"]],
        }
        if info["cvss"]:
            vuln["CVSS"] = info["cvss"]
        vuln["References"] = info["references"]
        vuln["PublishedDate"] = info["published"]
        vuln["LastModifiedDate"] = info["published"]
        return vuln

    debian_packages = package_list("debian", debian_count)
    python_packages = package_list("python", python_count)
    everything = [("debian", p) for p in debian_packages] + [("python", p) for p in python_packages]
    seen: set[tuple[str, str]] = set()
    by_kind: dict[str, list[dict[str, Any]]] = {"debian": [], "python": []}
    while len(seen) < findings:
        kind, package = rng.choice(everything)
        vuln = vulnerability(package, kind)
        key = (vuln["VulnerabilityID"], package["Name"])
        if key in seen:
            continue  # Trivy reports one vulnerability per package once
        seen.add(key)
        by_kind[kind].append(vuln)

    return {
        "SchemaVersion": 2,
        "Trivy": {"Version": "0.76.0"},
        "ReportID": "01a21841-3dc8-768c-96b8-401ac78fdb9f",
        "CreatedAt": "2026-11-26T14:27:38.568430966Z",
        "ArtifactID": "sha256:" + _uid(artifact) * 4,
        "ArtifactName": artifact,
        "ArtifactType": "container_image",
        "Metadata": {
            "Size": 165702144,
            "OS": {"Family": "debian", "Name": "12.15"},
            "ImageID": "sha256:a85a181837f118495e11272bbb46d6d6f07fe3fe6b54219635d3642deac58dd4",
            "DiffIDs": list(LAYERS),
            "RepoTags": ["bench:big"],
            "Reference": "bench:big",
            "Layers": [{"Size": 81510400, "DiffID": LAYERS[0]}, {"Size": 84186624, "DiffID": LAYERS[1]}],
        },
        "Results": [
            {
                "Target": f"{artifact} (debian 12.15)",
                "Class": "os-pkgs",
                "Type": "debian",
                "Packages": debian_packages,
                "Vulnerabilities": by_kind["debian"],
            },
            {
                "Target": "Python",
                "Class": "lang-pkgs",
                "Type": "python-pkg",
                "Packages": python_packages,
                "Vulnerabilities": by_kind["python"],
            },
        ],
    }


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall time, and CPU time (user + system) of the process and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=TIMEOUT)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} … exited with {result.returncode}:\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def check_output(path: Path) -> None:
    """Schema validity and GitHub's upload rules for our SARIF of the big report."""
    import jsonschema

    from hardening.report.github_rules import check_github_rules

    doc = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
    results = sum(len(run.get("results", [])) for run in doc["runs"])
    rules = sum(len(run["tool"]["driver"].get("rules", [])) for run in doc["runs"])
    print(f"our SARIF: {path.stat().st_size / 1e6:.1f} MB, {results} results, {rules} rules")
    print(f"schema 2.1.0: {'valid' if not errors else f'{len(errors)} errors, first: {errors[0].message}'}")
    problems = check_github_rules(doc)
    print(f"GitHub upload rules: {'kept' if not problems else f'{len(problems)} problems'}")
    for problem in problems[:10]:
        print(f"  {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--findings", type=int, default=20_000)
    parser.add_argument("--packages", type=int, default=2_000)
    parser.add_argument("--keep", type=Path, help="copy the report and both SARIF files here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-sarif-") as scratch:
        work = Path(scratch)
        report = work / "report.json"
        ours_out, peer_out = work / "ours.sarif", work / "trivy.sarif"
        doc = generate_report(args.findings, args.packages, str(work / "image.tar"))
        report.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        vulns = sum(len(r["Vulnerabilities"]) for r in doc["Results"])
        packages = sum(len(r["Packages"]) for r in doc["Results"])
        print(f"report: {report.stat().st_size / 1e6:.1f} MB, {vulns} vulnerabilities, {packages} packages")

        ours_argv = [str(HARDEN), "sarif", "--from-trivy", str(report), "-o", str(ours_out)]
        # A private cache dir: convert needs no DB, and must not touch the shared one.
        peer_argv = [
            str(TRIVY), "convert", "--format", "sarif", "--output", str(peer_out),
            "--cache-dir", str(work / "trivy-cache"), "--quiet", str(report),
        ]  # fmt: skip
        # Untimed warm-up: page cache, and both binaries' files read once.
        timed(ours_argv)
        timed(peer_argv)
        ours: list[tuple[float, float]] = []
        peer: list[tuple[float, float]] = []
        for run in range(1, args.runs + 1):
            # Alternate which goes first so a burst of load on the shared machine hits both.
            pair = [(ours_argv, ours), (peer_argv, peer)]
            for argv, sink in pair if run % 2 else reversed(pair):
                sink.append(timed(argv))
            print(
                f"run {run}: ours {ours[-1][0]:.2f} s (CPU {ours[-1][1]:.2f} s)   "
                f"trivy convert {peer[-1][0]:.2f} s (CPU {peer[-1][1]:.2f} s)"
            )

        check_output(ours_out)
        peer_results = sum(len(r.get("results", [])) for r in json.loads(peer_out.read_text())["runs"])
        print(f"Trivy's SARIF: {peer_out.stat().st_size / 1e6:.1f} MB, {peer_results} results")
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for path in (report, ours_out, peer_out):
                shutil.copy2(path, args.keep / path.name)

    ours_median, peer_median = (statistics.median(wall for wall, _ in runs) for runs in (ours, peer))
    ours_cpu, peer_cpu = (statistics.median(cpu for _, cpu in runs) for runs in (ours, peer))
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"median ours (harden sarif --from-trivy): {ours_median:.2f} s")
    print(f"median peer (trivy convert --format sarif): {peer_median:.2f} s")
    # CPU time moves less than wall time with other work on the machine; Trivy's includes the
    # Go runtime's other threads.
    print(f"median CPU time: ours {ours_cpu:.2f} s, peer {peer_cpu:.2f} s, ratio {ours_cpu / peer_cpu:.2f}")
    print(f"ratio ours/peer = {ours_median / peer_median:.2f} (goal <= {GOAL})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
