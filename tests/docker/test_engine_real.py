"""The foundation on the real thing: engine, base image, a build FROM it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hardening.base import LABEL_PREFIX
from hardening.build.interface import BuildResult
from hardening.build.service import LineSink, build_images
from hardening.catalog import Catalog, load_catalog
from hardening.engine.client import Engine
from hardening.engine.provision import engine_status, engine_up
from hardening.render import render_checked
from hardening.run.store import RunDir, new_run_dir
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.docker


def _dockerd_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if Path(argv0.decode(errors="replace")).name == "dockerd":
                pids.append(int(entry.name))
    return pids


def test_engine_up_twice_leaves_one_daemon(engine: Engine) -> None:
    before = _dockerd_pids()
    first = engine_up()
    second = engine_up()
    assert first.answering and second.answering
    assert _dockerd_pids() == before
    assert len(before) == 1
    assert engine_status().answering


def test_engine_up_cli_is_idempotent(engine: Engine) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hardening", "engine", "up"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "already answers" in result.stdout


def test_base_image_is_labelled_slim_and_runs(engine: Engine, base_image: str) -> None:
    info = engine.image(base_image)
    assert info is not None
    labels = info.labels
    assert labels[f"{LABEL_PREFIX}.suite"] == "bookworm"
    assert labels[f"{LABEL_PREFIX}.mirror"].startswith("http")
    assert int(labels[f"{LABEL_PREFIX}.packages"]) > 50
    assert labels[f"{LABEL_PREFIX}.builder-version"]
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert info.size <= 80 * 1000 * 1000, f"base image is {info.size / 1e6:.1f} MB, goal 80 MB"
    code, output = engine.run(base_image, ["true"])
    assert code == 0, output
    # Slim: no apt lists, no cached debs, docs only as copyright files, no man pages.
    script = (
        'test -z "$(ls /var/lib/apt/lists | grep -v -e partial -e lock)" && '
        "test -z \"$(find /var/cache/apt -name '*.deb')\" && "
        'test -z "$(find /usr/share/doc -type f ! -name copyright)" && '
        'test -z "$(ls /usr/share/man 2>/dev/null)" && '
        "test -f /etc/dpkg/dpkg.cfg.d/90-hardening-slim && echo slim"
    )
    code, output = engine.run(base_image, ["sh", "-c", script])
    assert code == 0 and "slim" in output, output


def test_base_is_not_rebuilt_when_labels_match(engine: Engine, base_image: str) -> None:
    before = engine.image(base_image)
    result = subprocess.run(
        [sys.executable, "-m", "hardening", "--catalog", str(REPO_ROOT / "hardening.toml"), "base"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    after = engine.image(base_image)
    assert before is not None and after is not None and before.id == after.id


def _build(
    catalog: Catalog, engine: Engine, run: RunDir, sink: Callable[[str], LineSink] | None = None
) -> list[BuildResult]:
    """What `harden build` does: the render check, then the build."""
    rendered = {spec.name: render_checked(spec, catalog.root) for spec in catalog.images}
    return build_images(
        catalog.images, rendered, engine, run, root=catalog.root, source=catalog.source, sink=sink
    )


def test_rendered_template_builds_from_base(
    engine: Engine, base_image: str, make_repo: Callable[..., Path]
) -> None:
    catalog = load_catalog(make_repo())
    from hardening.render import render, write_rendered

    spec = catalog.images[0]
    write_rendered(render(spec, catalog.root), catalog.root)
    run = new_run_dir(catalog.output_dir)
    lines: list[str] = []
    (result,) = _build(catalog, engine, run, sink=lambda _label: lines.append)
    try:
        info = engine.image(result.candidate_ref)
        assert info is not None and info.id == result.image_id
        assert info.user == "10001:10001"
        for key in ("created", "revision", "source", "version", "title", "base.name"):
            assert f"org.opencontainers.image.{key}" in info.labels or key in {"source", "revision"}
        assert info.labels["org.opencontainers.image.base.name"] == base_image
        assert info.labels["org.hardening.base.id"] == result.base_id
        code, output = engine.run(result.candidate_ref, ["cat", "/greeting"])
        assert (code, output.strip()) == (0, "hello")
        record = run.image_dir("demo") / "build.json"
        assert record.is_file()
        assert any(line.startswith("Step 1/") for line in lines)
    finally:
        engine.remove_image(result.candidate_ref)


def test_failed_build_leaves_no_candidate_and_no_containers(
    engine: Engine, base_image: str, make_repo: Callable[..., Path]
) -> None:
    from hardening.errors import BuildError
    from hardening.render import render, write_rendered

    catalog = load_catalog(make_repo(template="FROM {{ base_image }}\nRUN echo {{ greeting }} && false\n"))
    spec = catalog.images[0]
    write_rendered(render(spec, catalog.root), catalog.root)
    containers_before = subprocess.run(
        ["docker", "ps", "-aq"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()
    with pytest.raises(BuildError) as info:
        _build(catalog, engine, new_run_dir(catalog.output_dir))
    assert "step 2/" in info.value.message.lower()
    assert "RUN echo hello && false" in info.value.message
    assert info.value.exit_code == 3
    assert engine.image(f"{spec.repository}:candidate") is None
    containers_after = subprocess.run(
        ["docker", "ps", "-aq"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()
    assert set(containers_after) <= set(containers_before) | _concurrent(containers_after, containers_before)


def _concurrent(after: list[str], before: list[str]) -> set[str]:
    """Containers other test sessions may have started meanwhile are not ours to count."""
    if os.environ.get("CI"):
        return set()
    return set(after) - set(before)


def test_malformed_dockerfile_exits_2(
    engine: Engine, base_image: str, make_repo: Callable[..., Path]
) -> None:
    from hardening.errors import DockerfileError
    from hardening.render import render, write_rendered

    catalog = load_catalog(make_repo(template="FROM {{ base_image }}\nFROBNICATE {{ greeting }}\n"))
    write_rendered(render(catalog.images[0], catalog.root), catalog.root)
    with pytest.raises(DockerfileError) as info:
        _build(catalog, engine, new_run_dir(catalog.output_dir))
    assert info.value.exit_code == 2
