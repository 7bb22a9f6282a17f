"""Policy checks on real images built FROM the project's base: what ships is what is checked."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hardening.engine.client import Engine
from hardening.findings import Finding
from hardening.policy.config import binary_names, load_policies
from hardening.policy.service import check_ref, dockerfile_as_rendered, inspect_ref, run_checks

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
POLICIES = [Path("policies/default.yaml")]
SETUID_IN_BASE = ("/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount")

Built = tuple[str, list[Finding]]


@pytest.fixture(scope="module")
def build_and_check(
    engine: Engine, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Built]]:
    """Build a Dockerfile (``{base}`` = the base image), inspect the image, run the default policy."""
    made: list[str] = []
    policy = load_policies(REPO, POLICIES)
    # The project's base clears its setuid bits; a stand-in for a base that keeps them (as
    # Debian's own images do) shows where inherited setuid programs are located.
    setuid_context = tmp_path_factory.mktemp("setuid-base")
    (setuid_context / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN chmod 4755 {' '.join(SETUID_IN_BASE)}\n"
    )
    setuid_base = f"hardening-test/setuid-base:{secrets.token_hex(4)}"
    engine.build(context=setuid_context, dockerfile="Dockerfile", tag=setuid_base, labels={})
    made.append(setuid_base)

    def build(body: str) -> Built:
        context = tmp_path_factory.mktemp("image")
        (context / "Dockerfile").write_text(body.format(base=base_image, setuid_base=setuid_base))
        tag = f"hardening-test/policy:{secrets.token_hex(4)}"
        engine.build(context=context, dockerfile="Dockerfile", tag=tag, labels={})
        made.append(tag)
        facts = inspect_ref(engine, tag, names=binary_names(policy))
        rendered = dockerfile_as_rendered(context / "Dockerfile")
        return tag, list(run_checks(policy, image=tag, facts=facts, rendered=rendered))

    yield build
    for tag in reversed(made):  # children before the stand-in base they are built on
        engine.remove_image(tag)


def only(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule]


def test_user_0_0_fails_and_env_secret_is_found(build_and_check: Callable[[str], Built]) -> None:
    _, findings = build_and_check(
        "FROM {base}\nENV DB_PASSWORD=hunter2 DB_PASSWORD_FILE=/run/secrets/db\nUSER 0:0\n"
        "HEALTHCHECK CMD true\n"
    )
    root = only(findings, "HARDEN-USER-ROOT")
    assert len(root) == 1 and root[0].location is not None and root[0].location.line == 3
    assert "USER 0:0 runs containers as root" in root[0].message
    secret = only(findings, "HARDEN-SECRET-ENV")
    assert [f.image_path for f in secret] == ["config:Env/DB_PASSWORD"]
    assert secret[0].location is not None and secret[0].location.line == 2
    assert all("hunter2" not in f.message for f in findings)


def test_final_stage_without_user_on_the_root_base_fails(build_and_check: Callable[[str], Built]) -> None:
    _, findings = build_and_check(
        "FROM {base} AS builder\nUSER 65534\nFROM {base}\nRUN mkdir /srv/app\nHEALTHCHECK CMD true\n"
    )
    root = only(findings, "HARDEN-USER-ROOT")
    assert len(root) == 1 and "sets no USER" in root[0].message
    assert root[0].location is not None and root[0].location.line == 3  # the final FROM


def test_debian_setuptools_next_to_a_fixed_venv(build_and_check: Callable[[str], Built]) -> None:
    venv = "/opt/venv/lib/python3.11/site-packages/setuptools-80.9.0.dist-info"
    _, findings = build_and_check(
        "FROM {base}\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends python3-setuptools gosu \\\n"
        " && rm -rf /var/lib/apt/lists/* \\\n"
        ' && mv "$(command -v gosu)" /usr/local/bin/runas\n'
        f"RUN mkdir -p {venv} \\\n"
        f" && printf 'Metadata-Version: 2.1\\nName: setuptools\\nVersion: 80.9.0\\n' > {venv}/METADATA\n"
        "USER 65534:65534\nHEALTHCHECK CMD true\n"
    )
    floors = only(findings, "HARDEN-FLOOR-SETUPTOOLS")
    assert [f.image_path for f in floors] == ["/usr/lib/python3/dist-packages"]
    assert floors[0].installed_version is not None and floors[0].installed_version.startswith("66.")
    assert "in /usr/lib/python3/dist-packages is below the floor" in floors[0].message
    assert floors[0].location is not None and floors[0].location.line == 2  # names python3-setuptools
    # Debian's gosu is a Go binary: renamed, it is still found through its build info.
    gosu = only(findings, "HARDEN-BINARY-FORBIDDEN")
    assert [f.image_path for f in gosu] == ["/usr/local/bin/runas"]
    assert "github.com/tianon/gosu" in gosu[0].message
    assert gosu[0].location is not None and gosu[0].location.line == 2  # the layer's RUN
    assert gosu[0].layer is not None


def test_gosu_deleted_in_a_later_layer_is_not_reported(build_and_check: Callable[[str], Built]) -> None:
    _, findings = build_and_check(
        "FROM {base}\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends gosu \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
        'RUN rm "$(command -v gosu)"\n'
        "USER 65534\nHEALTHCHECK CMD true\n"
    )
    assert only(findings, "HARDEN-BINARY-FORBIDDEN") == []
    assert only(findings, "HARDEN-USER-ROOT") == []


def test_check_ref_on_a_built_image(
    build_and_check: Callable[[str], Built], engine: Engine, tmp_path: Path
) -> None:
    tag, _ = build_and_check("FROM {setuid_base}\nUSER 65534\n")
    report = check_ref(tag, engine, [REPO / "policies/default.yaml"], tmp_path)
    rules = {f.rule_id for f in report.findings}
    # A base that keeps its setuid programs (su, passwd …) passes them on; images must clear them.
    assert rules == {"HARDEN-HEALTHCHECK-MISSING", "HARDEN-SETUID"}
    assert "/usr/bin/su" in {f.image_path for f in report.findings}
    assert all(f.location is None for f in report.findings)  # no Dockerfile to point into
    assert not report.failed  # medium and low are below the default fail level
    assert list(tmp_path.glob("*/check.json"))


def test_base_files_are_located_on_from_under_a_custom_shell(build_and_check: Callable[[str], Built]) -> None:
    # hadolint's DL4006 advice (SHELL with pipefail) makes the engine write the shell in front of
    # every later history entry; the base's setuid programs still point at FROM, even the one
    # a RUN names.
    _, findings = build_and_check(
        "FROM {setuid_base}\n"
        'SHELL ["/bin/bash", "-o", "pipefail", "-c"]\n'
        "RUN passwd --lock root && install -m 4755 /bin/true /usr/local/bin/elevate\n"
        "USER 65534\nHEALTHCHECK CMD true\n"
    )
    setuid = {f.image_path: f for f in only(findings, "HARDEN-SETUID")}
    assert set(SETUID_IN_BASE) <= set(setuid)
    lines = {path: f.location.line for path, f in setuid.items() if f.location is not None}
    assert lines.pop("/usr/local/bin/elevate") == 3  # made by the RUN
    assert set(lines.values()) == {1}, lines  # everything else came with the base
