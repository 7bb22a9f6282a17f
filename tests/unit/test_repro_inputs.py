"""Build records compared input by input; provenance with the inputs; a rebuild's comparison."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from hardening.cli import main
from hardening.errors import InputUnavailable
from hardening.evidence.provenance import provenance
from hardening.repro.inputs import compare_records
from hardening.repro.rebuild import compare, first_differing_file, plan_from_provenance
from hardening.repro.tarwrite import END_OF_ARCHIVE, Header, encode, padding

RECORD: dict[str, Any] = {
    "image": "app",
    "image_id": "sha256:" + "a" * 64,
    "raw_image_id": "sha256:" + "f" * 64,
    "candidate_ref": "example/app:candidate",
    "template": "dockerfiles/app/Dockerfile.j2",
    "dockerfile": "dockerfiles/app/Dockerfile",
    "labels": {
        "org.opencontainers.image.revision": "1" * 40,
        "org.opencontainers.image.source": "https://example.invalid/repo",
        "org.hardening.base.suite": "bookworm",
        "org.hardening.base.mirror": "http://mirror.invalid/debian",
    },
    "variables": {"uid": 10001},
    "base": {"ref": "hardening/debian:bookworm", "id": "sha256:" + "b" * 64},
    "input_digests": {"dockerfiles/app/Dockerfile": "d" * 64},
    "source_date_epoch": 1_796_040_000,
    "normalisation": {"diff_ids": ["sha256:" + "0" * 64, "sha256:" + "1" * 64]},
    "inputs": {
        "source_date_epoch": 1_796_040_000,
        "builder": "0.1.0",
        "normaliser": 1,
        "base": {
            "id": "sha256:" + "b" * 64,
            "archive": [
                {"suite": "bookworm", "date": "2026-07-11T10:16:37Z", "sha256": "c" * 64, "mirror": ""}
            ],
        },
        "archive": [
            {
                "suite": "bookworm-security",
                "date": "2026-11-29T00:53:13Z",
                "sha256": "e" * 64,
                "mirror": "http://mirror.invalid/debian-security",
            }
        ],
        "debian_packages": [
            {
                "name": "libssl3",
                "version": "3.0.17-1~deb12u3",
                "architecture": "amd64",
                "source": "openssl",
                "source_version": "3.0.17-1~deb12u3",
            },
            {
                "name": "tzdata",
                "version": "2025b-0+deb12u2",
                "architecture": "all",
                "source": "tzdata",
                "source_version": "2025b-0+deb12u2",
            },
        ],
        "python_packages": [
            {"name": "pip", "version": "26.3", "environment": "/opt/venv/lib/python3.11/site-packages"}
        ],
        "wheels": [{"file": "pip-26.3-py3-none-any.whl", "sha256": "9" * 64}],
    },
}


def _changed(**edits: Any) -> dict[str, Any]:
    record = copy.deepcopy(RECORD)
    record["image_id"] = "sha256:" + "e" * 64
    for path, value in edits.items():
        target = record
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[keys[-1] if not isinstance(target, list) else int(keys[-1])] = value  # type: ignore[index]
    return record


def test_the_same_record_is_the_same_image_with_nothing_changed() -> None:
    comparison = compare_records(RECORD, copy.deepcopy(RECORD))
    assert comparison.same_image and not comparison.changes and not comparison.unexplained


def test_a_package_version_and_the_archive_state_explain_a_new_image() -> None:
    new = _changed(
        inputs__debian_packages__0__version="3.0.18-1~deb12u1",
        inputs__archive__0__date="2026-12-01T00:00:00Z",
    )
    comparison = compare_records(RECORD, new)
    assert not comparison.same_image and not comparison.unexplained
    assert [str(c) for c in comparison.changes] == [
        "archive bookworm-security: 2026-11-29T00:53:13Z → 2026-12-01T00:00:00Z",
        "debian package libssl3/amd64: 3.0.17-1~deb12u3 → 3.0.18-1~deb12u1",
    ]


def test_every_kind_of_input_is_compared() -> None:
    new = _changed(
        input_digests__dockerfiles="0" * 64,
        variables__uid=10002,
        base__id="sha256:" + "c" * 64,
        inputs__wheels__0__sha256="8" * 64,
        inputs__python_packages__0__version="26.4",
        inputs__builder="0.2.0",
        inputs__source_date_epoch=1,
    )
    new["labels"]["org.opencontainers.image.revision"] = "2" * 40
    kinds = {change.input for change in compare_records(RECORD, new).changes}
    assert kinds == {"source", "file", "variable", "base image", "wheel", "python package", "builder"}


def test_different_images_from_the_same_inputs_are_a_reproducibility_bug() -> None:
    comparison = compare_records(RECORD, _changed())
    assert comparison.unexplained


def _write(tmp_path: Path, name: str, record: dict[str, Any]) -> Path:
    path = tmp_path / name / "build.json"
    path.parent.mkdir()
    path.write_text(json.dumps(record))
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_build_diff_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _write(tmp_path, "old", RECORD)
    same = _write(tmp_path, "same", RECORD)
    moved = _write(tmp_path, "moved", _changed(inputs__debian_packages__1__version="2025c-0+deb12u1"))
    bug = _write(tmp_path, "bug", _changed())
    code, out, _ = _cli(capsys, "build-diff", str(old), str(same.parent))
    assert code == 0 and out.startswith(f"same image {RECORD['image_id']}")
    code, out, _ = _cli(capsys, "build-diff", str(old), str(moved))
    assert code == 0 and "debian package tzdata/all: 2025b-0+deb12u2 → 2025c-0+deb12u1" in out
    assert "explained by 1 changed input(s)" in out
    code, out, err = _cli(capsys, "build-diff", str(old), str(bug))
    assert code == 1 and "no recorded input did" in err
    legacy = {k: v for k, v in RECORD.items() if k != "inputs"}
    code, _, err = _cli(capsys, "build-diff", str(old), str(_write(tmp_path, "legacy", legacy)))
    assert code == 2 and "records no inputs" in err
    code, _, err = _cli(capsys, "build-diff", str(old), str(tmp_path / "missing.json"))
    assert code == 2 and "does not exist" in err


def test_provenance_names_packages_archive_states_wheels_and_layers() -> None:
    doc = provenance(RECORD, run_id="run-1", fallback_version="9.9")
    deps = {d["name"]: d for d in doc["buildDefinition"]["resolvedDependencies"]}
    assert deps["deb:libssl3"]["uri"] == "pkg:deb/debian/libssl3@3.0.17-1~deb12u3?arch=amd64"
    assert deps["archive:bookworm-security"] == {
        "name": "archive:bookworm-security",
        "uri": "http://mirror.invalid/debian-security/dists/bookworm-security/InRelease",
        "digest": {"sha256": "e" * 64},
        "annotations": {"date": "2026-11-29T00:53:13Z"},
    }
    assert deps["base-archive:bookworm"]["uri"] == "http://mirror.invalid/debian/dists/bookworm/InRelease"
    assert deps["wheel:pip-26.3-py3-none-any.whl"]["digest"] == {"sha256": "9" * 64}
    internal = doc["buildDefinition"]["internalParameters"]
    assert internal["sourceDateEpoch"] == 1_796_040_000 and internal["inputs"] == RECORD["inputs"]
    names = [b["name"] for b in doc["runDetails"]["byproducts"]]
    assert names == ["image-id", "layer-0", "layer-1"]

    plan = plan_from_provenance(doc)
    assert plan.image == "app" and plan.revision == "1" * 40 and plan.epoch == 1_796_040_000
    assert plan.image_id == RECORD["image_id"] and plan.diff_ids == tuple(RECORD["normalisation"]["diff_ids"])
    assert plan.base_id == RECORD["base"]["id"] and plan.suite == "bookworm"
    assert [(p.name, p.version) for p in plan.packages] == [
        ("libssl3", "3.0.17-1~deb12u3"),
        ("tzdata", "2025b-0+deb12u2"),
    ]


def test_a_provenance_without_inputs_cannot_be_rebuilt() -> None:
    legacy = {k: v for k, v in RECORD.items() if k != "inputs"}
    with pytest.raises(InputUnavailable, match="records no build inputs"):
        plan_from_provenance(provenance(legacy, run_id="run-1", fallback_version="9.9"))


def _layer(*entries: tuple[str, bytes, int]) -> bytes:
    out = io.BytesIO()
    for name, data, mtime in entries:
        out.write(encode(Header(name, b"0", 0o644, 0, 0, len(data), mtime)) + data + padding(len(data)))
    out.write(END_OF_ARCHIVE)
    return out.getvalue()


def test_the_first_differing_layer_and_file_are_named() -> None:
    plan = plan_from_provenance(provenance(RECORD, run_id="run-1", fallback_version="9.9"))
    released = _layer(("etc/a", b"1", 5), ("srv/built-at", b"07:07", 5), ("srv/z", b"z", 5))
    rebuilt = _layer(("etc/a", b"1", 5), ("srv/built-at", b"07:09", 5), ("srv/z", b"z", 9))
    new_ids = (plan.diff_ids[0], "sha256:" + "7" * 64)
    text = compare(
        plan, "sha256:" + "c" * 64, new_ids, released=lambda index: released, rebuilt=lambda index: rebuilt
    )
    assert text.startswith("layer 1 differs")
    assert text.endswith("first differing file /srv/built-at (content)")
    assert compare(plan, plan.image_id, new_ids, released=lambda i: None, rebuilt=lambda i: b"") == ""
    assert "image config differs" in compare(
        plan, "sha256:" + "c" * 64, plan.diff_ids, released=lambda i: None, rebuilt=lambda i: b""
    )
    assert (
        first_differing_file(released, _layer(("etc/a", b"1", 5)))
        == "/srv/built-at (only in the released image)"
    )
