"""Where `harden db pull` looks: --repository, else $HARDENING_DB_REPOSITORIES, else the catalog's
``[db] repositories``, else the two public defaults — one list, taken whole, never merged.

Closed loopback ports stand in for the repositories: each attempt is printed, so the output
says which list was used, without a registry.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hardening.catalog import load_catalog
from hardening.errors import ConfigError
from tests.conftest import catalog_text
from tests.registry.server import free_port
from tests.unit.test_db_cli import run

IMAGE = """\
[[image]]
name = "demo"
template = "dockerfiles/demo/Dockerfile.j2"
repository = "hardening/demo"
tags = ["1"]
"""


def _catalog(root: Path, db_table: str) -> Path:
    (root / "dockerfiles" / "demo").mkdir(parents=True)
    (root / "dockerfiles" / "demo" / "Dockerfile.j2").write_text("FROM {{ base_image }}\n")
    catalog = root / "hardening.toml"
    catalog.write_text(catalog_text(IMAGE) + "\n" + textwrap.dedent(db_table))
    return catalog


def _repository() -> str:
    return f"127.0.0.1:{free_port()}/mirror/trivy-db:2"


def test_the_catalog_names_the_sites_mirror_and_env_and_option_replace_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror, upstream, from_env, from_option = (_repository() for _ in range(4))
    catalog = _catalog(tmp_path / "repo", f'[db]\nrepositories = ["{mirror}", "{upstream}"]\n')
    assert load_catalog(catalog).db_repositories == (mirror, upstream)
    pull = ["--catalog", str(catalog), "db", "pull", "--cache-dir", str(tmp_path / "cache")]
    monkeypatch.delenv("HARDENING_DB_REPOSITORIES", raising=False)

    code, output = run(pull, capsys)
    assert code == 3, output
    assert output.index(f"{mirror}: unreachable") < output.index(f"{upstream}: unreachable")
    assert "(2 tried)" in output

    monkeypatch.setenv("HARDENING_DB_REPOSITORIES", from_env)
    code, output = run(pull, capsys)
    assert code == 3 and f"{from_env}: unreachable" in output and mirror not in output

    code, output = run([*pull, "--repository", from_option], capsys)
    assert code == 3 and f"{from_option}: unreachable" in output
    assert from_env not in output and mirror not in output

    # An unset repository variable reaches harden as an empty string: the catalog's list again.
    monkeypatch.setenv("HARDENING_DB_REPOSITORIES", "")
    code, output = run(pull, capsys)
    assert code == 3 and f"{mirror}: unreachable" in output


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("[db]\nrepositories = []\n", "db.repositories"),
        ('[db]\nrepositories = ["https://ghcr.io/aquasecurity/trivy-db:2"]\n', "db.repositories[0]"),
        ('[db]\nrepositories = ["ghcr.io/x/trivy-db:2 --insecure"]\n', "db.repositories[0]"),
        ('[db]\nrepositories = ["ghcr.io/x/trivy-db:2"]\nmirror = "ghcr.io/x/trivy-db:2"\n', "db.mirror"),
        ("[db]\n", "db.repositories"),
    ],
)
def test_a_bad_repository_list_names_the_catalog_line_and_key(tmp_path: Path, table: str, field: str) -> None:
    catalog = _catalog(tmp_path, table)
    with pytest.raises(ConfigError) as caught:
        load_catalog(catalog)
    assert caught.value.location is not None
    assert caught.value.location.field == field
    assert caught.value.location.line is not None


def test_the_default_catalog_keeps_the_public_defaults() -> None:
    from tests.conftest import REPO_ROOT

    assert load_catalog(REPO_ROOT / "hardening.toml").db_repositories == ()
