"""What making an image canonical costs, per catalog image, against the build it follows.

    .venv/bin/python bench/normalise_cost.py [--runs 5] [--image NAME]... [--uncached]

For each catalog image the engine builds it once from the committed rendering (cached by default;
with ``--uncached`` every step runs again, which is what a release build or a rebuild pays) under
a private tag, exactly as `harden build` does before it normalises. Then, ``--runs`` times, that
engine image is normalised as `harden build` does (``hardening.repro.image.normalise_image``) with
an empty memory of earlier rewrites, so every run saves, reads, rewrites and loads: the whole cost
of a build whose engine image is new. Printed per image: every run, the median of each phase
(archive state fetched from the mirror, ``docker save``, the read of packages and owned paths, the
rewrite, ``docker load``) and of the total, and the total against the engine build's own time.

Why it is fair: the same engine image is normalised every run, the engine build is the one
`harden build` runs, and nothing is remembered between runs. A warm build of an unchanged tree
pays none of this (the rewrite is remembered by the engine's image id): that case is
`run_warm.py`'s. Everything created is under `hardening-bench/` and removed at the end.
Exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import tempfile
import time
from pathlib import Path

from hardening.base import is_current, resolve_mirrors
from hardening.build.identity import oci_labels, source_identity
from hardening.build.service import prepare_context
from hardening.catalog import load_catalog
from hardening.engine.client import Engine
from hardening.errors import HardeningError
from hardening.render import render_checked
from hardening.repro.archivestate import observe_archive
from hardening.repro.image import normalise_image
from hardening.repro.inputs import source_date_epoch

REPO_ROOT = Path(__file__).resolve().parents[1]
PREFIX = "hardening-bench"
PHASES = ("archive", "save", "read", "rewrite", "load")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", action="append", default=[])
    parser.add_argument("--uncached", action="store_true", help="build every step again first")
    args = parser.parse_args()
    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    engine = Engine.connect()
    identity = source_identity(REPO_ROOT)
    created: list[str] = []
    print(f"{'image':<24} {'engine build':>12} {'normalise (median)':>19} {'ratio':>6}  phases (median s)")
    try:
        for spec in catalog.select(args.image):
            base_info = engine.image(spec.base.ref)
            mirror, security = resolve_mirrors(spec.base)
            if base_info is None or not is_current(dict(base_info.labels), spec.base, mirror):
                print(f"{spec.name}: skipped, base {spec.base.ref} missing or stale (run `harden base`)")
                continue
            rendered = render_checked(spec, catalog.root)
            prepare_context(spec, catalog.root)
            labels = {
                **oci_labels(spec, rendered, source=catalog.source, identity=identity),
                "org.opencontainers.image.base.name": spec.base.ref,
                "org.hardening.base.id": base_info.id,
            }
            raw_tag = f"{PREFIX}/{spec.name}:raw"
            started = time.perf_counter()
            output = engine.build(
                context=catalog.root / spec.context_dir,
                dockerfile=rendered.path.name,
                tag=raw_tag,
                labels=labels,
                nocache=args.uncached,
            )
            build_seconds = time.perf_counter() - started
            created += [raw_tag, f"{PREFIX}/{spec.name}:normalised"]
            totals: list[float] = []
            phases: dict[str, list[float]] = {phase: [] for phase in PHASES}
            for run in range(args.runs):
                with tempfile.TemporaryDirectory(prefix="hardening-bench-") as memory:
                    started = time.perf_counter()
                    result = normalise_image(
                        engine,
                        output.image_id,
                        repository=f"{PREFIX}/{spec.name}",
                        tag="normalised",
                        epoch=source_date_epoch(labels),
                        keep=base_info.layers,
                        observe=functools.partial(observe_archive, spec.base.suite, mirror, security),
                        cache_dir=Path(memory),
                    )
                    totals.append(time.perf_counter() - started)
                for phase in PHASES:
                    phases[phase].append(result.seconds.get(phase, 0.0))
                print(f"  {spec.name} run {run + 1}: {totals[-1]:.2f} s", flush=True)
            median = statistics.median(totals)
            detail = ", ".join(f"{phase} {statistics.median(values):.2f}" for phase, values in phases.items())
            state = "uncached" if args.uncached else "cached"
            print(
                f"{spec.name:<24} {build_seconds:>9.1f} s ({state}) {median:>8.2f} s "
                f"{median / build_seconds:>9.2f}  {detail}"
            )
    finally:
        for ref in reversed(created):
            with contextlib.suppress(HardeningError):
                engine.remove_image(ref)


if __name__ == "__main__":
    main()
