"""One catalog entry, several concrete images: ``[[image.variant]]`` tables."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from hardening.catalog import load_catalog
from hardening.errors import ConfigError, ExitCode
from hardening.matrix import matrix_entries
from hardening.render import render
from tests.conftest import REPO_ROOT

TRIXIE = """\
[base.bookworm]
repository = "hardening/debian"
tag = "bookworm"
suite = "bookworm"

[base.trixie]
repository = "hardening/debian"
tag = "trixie"
suite = "trixie"

[project]
default_base = "bookworm"
"""

ENTRY = """\
[[image]]
name = "demo"
template = "dockerfiles/demo/Dockerfile.j2"
repository = "hardening/demo"

[image.variables]
flavour = "plain"
greeting = "hello"
uid = 10001

[[image.variant]]
name = "demo"
tags = ["1", "1-bookworm"]

[[image.variant]]
base = "trixie"
tags = ["2", "2-trixie"]
variables = { greeting = "hi" }
"""


def _catalog(make_repo: Callable[..., Path], images: str = ENTRY) -> Path:
    return make_repo(textwrap.dedent(images), base=TRIXIE)


def _error(make_repo: Callable[..., Path], images: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_catalog(_catalog(make_repo, images))
    assert info.value.exit_code == ExitCode.BAD_INPUT
    return info.value


def _line(err: ConfigError) -> str:
    assert err.location is not None and err.location.line is not None
    return Path(err.location.path).read_text().splitlines()[err.location.line - 1]


def test_variants_expand_into_concrete_images(make_repo: Callable[..., Path]) -> None:
    catalog = load_catalog(_catalog(make_repo))
    first, second = catalog.images
    assert (first.name, second.name) == ("demo", "demo-2")
    assert (first.base.tag, second.base.tag) == ("bookworm", "trixie")
    assert first.tags == ("1", "1-bookworm") and second.tags == ("2", "2-trixie")
    assert first.variables["greeting"] == "hello" and second.variables["greeting"] == "hi"
    assert second.variables["flavour"] == "plain"  # the entry's variables are shared
    # The variant named like its entry keeps the plain rendering and candidate tag.
    assert (first.dockerfile, first.candidate_tag) == (Path("dockerfiles/demo/Dockerfile"), "candidate")
    assert (second.dockerfile, second.candidate_tag) == (Path("dockerfiles/demo/Dockerfile.2"), "candidate-2")
    assert first.template == second.template and first.repository == second.repository
    lines = catalog.path.read_text().splitlines()
    assert second.catalog_line is not None and lines[second.catalog_line - 1] == "[[image.variant]]"


def test_each_variant_renders_its_own_file_from_the_one_template(make_repo: Callable[..., Path]) -> None:
    catalog = load_catalog(_catalog(make_repo))
    first, second = (render(spec, catalog.root) for spec in catalog.images)
    assert "FROM hardening/debian:bookworm" in first.text and "echo hello" in first.text
    assert "FROM hardening/debian:trixie" in second.text and "echo hi" in second.text
    assert second.path == Path("dockerfiles/demo/Dockerfile.2")
    assert "Image: demo-2." in second.text


def test_matrix_lists_every_variant(make_repo: Callable[..., Path]) -> None:
    entries = matrix_entries(load_catalog(_catalog(make_repo)))
    assert [(e.image, e.tags, e.category) for e in entries] == [
        ("demo", "1 1-bookworm", "hardening/demo"),
        ("demo-2", "2 2-trixie", "hardening/demo-2"),
    ]


def test_variants_and_entry_tags_exclude_each_other(make_repo: Callable[..., Path]) -> None:
    err = _error(
        make_repo,
        ENTRY.replace('repository = "hardening/demo"\n', 'repository = "hardening/demo"\ntags = ["x"]\n'),
    )
    assert "each variant names its tags" in err.message
    assert err.location is not None and err.location.field == "image[0].tags"
    assert _line(err) == 'tags = ["x"]'


def test_an_entry_without_variants_needs_tags(make_repo: Callable[..., Path]) -> None:
    plain = ENTRY.split("[[image.variant]]")[0]
    err = _error(make_repo, plain)
    assert err.location is not None and err.location.field == "image[0].tags"


def test_variant_errors_name_the_variant_line(make_repo: Callable[..., Path]) -> None:
    err = _error(
        make_repo, ENTRY.replace('variables = { greeting = "hi" }', 'variables = { greeting = "a;b" }')
    )
    assert err.location is not None and err.location.field == "image[0].variant[1].variables.greeting"
    assert _line(err) == 'variables = { greeting = "a;b" }'
    err = _error(make_repo, ENTRY.replace('base = "trixie"', 'base = "sid"'))
    assert "base 'sid' is not defined" in err.message
    assert err.location is not None and err.location.field == "image[0].variant[1].base"
    assert _line(err) == 'base = "sid"'
    err = _error(
        make_repo, ENTRY.replace('tags = ["2", "2-trixie"]', 'tags = ["2", "2-trixie"]\ncolour = "red"')
    )
    assert "unknown key" in err.message
    assert err.location is not None and err.location.field == "image[0].variant[1].colour"
    assert _line(err) == 'colour = "red"'


def test_variants_of_a_second_entry_count_from_zero(make_repo: Callable[..., Path]) -> None:
    other = ENTRY.replace('name = "demo"', 'name = "other"').replace("hardening/demo", "hardening/other")
    other = other.replace("dockerfiles/demo/", "dockerfiles/other/").replace('"hi"', '"a;b"')
    path = _catalog(make_repo, ENTRY + "\n" + other)
    (path.parent / "dockerfiles/other").mkdir()
    (path.parent / "dockerfiles/other/Dockerfile.j2").write_text("FROM {{ base_image }}\n")
    with pytest.raises(ConfigError) as info:
        load_catalog(path)
    assert info.value.location is not None
    assert info.value.location.field == "image[1].variant[1].variables.greeting"
    assert _line(info.value) == 'variables = { greeting = "a;b" }'
    assert info.value.location.line is not None and info.value.location.line > 30


def test_colliding_tags_and_names_are_refused(make_repo: Callable[..., Path]) -> None:
    err = _error(make_repo, ENTRY.replace('tags = ["2", "2-trixie"]', 'tags = ["2", "1"]'))
    assert "would tag hardening/demo:1, which image demo" in err.message
    err = _error(make_repo, ENTRY.replace('tags = ["2", "2-trixie"]', 'tags = ["candidate"]'))
    assert "hardening/demo:candidate" in err.message
    err = _error(make_repo, ENTRY.replace('base = "trixie"', 'name = "demo"\nbase = "trixie"'))
    assert "duplicate image name 'demo' (first defined in image[0].variant[0])" in err.message
    assert err.location is not None and err.location.field == "image[0].variant[1].name"


def test_a_derived_name_must_be_a_valid_image_name(make_repo: Callable[..., Path]) -> None:
    err = _error(make_repo, ENTRY.replace('tags = ["2", "2-trixie"]', 'tags = ["Two"]'))
    assert "'demo-Two'" in err.message
    assert err.location is not None and err.location.field == "image[0].variant[1].tags"


def test_two_entries_sharing_a_template_are_refused(make_repo: Callable[..., Path]) -> None:
    plain = ENTRY.split("[[image.variant]]")[0].replace(
        "[image.variables]", 'tags = ["1"]\n\n[image.variables]'
    )
    second = plain.replace('name = "demo"', 'name = "alpha"').replace("hardening/demo", "hardening/alpha")
    err = _error(make_repo, plain + "\n" + second)
    assert "would render to dockerfiles/demo/Dockerfile, like image demo" in err.message


def test_base_policies_must_exist(make_repo: Callable[..., Path]) -> None:
    base = TRIXIE.replace('suite = "trixie"\n', 'suite = "trixie"\npolicies = ["policies/nope.yaml"]\n')
    with pytest.raises(ConfigError) as info:
        load_catalog(make_repo(textwrap.dedent(ENTRY), base=base))
    assert "policy file policies/nope.yaml does not exist" in info.value.message
    assert info.value.location is not None and info.value.location.field == "base.trixie.policies"
    assert _line(info.value) == 'policies = ["policies/nope.yaml"]'


def test_postgres_template_takes_jit_as_a_boolean_only() -> None:
    from dataclasses import replace

    from hardening.errors import RenderError

    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    spec = next(s for s in catalog.images if s.name == "postgres-secure")
    assert "path-exclude=/usr/lib/postgresql/*/lib/bitcode/*" in render(spec, catalog.root).text
    with_jit = render(replace(spec, variables={**spec.variables, "jit": True}), catalog.root).text
    assert "path-exclude" not in with_jit and "'libllvm*'" not in with_jit and "jit = off" not in with_jit
    without = {k: v for k, v in spec.variables.items() if k != "jit"}
    default = render(replace(spec, variables=without), catalog.root).text
    assert default.splitlines()[3:] == render(spec, catalog.root).text.splitlines()[3:]  # off by default
    with pytest.raises(RenderError) as info:
        render(replace(spec, variables={**spec.variables, "jit": "false"}), catalog.root)
    assert "jit must be true or false, not false" in info.value.message
    assert info.value.location is not None and info.value.location.line is not None


def test_each_variant_builds_to_its_own_candidate_tag(
    make_repo: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace
    from typing import Any

    from hardening.build.docker import DockerBuilder
    from tests.unit.fakerun import seed_canonical

    # The fake engine's image counts as canonical already (the rewrite has tests of its own).
    seed_canonical(tmp_path / "repro-cache", monkeypatch, "sha256:" + "1" * 64)

    class Engine:
        def __init__(self) -> None:
            self.tags: list[str] = []

        def image(self, ref: str) -> Any:
            return SimpleNamespace(id="sha256:" + "1" * 64, size=1, layers=1, labels={})

        def build(self, *, tag: str | None, **_: Any) -> Any:
            assert tag is None  # only the canonical image is ever tagged
            return SimpleNamespace(image_id="sha256:" + "1" * 64)

        def tag(self, image: str, repository: str, tag: str) -> None:
            self.tags.append(f"{repository}:{tag}")

    catalog = load_catalog(_catalog(make_repo))
    engine = Engine()
    builder = DockerBuilder(engine)  # type: ignore[arg-type]
    refs = [
        builder.build(spec, render(spec, catalog.root), root=catalog.root, labels={}).candidate_ref
        for spec in catalog.images
    ]
    assert refs == engine.tags == ["hardening/demo:candidate", "hardening/demo:candidate-2"]
