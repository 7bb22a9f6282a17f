from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardening.catalog import load_catalog
from hardening.cli import main
from hardening.errors import ConfigError, ExitCode
from hardening.matrix import MATRIX_KEYS, matrix_entries, matrix_json
from tests.conftest import DEFAULT_IMAGE, REPO_ROOT

SCAN_WORKFLOW = REPO_ROOT / ".github" / "workflows" / "scan.yml"


def harden_matrix(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(["--catalog", str(REPO_ROOT / "hardening.toml"), "matrix", *args])
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out + captured.err


def cli_matrix(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, output = harden_matrix(capsys)
    assert code == 0, output
    assert output.count("\n") == 1, "a $GITHUB_OUTPUT value must be one line"
    result: dict[str, Any] = json.loads(output)
    return result


def test_shape_is_what_strategy_matrix_takes(capsys: pytest.CaptureFixture[str]) -> None:
    matrix = cli_matrix(capsys)
    assert list(matrix) == ["include"]
    include = matrix["include"]
    assert isinstance(include, list) and include
    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    assert [entry["image"] for entry in include] == sorted(image.name for image in catalog.images)
    for entry in include:
        assert tuple(entry) == MATRIX_KEYS
        # Scalars only: a list or object would reach `with:` and `env:` as "Array"/"Object".
        assert all(isinstance(value, str) and value for value in entry.values())
        spec = next(image for image in catalog.images if image.name == entry["image"])
        assert entry["template"] == spec.template.as_posix()
        assert (REPO_ROOT / entry["template"]).is_file()
        assert entry["repository"] == spec.repository
        assert entry["tags"].split(" ") == list(spec.tags)
        assert entry["category"] == f"hardening/{spec.name}"
    assert len({entry["category"] for entry in include}) == len(include)


def test_output_is_compact_and_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    _, first = harden_matrix(capsys)
    names = ("python-secure-3.13", "python-secure", "postgres-secure-17", "postgres-secure")
    _, second = harden_matrix(capsys, *names)
    assert first == second
    assert [entry["image"] for entry in json.loads(first)["include"]] == sorted(names)
    assert ": " not in first and ", " not in first.replace('"tags":', "")


def test_selection_and_unknown_image(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = harden_matrix(capsys, "python-secure")
    assert code == 0
    assert [e["image"] for e in json.loads(output)["include"]] == ["python-secure"]
    code, output = harden_matrix(capsys, "nope")
    assert code == ExitCode.BAD_INPUT
    assert "no image named nope" in output


def test_sorted_whatever_the_catalog_order(make_repo: Callable[..., Path]) -> None:
    second = (
        DEFAULT_IMAGE.replace('name = "demo"', 'name = "alpha"')
        .replace('repository = "hardening/demo"', 'repository = "hardening/alpha"')
        .replace("dockerfiles/demo/", "dockerfiles/alpha/")
    )
    path = make_repo(DEFAULT_IMAGE + "\n" + second)
    # Two images never share a rendering: alpha has a template of its own.
    template = path.parent / "dockerfiles/demo/Dockerfile.j2"
    (path.parent / "dockerfiles/alpha").mkdir()
    (path.parent / "dockerfiles/alpha/Dockerfile.j2").write_text(template.read_text())
    catalog = load_catalog(path)
    assert [e.image for e in matrix_entries(catalog)] == ["alpha", "demo"]
    assert [e.image for e in matrix_entries(catalog, ["demo", "alpha", "demo"])] == ["alpha", "demo"]
    assert json.loads(matrix_json(matrix_entries(catalog)))["include"][1]["tags"] == "1"


def test_unknown_name_is_a_config_error(make_repo: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError):
        matrix_entries(load_catalog(make_repo()), ["nope"])


def _scan_workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SCAN_WORKFLOW.read_text())
    return data


def test_scan_workflow_uses_the_matrix_output() -> None:
    jobs = _scan_workflow()["jobs"]
    assert jobs["scan"]["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    assert "matrix" in jobs["scan"]["needs"]
    output = jobs["matrix"]["outputs"]["matrix"]
    step_id = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.matrix \}\}", output)
    assert step_id, output
    (step,) = [s for s in jobs["matrix"]["steps"] if s.get("id") == step_id.group(1)]
    assert "harden matrix" in step["run"] and "GITHUB_OUTPUT" in step["run"]


def test_every_matrix_reference_in_scan_workflow_exists_in_each_entry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = SCAN_WORKFLOW.read_text()
    # Only what is inside ${{ }} is an expression; "matrix.X" in a comment is prose. The context
    # is "matrix." not preceded by a dot: needs.matrix.outputs is the job called matrix.
    expressions = re.findall(r"\$\{\{(.*?)\}\}", text)
    used = {key for expr in expressions for key in re.findall(r"(?<![\w.])matrix\.([A-Za-z_][\w-]*)", expr)}
    assert {"image", "category"} <= used
    for entry in cli_matrix(capsys)["include"]:
        missing = used - set(entry)
        assert not missing, f"scan.yml reads matrix.{', matrix.'.join(sorted(missing))}, not in {entry}"
