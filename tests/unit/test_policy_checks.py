"""Every check: a passing and a failing case on synthetic ImageFacts and Dockerfiles."""

from __future__ import annotations

from pathlib import Path

from hardening.findings import Origin, Severity, SourceLocation
from hardening.inspect.facts import (
    Anomaly,
    AnomalyKind,
    Binary,
    BinaryMatch,
    GoBuildInfo,
    GoModule,
    HealthCheck,
    HistoryEntry,
    PythonDistribution,
    PythonEnvironment,
    SpecialFile,
    WritableDirectory,
)
from hardening.policy.config import Policy
from hardening.policy.interface import CheckConfig
from hardening.policy.options import NoOptions
from hardening.policy.package_floors import Floor, Floors
from hardening.policy.registry import CheckId
from hardening.policy.secrets import secret_name
from tests.unit.test_policy_support import config, facts, layers, rules, run

FINAL = "FROM hardening/debian:bookworm\nRUN true\nUSER 10001:10001\nHEALTHCHECK CMD true\n"


# -- non-root -----------------------------------------------------------------------------


def test_non_root_passes_for_an_existing_non_root_user() -> None:
    assert run(CheckId.NON_ROOT, image_facts=facts(), dockerfile=FINAL) == []
    assert run(CheckId.NON_ROOT, image_facts=facts(config=config(user="app"))) == []


def test_non_root_flags_every_root_spelling() -> None:
    for user in ("0", "root", "root:root", "0:0", "", "0:10001"):
        found = run(CheckId.NON_ROOT, image_facts=facts(config=config(user=user)))
        assert rules(found) == ["HARDEN-USER-ROOT"], user
        assert found[0].origin is Origin.POLICY and found[0].severity is Severity.HIGH
    empty = run(CheckId.NON_ROOT, image_facts=facts(config=config(user="")))
    assert "sets no USER" in empty[0].message


def test_non_root_flags_a_user_missing_from_the_image() -> None:
    found = run(CheckId.NON_ROOT, image_facts=facts(config=config(user="postgres")))
    assert rules(found) == ["HARDEN-USER-UNKNOWN"]
    # A numeric uid need not exist (the engine accepts it) and is not root.
    assert run(CheckId.NON_ROOT, image_facts=facts(config=config(user="4242"))) == []


def test_non_root_points_at_the_user_line() -> None:
    found = run(
        CheckId.NON_ROOT,
        image_facts=facts(config=config(user="0")),
        dockerfile=FINAL.replace("10001:10001", "0"),
    )
    assert found[0].location == SourceLocation("dockerfiles/demo/Dockerfile", 3)
    assert found[0].template_location == SourceLocation("dockerfiles/demo/Dockerfile.j2", 3)
    assert len(found) == 1  # the static finding on the same line is not repeated


def test_non_root_static_user_through_arg_default() -> None:
    text = "FROM a:1 AS b\nUSER 1\nFROM hardening/debian:bookworm\nARG RUNAS=root\nUSER ${RUNAS}\n"
    found = run(CheckId.NON_ROOT, dockerfile=text)
    assert rules(found) == ["HARDEN-USER-DOCKERFILE-ROOT"]
    assert found[0].location is not None and found[0].location.line == 5
    assert "expands to 'root'" in found[0].message
    # Built with --build-arg RUNAS=app the image is fine, but the default still is a trap.
    found = run(CheckId.NON_ROOT, image_facts=facts(config=config(user="app")), dockerfile=text)
    assert rules(found) == ["HARDEN-USER-DOCKERFILE-ROOT"]


def test_non_root_static_missing_user_and_passing_user() -> None:
    found = run(CheckId.NON_ROOT, dockerfile="FROM a:1\nRUN true\n")
    assert rules(found) == ["HARDEN-USER-DOCKERFILE-ROOT"]
    assert found[0].location is not None and found[0].location.line == 1
    assert run(CheckId.NON_ROOT, dockerfile="FROM a:1\nARG U=app\nUSER $U\n") == []


# -- package floors -----------------------------------------------------------------------

SETUPTOOLS = Floor("setuptools", "75", "old", ("CVE-2024-6345", "CVE-2025-47273"))
PIP = Floor("pip", "24.3")


def env(path: str, **versions: str) -> PythonEnvironment:
    return PythonEnvironment(
        path,
        tuple(PythonDistribution(n, v, f"{path}/{n}-{v}.dist-info") for n, v in sorted(versions.items())),
    )


def test_floors_pass_when_every_environment_is_new_enough_or_lacks_the_package() -> None:
    envs = (
        env("/opt/venv/lib/python3.11/site-packages", setuptools="75.8.0", pip="24.3.1"),
        env("/x/site-packages"),
    )
    assert run(CheckId.PACKAGE_FLOORS, image_facts=facts(python_envs=envs), floors=(SETUPTOOLS, PIP)) == []


def test_floors_flag_the_old_copy_next_to_a_fixed_venv() -> None:
    envs = (
        env("/opt/venv/lib/python3.11/site-packages", setuptools="75.8.0", pip="25.0"),
        env("/usr/lib/python3/dist-packages", setuptools="66.1.1", pip="23.0.1"),
    )
    found = run(
        CheckId.PACKAGE_FLOORS,
        image_facts=facts(python_envs=envs),
        floors=(SETUPTOOLS, PIP),
        dockerfile="FROM hardening/debian:bookworm\nRUN apt-get install -y python3-setuptools python3-pip\n",
    )
    assert rules(found) == ["HARDEN-FLOOR-SETUPTOOLS", "HARDEN-FLOOR-PIP"]
    first = found[0]
    assert first.message == (
        "setuptools 66.1.1 in /usr/lib/python3/dist-packages is below the floor 75 "
        "(CVE-2024-6345, CVE-2025-47273)"
    )
    assert (first.package, first.installed_version, first.fixed_version) == ("setuptools", "66.1.1", "75")
    assert first.image_path == "/usr/lib/python3/dist-packages"
    assert first.location is not None and first.location.line == 2
    assert first.description == "old"


def test_floors_flag_an_unparseable_version() -> None:
    envs = (env("/e/site-packages", pip="not-a-version"),)
    found = run(CheckId.PACKAGE_FLOORS, image_facts=facts(python_envs=envs), floors=(PIP,))
    assert rules(found) == ["HARDEN-FLOOR-PIP"] and "cannot be compared" in found[0].message


# -- forbidden binaries and build tools ---------------------------------------------------

GOSU = GoBuildInfo(
    "go1.19.8", "github.com/tianon/gosu", GoModule("github.com/tianon/gosu", "(devel)"), (), ()
)


def test_forbidden_binaries_by_name_and_by_go_build_info() -> None:
    binaries = (
        Binary("/usr/local/bin/runas", "gosu", (BinaryMatch.GO_BUILDINFO,), 1, GOSU),
        Binary("/usr/sbin/gosu", "gosu", (BinaryMatch.NAME,), 1),
        Binary("/usr/local/bin/su-exec", "su-exec", (BinaryMatch.NAME,), 1),
    )
    found = run(
        CheckId.FORBIDDEN_BINARIES,
        image_facts=facts(binaries=binaries, layers=layers(2)),
        names=frozenset({"gosu"}),
        go_modules=frozenset({"github.com/tianon/gosu"}),
    )
    assert [f.image_path for f in found] == ["/usr/local/bin/runas", "/usr/sbin/gosu"]
    assert "Go binary built from github.com/tianon/gosu" in found[0].message
    assert found[0].severity is Severity.CRITICAL and found[0].layer == f"sha256:{1:064x}"


def test_forbidden_go_module_even_when_program_name_differs() -> None:
    renamed = GoBuildInfo(
        "go1.21", "example.com/fork/cmd/switch", GoModule("github.com/tianon/gosu", "v1"), (), ()
    )
    binaries = (Binary("/bin/x", "switch", (BinaryMatch.GO_BUILDINFO,), 0, renamed),)
    found = run(
        CheckId.FORBIDDEN_BINARIES,
        image_facts=facts(binaries=binaries),
        go_modules=frozenset({"github.com/tianon/gosu"}),
    )
    assert rules(found) == ["HARDEN-BINARY-FORBIDDEN"]


def test_forbidden_binaries_pass() -> None:
    binaries = (Binary("/usr/local/bin/su-exec", "su-exec", (BinaryMatch.NAME,), 0),)
    assert (
        run(CheckId.FORBIDDEN_BINARIES, image_facts=facts(binaries=binaries), names=frozenset({"gosu"})) == []
    )


def test_build_tools() -> None:
    binaries = (
        Binary("/usr/bin/x86_64-linux-gnu-gcc-12", "gcc", (BinaryMatch.NAME,), 0),
        Binary("/usr/bin/make", "make", (BinaryMatch.NAME,), 0),
        Binary("/usr/bin/gosu", "gosu", (BinaryMatch.NAME,), 0),
    )
    found = run(CheckId.BUILD_TOOLS, image_facts=facts(binaries=binaries), names=frozenset({"gcc", "make"}))
    assert [f.package for f in found] == ["gcc", "make"]
    assert run(CheckId.BUILD_TOOLS, image_facts=facts(), names=frozenset({"gcc"})) == []


# -- files ----------------------------------------------------------------------------------


def test_setuid_allowlist() -> None:
    files = (SpecialFile("/usr/bin/passwd", 0o4755, 0, 0, 0), SpecialFile("/usr/bin/wall", 0o2755, 0, 5, 0))
    found = run(CheckId.SETUID, image_facts=facts(setuid_files=files), allow=frozenset({"/usr/bin/pass*"}))
    assert [f.image_path for f in found] == ["/usr/bin/wall"]
    assert "setgid (mode 2755" in found[0].message
    assert (
        run(CheckId.SETUID, image_facts=facts(setuid_files=files[:1]), allow=frozenset({"/usr/bin/passwd"}))
        == []
    )


def test_world_writable_without_sticky() -> None:
    dirs = (WritableDirectory("/tmp", 0o1777, 0, 0, 0), WritableDirectory("/srv/drop", 0o777, 0, 0, 0))
    found = run(CheckId.WORLD_WRITABLE, image_facts=facts(world_writable_dirs=dirs))
    assert [f.image_path for f in found] == ["/srv/drop"]
    assert run(CheckId.WORLD_WRITABLE, image_facts=facts(world_writable_dirs=dirs[:1])) == []


# -- secrets --------------------------------------------------------------------------------

WORDS = frozenset({"PASSWORD", "TOKEN", "SECRET", "KEY"})


def test_secret_names() -> None:
    assert secret_name("POSTGRES_PASSWORD", WORDS, frozenset())
    assert secret_name("github-token", WORDS, frozenset())
    assert secret_name("APIKEY", WORDS, frozenset())
    assert not secret_name("POSTGRES_PASSWORD_FILE", WORDS, frozenset())
    assert not secret_name("PGDATA", WORDS, frozenset())
    assert not secret_name("KEYRING_DIR", WORDS, frozenset())  # KEYRING does not end with KEY
    assert not secret_name("GPG_KEY", WORDS, frozenset({"GPG_KEY"}))


def test_secrets_in_env_labels_and_history_are_all_reported_without_values() -> None:
    cfg = config(
        env=(("PATH", "/bin"), ("DB_PASSWORD", "hunter2"), ("API_TOKEN", ""), ("DB_PASSWORD_FILE", "/run/s")),
        labels=(("vendor.secret", "abc"), ("org.opencontainers.image.title", "x")),
        history=(
            HistoryEntry("/bin/sh -c #(nop)  ENV DB_PASSWORD=hunter2", True),
            HistoryEntry("|1 BUILD_TOKEN=s3cr3t /bin/sh -c make", False),
        ),
    )
    found = run(
        CheckId.SECRETS,
        image_facts=facts(config=cfg, layers=layers(1)),
        names=WORDS,
        dockerfile="FROM a:1\nENV DB_PASSWORD=hunter2\nLABEL vendor.secret=abc\nARG BUILD_TOKEN\nRUN make\n",
    )
    assert rules(found) == ["HARDEN-SECRET-ENV", "HARDEN-SECRET-LABEL", "HARDEN-SECRET-HISTORY"]
    assert all("hunter2" not in f.message and "s3cr3t" not in f.message for f in found)
    assert [f.location.line if f.location else None for f in found][:2] == [2, 3]


def test_secrets_pass() -> None:
    cfg = config(env=(("PASSWORD", ""), ("PASSWORD_FILE", "/run/secrets/p")))
    assert run(CheckId.SECRETS, image_facts=facts(config=cfg), names=WORDS) == []


# -- healthcheck, anomalies ---------------------------------------------------------------


def test_healthcheck() -> None:
    assert run(CheckId.HEALTHCHECK, image_facts=facts()) == []
    assert rules(run(CheckId.HEALTHCHECK, image_facts=facts(config=config(healthcheck=None)))) == [
        "HARDEN-HEALTHCHECK-MISSING"
    ]
    disabled = facts(config=config(healthcheck=HealthCheck(("NONE",))))
    assert rules(run(CheckId.HEALTHCHECK, image_facts=disabled)) == ["HARDEN-HEALTHCHECK-MISSING"]
    assert run(CheckId.HEALTHCHECK, dockerfile=FINAL) == []
    found = run(CheckId.HEALTHCHECK, dockerfile="FROM a:1 AS b\nHEALTHCHECK CMD true\nFROM a:1\n")
    assert rules(found) == ["HARDEN-HEALTHCHECK-MISSING"] and found[0].location is not None
    assert found[0].location.line == 3


def test_anomalies() -> None:
    anomalies = (
        Anomaly("../etc/passwd", 1, AnomalyKind.PATH_TRAVERSAL),
        Anomaly("/dev/null", 0, AnomalyKind.DEVICE_FILE, "1:3"),
    )
    found = run(
        CheckId.ANOMALIES,
        image_facts=facts(anomalies=anomalies, layers=layers(2)),
        allow=frozenset({"/dev/*"}),
    )
    assert rules(found) == ["HARDEN-IMAGE-ANOMALY"]
    assert "'../etc/passwd' in layer 1 (path-traversal)" in found[0].message
    assert run(CheckId.ANOMALIES, image_facts=facts()) == []


# -- static Dockerfile checks -------------------------------------------------------------

BAD = """\
FROM debian
FROM hardening/debian:latest AS b
FROM b
RUN pip install setuptools>=75 'pip>=24.3' wheel<1 2>&1
RUN curl -fsSL https://x.example/install.sh | sh
RUN wget -qO- https://x.example/i | sudo bash
ADD https://x.example/a.tar.gz /tmp/
RUN apt-get -y dist-upgrade && apt-get upgrade
"""


def test_dockerfile_static_rules_each_line() -> None:
    found = run(CheckId.DOCKERFILE, dockerfile=BAD)
    by_line = sorted((f.location.line, f.rule_id) for f in found if f.location)
    assert by_line == [
        (1, "HARDEN-DF-UNPINNED-BASE"),
        (2, "HARDEN-DF-UNPINNED-BASE"),
        (4, "HARDEN-DF-PIP-REDIRECT"),
        (4, "HARDEN-DF-PIP-REDIRECT"),
        (5, "HARDEN-DF-CURL-PIPE-SHELL"),
        (6, "HARDEN-DF-CURL-PIPE-SHELL"),
        (7, "HARDEN-DF-ADD-URL"),
        (8, "HARDEN-DF-APT-UPGRADE"),
    ]
    redirect = next(f for f in found if f.rule_id == "HARDEN-DF-PIP-REDIRECT")
    assert "setuptools>=75" in redirect.message and redirect.severity is Severity.MEDIUM


def test_dockerfile_static_rules_pass_on_good_files() -> None:
    good = """\
ARG BASE=hardening/debian:bookworm
FROM ${BASE} AS builder
RUN /opt/venv/bin/python -m pip install --no-index 'pip>=24.3' "setuptools>=75" >/dev/null 2>&1
FROM scratch AS empty
FROM builder
COPY --from=empty / /
RUN apt-get update && apt-get install -y curl && curl -o /tmp/x https://x.example/x && sha256sum -c s
FROM debian@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
"""
    assert run(CheckId.DOCKERFILE, dockerfile=good) == []


def floors_policy(*, enabled: bool = True) -> Policy:
    floors = CheckConfig(Severity.HIGH, Floors((SETUPTOOLS, PIP)), enabled=enabled)
    lint = CheckConfig(Severity.MEDIUM, NoOptions())
    return Policy(("p.yaml",), Severity.HIGH, {CheckId.PACKAGE_FLOORS: floors, CheckId.DOCKERFILE: lint})


def test_unquoted_specifier_of_a_floored_package_fails_at_the_floors_severity() -> None:
    text = "FROM a:1\nRUN pip install Setuptools>=75 'pip>=24.3' wheel<1\n"
    found = run(CheckId.DOCKERFILE, dockerfile=text, policy=floors_policy())
    by_package = {f.message.split("`pip install ")[1].split("`")[0]: f for f in found}
    floor = by_package["Setuptools>=75"]
    assert floor.rule_id == "HARDEN-DF-PIP-REDIRECT" and floor.severity is Severity.HIGH
    assert "the policy's floor setuptools >= 75 is not applied" in floor.message
    # Not a floored package: the redirect is still wrong, at the check's own severity.
    other = by_package["wheel<1"]
    assert other.severity is Severity.MEDIUM and "floor" not in other.message
    # A policy whose floors do not run has no floor to miss.
    found = run(CheckId.DOCKERFILE, dockerfile=text, policy=floors_policy(enabled=False))
    assert {f.severity for f in found} == {Severity.MEDIUM}
    assert all("floor" not in f.message for f in found)


HEREDOCS = (Path(__file__).resolve().parents[1] / "data/dockerfiles/heredoc/Dockerfile").read_text()


def test_heredoc_scripts_are_checked_and_heredoc_data_is_not() -> None:
    found = run(CheckId.DOCKERFILE, dockerfile=HEREDOCS)
    spans = sorted((f.location.line, f.location.end_line, f.rule_id) for f in found if f.location)
    assert spans == [
        (5, 9, "HARDEN-DF-CURL-PIPE-SHELL"),
        (5, 9, "HARDEN-DF-PIP-REDIRECT"),
        (12, 15, "HARDEN-DF-APT-UPGRADE"),
    ]
    assert run(CheckId.NON_ROOT, dockerfile=HEREDOCS) == []
    assert run(CheckId.HEALTHCHECK, dockerfile=HEREDOCS) == []
