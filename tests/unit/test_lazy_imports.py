"""Heavy libraries load where they are used, not where a module is merely imported.

`harden --help` (and every subcommand's), a facts-cache hit and the modules other modules
import for their types must not load pydantic, jinja2, the docker SDK, PyYAML and the like: that
import time is most of what a short `harden` run costs (bench/inspect_facts.py measures it).
Facts and package floors from a cached image, with the catalog and the policies validated, load
only the two libraries that work needs (PyYAML for the policy files, packaging for versions):
the catalog and policy schemas are hardening.strict's, not pydantic models.
Checked by what a fresh interpreter holds in ``sys.modules``, never by timing, so a new
top-level import that undoes it fails here instead of going unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hardening.cli import COMMANDS
from hardening.inspect.cache import inspect_cached
from tests.conftest import REPO_ROOT
from tests.unit.imagetar import legacy_save
from tests.unit.test_inspect_facts import BASE

HEAVY = (
    "docker",
    "jinja2",
    "jsonschema",
    "packaging",
    "pydantic",
    "pydantic_core",
    "requests",
    "sarif_om",
    "yaml",
)
REFERENCE = "example/app:1"


def modules_after(code: str, *args: str) -> tuple[set[str], str]:
    """Modules a fresh interpreter holds after running ``code`` (full dotted names), and its output."""
    wrapped = f"{code}\nimport json as _j, sys as _s\nprint('MODULES=' + _j.dumps(sorted(_s.modules)))\n"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", wrapped, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    *before, last = result.stdout.rstrip("\n").split("\n")
    assert last.startswith("MODULES="), result.stdout
    return set(json.loads(last.removeprefix("MODULES="))), "\n".join(before)


def heavy(modules: set[str]) -> list[str]:
    return sorted({name.split(".")[0] for name in modules}.intersection(HEAVY))


def test_help_of_harden_and_of_every_command_loads_no_heavy_library() -> None:
    names = [command.name for command in COMMANDS]
    code = (
        "import sys\n"
        "from hardening.cli import main\n"
        f"for argv in [['--help'], *[[name, '--help'] for name in {names!r}]]:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (argv, exc.code)\n"
    )
    loaded, out = modules_after(code)
    assert "Usage: harden" in out
    assert all(f"harden {name}" in out for name in names)
    assert heavy(loaded) == []


def test_a_facts_cache_hit_loads_no_heavy_library_and_not_the_layer_reader(tmp_path: Path) -> None:
    tar = tmp_path / "image.tar"
    tar.write_bytes(legacy_save([BASE]))
    cache_dir = tmp_path / "cache"
    expected = inspect_cached(tar, reference=REFERENCE, cache_dir=cache_dir)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import hardening.inspect.cache as cache\n"
        "def _no_full_read(*args, **kwargs):\n"
        "    raise AssertionError('the cache missed: the image was read again')\n"
        "cache.inspect_image_tar = _no_full_read\n"
        "tar, reference, cache_dir = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])\n"
        "facts = cache.inspect_cached(tar, reference=reference, cache_dir=cache_dir)\n"
        "print(facts.image_id, len(facts.dpkg_packages))\n"
    )
    loaded, out = modules_after(code, str(tar), REFERENCE, str(cache_dir))
    assert out == f"{expected.image_id} {len(expected.dpkg_packages)}"
    assert heavy(loaded) == []
    assert "click" not in loaded  # the library never needs the CLI's framework
    # Only the outer archive's headers and JSON are read: the layer reader is not even loaded.
    assert (
        sorted(loaded & {f"hardening.inspect.tarfs.{m}" for m in ("archive", "layer", "merge", "view")}) == []
    )


def test_facts_and_package_floors_from_the_cache_load_no_pydantic_and_no_dockerfile_code(
    tmp_path: Path,
) -> None:
    """What bench/inspect_facts.py times against Trivy: the catalog and the image's policies
    loaded and validated, the facts from the cache, the package floors evaluated."""
    from hardening.catalog import load_catalog
    from hardening.policy.config import binary_names, load_policies

    tar = tmp_path / "image.tar"
    tar.write_bytes(legacy_save([BASE]))
    cache_dir = tmp_path / "cache"
    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    (spec,) = catalog.select(["python-secure"])
    names = binary_names(load_policies(catalog.root, spec.policies))
    inspect_cached(tar, reference=REFERENCE, binary_names=names, cache_dir=cache_dir)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import hardening.inspect.cache as cache\n"
        "from hardening.catalog import load_catalog\n"
        "from hardening.errors import PolicyError\n"
        "from hardening.policy.config import binary_names, load_policies, parse_policy\n"
        "from hardening.policy.interface import ImageContext\n"
        "from hardening.policy.package_floors import PackageFloors\n"
        "def _no_full_read(*args, **kwargs):\n"
        "    raise AssertionError('the cache missed: the image was read again')\n"
        "cache.inspect_image_tar = _no_full_read\n"
        "tar, reference, cache_dir = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])\n"
        "catalog = load_catalog(Path('hardening.toml'))\n"
        "(spec,) = catalog.select(['python-secure'])\n"
        "policy = load_policies(catalog.root, spec.policies)\n"
        "facts = cache.inspect_cached(\n"
        "    tar, reference=reference, binary_names=binary_names(policy), cache_dir=cache_dir\n"
        ")\n"
        "config = policy.config_of(PackageFloors)\n"
        "floors = PackageFloors().check_image(ImageContext(spec.name, config, facts))\n"
        "print([finding.rule_id for finding in floors])\n"
        "try:\n"
        "    parse_policy('version: 2\\nchecks: {non_root: {severty: high}}\\n', 'p.yaml')\n"
        "except PolicyError as exc:\n"
        "    print(exc)\n"
    )
    loaded, out = modules_after(code, str(tar), REFERENCE, str(cache_dir))
    floors, error = out.split("\n")
    assert floors == "['HARDEN-FLOOR-SETUPTOOLS', 'HARDEN-FLOOR-PIP']"
    assert error == "p.yaml:1: version: Input should be 1 (and 1 more)"
    assert heavy(loaded) == ["packaging", "yaml"]
    assert "msgspec" not in loaded
    # The policy checks' Dockerfile side stays unloaded, and so does the service around them.
    assert sorted(loaded & {"hardening.dockerfile", "hardening.locate", "hardening.render"}) == []
    assert "hardening.policy.service" not in loaded


@pytest.mark.parametrize(
    "module",
    ["hardening.catalog", "hardening.render", "hardening.inspect.facts", "hardening.scan.trivy"],
)
def test_modules_imported_for_their_types_load_no_heavy_library(module: str) -> None:
    loaded, _ = modules_after(f"import {module}")
    assert heavy(loaded) == []
