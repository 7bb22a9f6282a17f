"""Our side of `inspect_facts.py`: facts and package floors of one saved image.

    .venv/bin/python -P bench/inspect_facts_ours.py TAR IMAGE [FACTS_CACHE_DIR]
    .venv/bin/python -P bench/inspect_facts_ours.py --facts-only TAR REFERENCE FACTS_CACHE_DIR [NAME ...]

`inspect_facts.py` runs this file as the fresh process it times, so that the process imports
what `harden` needs and nothing of the benchmark's own harness (argparse, statistics, the Trivy
package it takes the peer's flags from): from interpreter start to the counts printed, the same
span `trivy image` is timed over. It imports `ours` for its in-process figures too.

The work is the same as before 2026-12-02; what it imports changed with the code: the catalog
and the policies are validated by `hardening.strict` instead of pydantic (same rules, same
errors), and `binary_names` is taken from `hardening.policy.config`, where it moved from
`hardening.policy.service` (whose rendering, run-store and engine modules this work never used).

`--facts-only` is the facts-cache lookup alone, given the reference and the binary names that
`ours` takes from the catalog and the image's policies: printed beside the ratio, it shows how
much of our time is the inspector and how much is reading and validating the configuration.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def ours(tar: Path, image: str, cache_dir: Path | None) -> dict[str, int]:
    """Facts and package floors of one saved image, as `harden run` computes them."""
    from hardening.catalog import load_catalog
    from hardening.inspect.cache import inspect_cached
    from hardening.policy.config import binary_names, load_policies
    from hardening.policy.interface import ImageContext
    from hardening.policy.package_floors import PackageFloors

    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    (spec,) = catalog.select([image])
    policy = load_policies(catalog.root, spec.policies)
    facts = inspect_cached(
        tar,
        reference=spec.candidate_ref,
        binary_names=binary_names(policy),
        cache_dir=cache_dir,
    )
    config = policy.config_of(PackageFloors)
    floors = PackageFloors().check_image(ImageContext(image, config, facts)) if config else []
    return {
        "dpkg": len(facts.dpkg_packages),
        "python": sum(len(env.distributions) for env in facts.python_envs),
        "users": len(facts.passwd),
        "floors_below": len(floors),
    }


def facts_only(tar: Path, reference: str, cache_dir: Path, names: list[str]) -> dict[str, int]:
    """The facts-cache lookup of ``ours`` without the catalog, the policies and the floors."""
    from hardening.inspect.cache import inspect_cached

    facts = inspect_cached(tar, reference=reference, binary_names=names, cache_dir=cache_dir)
    return {
        "dpkg": len(facts.dpkg_packages),
        "python": sum(len(env.distributions) for env in facts.python_envs),
        "users": len(facts.passwd),
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--facts-only"] and len(argv) >= 4:
        counts = facts_only(Path(argv[1]), argv[2], Path(argv[3]), argv[4:])
    elif len(argv) in (2, 3):
        counts = ours(Path(argv[0]), argv[1], Path(argv[2]) if len(argv) == 3 else None)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
