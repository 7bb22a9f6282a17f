"""postgres-secure on the real engine: start-up as postgres and as root, first-start
initialisation, refusals, su-exec inside the image, and what must not be in it."""

from __future__ import annotations

import json
import posixpath
import re
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from hardening.catalog import ImageSpec, load_catalog
from tests.conftest import REPO_ROOT
from tests.images.conftest import CatalogImage
from tests.images.imagefs import ImageEntry, save_and_index

pytestmark = pytest.mark.docker

PASSWORD = "test-only-password"
READY_BUDGET_SECONDS = 30.0
UID = 70
PGDATA = "/var/lib/postgresql/data"
BIN_DIRS = frozenset({"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"})
BUILD_TOOL = re.compile(r"^(x86_64-linux-gnu-)?(cc|c\+\+|gcc|g\+\+|cpp|clang|ld|as|make|gmake)(-[0-9.]+)?$")


# Every image the catalog makes from the postgres-secure template: 15 on bookworm, 17 on trixie.
CATALOG = load_catalog(REPO_ROOT / "hardening.toml")
POSTGRES_SPECS = {
    spec.name: spec for spec in CATALOG.images if spec.template.parent.name == "postgres-secure"
}


@pytest.fixture(scope="module", params=sorted(POSTGRES_SPECS))
def postgres_spec(request: pytest.FixtureRequest) -> ImageSpec:
    return POSTGRES_SPECS[request.param]


@pytest.fixture(scope="module")
def postgres_image(postgres_spec: ImageSpec, catalog_images: Mapping[str, CatalogImage]) -> str:
    """The image as the build driver built it; returns its image id."""
    return catalog_images[postgres_spec.name].ref


@pytest.fixture(scope="module")
def major(postgres_spec: ImageSpec) -> str:
    return str(postgres_spec.variables["postgres_major"])


def _docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def _remove_container(name: str) -> None:
    subprocess.run(["docker", "rm", "--force", "--volumes", name], capture_output=True, check=False)


@contextmanager
def _volume() -> Iterator[str]:
    name = f"pgsec-test-{uuid.uuid4().hex[:12]}"
    _docker("volume", "create", name)
    try:
        yield name
    finally:
        subprocess.run(["docker", "volume", "rm", "--force", name], capture_output=True, check=False)


@contextmanager
def _server(image: str, *run_args: str) -> Iterator[str]:
    """A detached container; removed with its anonymous volumes whatever happens."""
    name = f"pgsec-test-{uuid.uuid4().hex[:12]}"
    try:
        _docker("run", "--detach", "--name", name, *run_args, image)
        yield name
    finally:
        _remove_container(name)


def _run_once(image: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A foreground container (run args, then image command); removed afterwards."""
    name = f"pgsec-test-{uuid.uuid4().hex[:12]}"
    split = args.index("--") if "--" in args else len(args)
    try:
        return _docker("run", "--name", name, *args[:split], image, *args[split + 1 :], check=False)
    finally:
        _remove_container(name)


def _logs(name: str) -> str:
    result = _docker("logs", name, check=False)
    return result.stdout + result.stderr


def _wait_for_select_1(name: str) -> float:
    """Seconds until SELECT 1 succeeds over TCP with the password; fails with the logs."""
    start = time.monotonic()
    while time.monotonic() - start < READY_BUDGET_SECONDS:
        result = _docker(
            "exec", "--env", f"PGPASSWORD={PASSWORD}", name,
            "psql", "--host=127.0.0.1", "--username=postgres", "--no-psqlrc", "-tAc", "SELECT 1",
            check=False,
        )  # fmt: skip
        if result.returncode == 0 and result.stdout.strip() == "1":
            return time.monotonic() - start
        running = _docker("inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip()
        if running != "true":
            pytest.fail(f"container {name} exited before accepting SELECT 1:\n{_logs(name)}")
        time.sleep(0.25)
    pytest.fail(f"no SELECT 1 within {READY_BUDGET_SECONDS} s:\n{_logs(name)}")


def _pid1_ids(name: str) -> tuple[list[str], list[str]]:
    status = _docker("exec", name, "cat", "/proc/1/status").stdout
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return fields["Uid"].split(), fields["Gid"].split()


def _psql(name: str, user: str, sql: str) -> str:
    # Over the socket as the container's postgres account (peer authentication).
    return _docker("exec", "--user", str(UID), name, "psql", f"--username={user}", "-tAc", sql).stdout.strip()


@pytest.mark.parametrize("run_as", [[], ["--user", "0"]], ids=["image-user", "root"])
def test_starts_and_serves_as_postgres(postgres_image: str, run_as: list[str]) -> None:
    with _server(postgres_image, *run_as, "--env", f"POSTGRES_PASSWORD={PASSWORD}") as name:
        _wait_for_select_1(name)
        uids, gids = _pid1_ids(name)
        assert uids == [str(UID)] * 4, f"server runs with uids {uids}"
        assert gids == [str(UID)] * 4, f"server runs with gids {gids}"
        assert _docker("exec", name, "cat", "/proc/1/comm").stdout.strip() == "postgres"
        owner = _docker("exec", name, "stat", "-c", "%u:%g %a", PGDATA).stdout.strip()
        assert owner == f"{UID}:{UID} 700"


def test_server_is_the_catalog_major_and_jit_is_off(
    postgres_image: str, postgres_spec: ImageSpec, major: str
) -> None:
    assert postgres_spec.variables.get("jit", False) is False, (
        "these expectations are for the default, jit = false"
    )
    with _server(postgres_image, "--env", f"POSTGRES_PASSWORD={PASSWORD}") as name:
        _wait_for_select_1(name)
        assert _psql(name, "postgres", "SHOW server_version_num")[: len(major)] == major
        assert _psql(name, "postgres", "SHOW jit") == "off"
        assert _psql(name, "postgres", "SELECT pg_jit_available()") == "f"
        # Asked for JIT on a query costly enough for it, the server runs it without: the provider
        # is not in the image, and PostgreSQL falls back to interpreting the expressions.
        forced = "SET jit = on; SET jit_above_cost = 0; SELECT sum(i) FROM generate_series(1, 100000) AS i"
        assert _psql(name, "postgres", forced).splitlines()[-1] == "5000050000"
        plan = _psql(
            name,
            "postgres",
            "SET jit = on; SET jit_above_cost = 0; EXPLAIN SELECT sum(i) FROM generate_series(1, 10) AS i",
        )
        assert "JIT" not in plan


def test_initdb_and_pg_isready_run_alone(postgres_image: str) -> None:
    script = (
        "initdb --pgdata=/tmp/cluster --username=postgres --auth=trust --no-instructions >/dev/null"
        " && pg_ctl --pgdata=/tmp/cluster --wait --silent -o '-c listen_addresses=127.0.0.1"
        " -c unix_socket_directories=/tmp' start"
        " && pg_isready --host=127.0.0.1 && psql --host=/tmp --username=postgres -tAc 'SELECT 40 + 2'"
    )
    result = _run_once(postgres_image, "--", "sh", "-c", script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-2:] == ["127.0.0.1:5432 - accepting connections", "42"]


def test_only_the_purged_packages_are_missing_dependencies(postgres_image: str) -> None:
    """perl, the perl modules and LLVM are gone; what stays and names them is all apt reports."""
    result = _run_once(postgres_image, "--user", "0", "--", "apt-get", "check")
    assert result.returncode != 0, "apt-get check passed: nothing was purged"
    missing = set(re.findall(r"Depends: ([a-z0-9.+-]+)", result.stdout + result.stderr))
    assert missing, result.stdout + result.stderr
    purged = re.compile(r"perl|lib[a-z0-9.+-]*-perl|libllvm[0-9]+")
    assert {name for name in missing if not purged.fullmatch(name)} == set(), missing


def test_wrong_password_is_rejected_over_tcp(postgres_image: str) -> None:
    with _server(postgres_image, "--env", f"POSTGRES_PASSWORD={PASSWORD}") as name:
        _wait_for_select_1(name)
        result = _docker(
            "exec", "--env", "PGPASSWORD=wrong", name,
            "psql", "--host=127.0.0.1", "--username=postgres", "-tAc", "SELECT 1",
            check=False,
        )  # fmt: skip
        assert result.returncode != 0
        assert "password authentication failed" in result.stderr


def test_password_file_and_custom_user_and_database(postgres_image: str, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o644)
    with _server(
        postgres_image,
        "--user", "0",
        "--volume", f"{secret}:/run/secrets/pg:ro",
        "--env", "POSTGRES_PASSWORD_FILE=/run/secrets/pg",
        "--env", "POSTGRES_USER=app",
        "--env", "POSTGRES_DB=appdb",
    ) as name:  # fmt: skip
        start = time.monotonic()
        while True:
            result = _docker(
                "exec", "--env", f"PGPASSWORD={PASSWORD}", name,
                "psql", "--host=127.0.0.1", "--username=app", "--dbname=appdb", "-tAc", "SELECT current_user",
                check=False,
            )  # fmt: skip
            if result.returncode == 0:
                break
            assert time.monotonic() - start < READY_BUDGET_SECONDS, _logs(name)
            time.sleep(0.25)
        assert result.stdout.strip() == "app"
        # Only the server's own uid may read its environment.
        env = _docker("exec", "--user", str(UID), name, "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ").stdout
        assert PASSWORD not in env


def test_init_scripts_run_once(postgres_image: str, tmp_path: Path) -> None:
    initdb = tmp_path / "initdb"
    initdb.mkdir()
    (initdb / "10-table.sql").write_text(
        "CREATE TABLE init_runs (script text);\nINSERT INTO init_runs VALUES ('sql');\n"
    )
    (initdb / "20-row.sh").write_text(
        "set -eu\npsql --no-psqlrc -v ON_ERROR_STOP=1 -c \"INSERT INTO init_runs VALUES ('sh')\"\n"
    )
    (initdb / "30-ignored.txt").write_text("not a script\n")
    # Readable by the postgres uid inside the container.
    initdb.chmod(0o755)
    for script in initdb.iterdir():
        script.chmod(0o644)
    count = "SELECT string_agg(script, ',' ORDER BY script) FROM init_runs"
    with _volume() as volume:
        args = (
            "--env", f"POSTGRES_PASSWORD={PASSWORD}",
            "--volume", f"{volume}:{PGDATA}",
            "--volume", f"{initdb}:/docker-entrypoint-initdb.d:ro",
        )  # fmt: skip
        with _server(postgres_image, *args) as first:
            _wait_for_select_1(first)
            assert _psql(first, "postgres", count) == "sh,sql"
            assert "running /docker-entrypoint-initdb.d/10-table.sql" in _logs(first)
            assert "ignoring /docker-entrypoint-initdb.d/30-ignored.txt" in _logs(first)
        with _server(postgres_image, "--user", "0", *args) as second:
            _wait_for_select_1(second)
            assert _psql(second, "postgres", count) == "sh,sql"
            assert "running /docker-entrypoint-initdb.d" not in _logs(second)


def test_empty_password_refuses_to_start(postgres_image: str) -> None:
    result = _run_once(postgres_image)
    assert result.returncode != 0
    assert "no superuser password" in result.stderr
    assert "POSTGRES_PASSWORD" in result.stderr


def test_empty_password_allowed_when_explicit(postgres_image: str) -> None:
    with _server(postgres_image, "--env", "POSTGRES_ALLOW_EMPTY_PASSWORD=yes") as name:
        start = time.monotonic()
        while _docker("exec", name, "pg_isready", "--host=127.0.0.1", "--quiet", check=False).returncode != 0:
            assert time.monotonic() - start < READY_BUDGET_SECONDS, _logs(name)
            time.sleep(0.25)
        assert _psql(name, "postgres", "SELECT 1") == "1"


def test_su_exec_switches_user(postgres_image: str) -> None:
    result = _run_once(postgres_image, "--user", "0", "--", "su-exec", "nobody", "id", "-u")
    assert (result.returncode, result.stdout.strip()) == (0, "65534"), result.stderr


def test_su_exec_unknown_user_runs_nothing(postgres_image: str) -> None:
    script = "su-exec no-such-user touch /tmp/ran; echo status=$?; test -e /tmp/ran && echo ran || echo clean"
    result = _run_once(postgres_image, "--user", "0", "--", "sh", "-c", script)
    assert result.stdout.split() == ["status=1", "clean"], result.stdout + result.stderr
    assert "unknown user 'no-such-user'" in result.stderr


def test_image_config(postgres_image: str, major: str) -> None:
    config = json.loads(_docker("image", "inspect", postgres_image).stdout)[0]["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["/usr/local/bin/docker-entrypoint.sh"]
    assert "5432/tcp" in config["ExposedPorts"]
    assert PGDATA in config["Volumes"]
    assert "pg_isready" in config["Healthcheck"]["Test"]
    assert not [e for e in config["Env"] if re.search(r"PASSWORD|SECRET|TOKEN", e.split("=", 1)[0])]
    path = next(e for e in config["Env"] if e.startswith("PATH="))
    assert f"/usr/lib/postgresql/{major}/bin" in path


@pytest.fixture(scope="module")
def image_files(postgres_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ImageEntry]:
    return save_and_index(postgres_image, tmp_path_factory.mktemp("postgres-image"))


def test_no_gosu_and_no_go_binary(image_files: dict[str, ImageEntry]) -> None:
    assert not [p for p in image_files if posixpath.basename(p) == "gosu"]
    assert not [p for p, e in image_files.items() if e.go_binary]


def test_no_compilers_or_build_tools(image_files: dict[str, ImageEntry]) -> None:
    tools = [
        p for p in image_files if posixpath.dirname(p) in BIN_DIRS and BUILD_TOOL.match(posixpath.basename(p))
    ]
    assert not tools
    assert not [p for p in image_files if posixpath.basename(p) in {"cc1", "cc1plus", "collect2"}]


def test_nothing_world_writable_without_sticky_bit(image_files: dict[str, ImageEntry]) -> None:
    # Device nodes (the base's /dev) are shadowed by the runtime's /dev; files and directories count.
    loose = [
        p
        for p, e in image_files.items()
        if e.kind in {"file", "dir"} and e.mode & 0o002 and not e.mode & 0o1000
    ]
    assert not loose


def test_no_setuid_or_setgid_files(image_files: dict[str, ImageEntry]) -> None:
    assert not [p for p, e in image_files.items() if e.kind == "file" and e.mode & 0o6000]


def test_su_exec_and_entrypoint_present(image_files: dict[str, ImageEntry]) -> None:
    for path in ("/usr/local/bin/su-exec", "/usr/local/bin/docker-entrypoint.sh"):
        assert path in image_files, path
        assert image_files[path].mode & 0o777 == 0o755, path
