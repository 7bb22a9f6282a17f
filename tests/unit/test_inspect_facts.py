"""Facts from synthetic images: accounts, packages, Python environments, binaries, permissions."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hardening.inspect import inspect_image_tar, inspect_stream
from hardening.inspect.facts import BinaryMatch, HealthCheck, ImageFacts
from tests.unit.imagetar import (
    GOSU_MODINFO,
    Entry,
    ImageSpec,
    directory,
    file,
    go_elf,
    hardlink,
    legacy_save,
    oci_save,
    plain_elf,
    symlink,
    whiteout,
)

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
postgres:x:999:999:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash
app:x:10001:10001::/home/app:/usr/sbin/nologin
"""
GROUP = """\
root:x:0:
daemon:x:1:
ssl-cert:x:101:postgres
postgres:x:999:
app:x:10001:
"""
DPKG_STATUS = """\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: python3-setuptools
Status: install ok installed
Architecture: all
Source: setuptools (66.1.1-1)
Version: 66.1.1-1+deb12u1
Depends: python3-pkg-resources (= 66.1.1-1+deb12u1)

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: gosu
Status: install ok installed
Architecture: amd64
Source: gosu (1.14-1)
Version: 1.14-1+b6
"""
STATUS_D = """\
Package: tzdata
Version: 2024a-0+deb12u1
Architecture: all
"""


def metadata(name: str, version: str) -> str:
    # The body repeats a header name: only the header block may count.
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: s\n\nBody\nName: wrong\n"


BASE: list[Entry] = [
    directory("etc"),
    file("etc/passwd", PASSWD),
    file("etc/group", GROUP),
    directory("tmp", mode=0o1777),
    directory("var/lib/dpkg", mode=0o755),
    file("var/lib/dpkg/status", DPKG_STATUS),
    directory("var/lib/dpkg/status.d"),
    file("var/lib/dpkg/status.d/tzdata", STATUS_D),
    file("var/lib/dpkg/status.d/tzdata.md5sums", "abc  usr/share/zoneinfo/UTC\n"),
    file("usr/bin/passwd", b"\x7fELF" + b"\x00" * 200, mode=0o4755),
    file("usr/bin/wall", b"#!/bin/sh\n" * 20, mode=0o2755, gid=5),
    file("usr/bin/ls", plain_elf(), mode=0o755),
    directory("usr/lib/python3/dist-packages"),
    directory("usr/lib/python3/dist-packages/setuptools-66.1.1.egg-info"),
    file(
        "usr/lib/python3/dist-packages/setuptools-66.1.1.egg-info/PKG-INFO", metadata("setuptools", "66.1.1")
    ),
    directory("usr/lib/python3/dist-packages/pip-23.0.1.dist-info"),
    file("usr/lib/python3/dist-packages/pip-23.0.1.dist-info/METADATA", metadata("pip", "23.0.1")),
]


def venv_layer() -> list[Entry]:
    site = "opt/venv/lib/python3.11/site-packages"
    return [
        directory(f"{site}/setuptools-75.0.0.dist-info"),
        file(f"{site}/setuptools-75.0.0.dist-info/METADATA", metadata("setuptools", "75.0.0")),
        directory(f"{site}/Foo.Bar_baz-1.0.dist-info"),
        file(f"{site}/Foo.Bar_baz-1.0.dist-info/METADATA", metadata("Foo.Bar_baz", "1.0")),
        directory(f"{site}/nometa-2.0.dist-info"),
        file(f"{site}/legacy_pkg-0.3-py3.11.egg-info", metadata("Legacy-Pkg", "0.3")),
        directory(f"{site}/foo"),
        file(f"{site}/foo/__init__.py", ""),
    ]


def inspect(tmp_path: Path, layers: list[list[Entry]], spec: ImageSpec | None = None) -> ImageFacts:
    path = tmp_path / "image.tar"
    path.write_bytes(legacy_save(layers, spec))
    return inspect_image_tar(path, reference="example/app:1")


def test_config_facts(tmp_path: Path) -> None:
    spec = ImageSpec(
        user="app:app",
        env=("PATH=/usr/bin", "EMPTY=", "WITH_EQ=a=b"),
        entrypoint=("/usr/bin/tini", "--"),
        cmd=("python", "-m", "app"),
        working_dir="/srv",
        labels={"org.opencontainers.image.source": "https://example.org/repo"},
        exposed_ports=("8080/tcp", "53/udp"),
        healthcheck={"Test": ["CMD", "true"], "Interval": 30_000_000_000, "Retries": 3},
        history=[
            {"created_by": "/bin/sh -c #(nop) ADD file:abc in /", "created": "2024-01-01T00:00:00Z"},
            {"created_by": "/bin/sh -c #(nop)  USER app", "empty_layer": True},
            {
                "created_by": "RUN /bin/sh -c rm -f /usr/sbin/gosu # buildkit",
                "comment": "buildkit.dockerfile.v0",
            },
        ],
    )
    facts = inspect(tmp_path, [BASE, [file("srv/app.py", "")]], spec)
    config = facts.config
    assert config.user == "app:app"
    assert config.env == (("PATH", "/usr/bin"), ("EMPTY", ""), ("WITH_EQ", "a=b"))
    assert config.env_value("WITH_EQ") == "a=b"
    assert config.entrypoint == ("/usr/bin/tini", "--")
    assert config.cmd == ("python", "-m", "app")
    assert config.working_dir == "/srv"
    assert config.label("org.opencontainers.image.source") == "https://example.org/repo"
    assert config.exposed_ports == ("53/udp", "8080/tcp")
    assert config.healthcheck == HealthCheck(("CMD", "true"), interval_ns=30_000_000_000, retries=3)
    assert [h.empty_layer for h in config.history] == [False, True, False]
    assert config.history[2].comment == "buildkit.dockerfile.v0"
    assert config.architecture == "amd64" and config.os == "linux"
    assert facts.layer_count == 2
    assert facts.image_id.startswith("sha256:")
    assert facts.resolve_user() == (10001, 10001)


def test_missing_config_fields_are_empty(tmp_path: Path) -> None:
    spec = ImageSpec(env=(), cmd=None)
    facts = inspect(tmp_path, [[file("x", "")]], spec)
    assert facts.config.cmd is None and facts.config.entrypoint is None
    assert facts.config.healthcheck is None and facts.config.env == ()
    assert facts.passwd == () and facts.resolve_user() == (0, 0)


def test_accounts_and_user_resolution(tmp_path: Path) -> None:
    facts = inspect(tmp_path, [BASE])
    assert [p.name for p in facts.passwd] == ["root", "daemon", "postgres", "app"]
    postgres = facts.passwd[2]
    assert (postgres.uid, postgres.gid, postgres.home, postgres.shell) == (
        999,
        999,
        "/var/lib/postgresql",
        "/bin/bash",
    )
    assert facts.group[2].members == ("postgres",)
    assert facts.resolve_user("") == (0, 0)
    assert facts.resolve_user("postgres") == (999, 999)
    assert facts.resolve_user("999") == (999, 999)
    assert facts.resolve_user("4242") == (4242, 0)
    assert facts.resolve_user("postgres:ssl-cert") == (999, 101)
    assert facts.resolve_user("10001:10001") == (10001, 10001)
    assert facts.resolve_user("app:7") == (10001, 7)
    assert facts.resolve_user("nobody") is None
    assert facts.resolve_user("app:nogroup") is None


def test_dpkg_packages_with_source_and_status_d(tmp_path: Path) -> None:
    facts = inspect(tmp_path, [BASE])
    by_name = {p.name: p for p in facts.dpkg_packages}
    assert sorted(by_name) == ["gosu", "libc6", "python3-setuptools", "tzdata"]
    libc = by_name["libc6"]
    assert (libc.source_name, libc.source_version) == ("glibc", "2.36-9+deb12u4")
    setuptools = by_name["python3-setuptools"]
    assert setuptools.version == "66.1.1-1+deb12u1"
    assert (setuptools.source_name, setuptools.source_version) == ("setuptools", "66.1.1-1")
    assert by_name["tzdata"].source_name == "tzdata" and by_name["tzdata"].status == ""
    assert facts.dpkg_package("gosu") is not None


def test_dpkg_status_replaced_in_a_later_layer_wins(tmp_path: Path) -> None:
    later = DPKG_STATUS.replace("2.36-9+deb12u4", "2.36-9+deb12u7")
    facts = inspect(tmp_path, [BASE, [file("var/lib/dpkg/status", later)]])
    libc = facts.dpkg_package("libc6")
    assert libc is not None and libc.version == "2.36-9+deb12u7"


def test_two_python_environments_with_their_own_setuptools(tmp_path: Path) -> None:
    facts = inspect(tmp_path, [BASE, venv_layer()])
    envs = {env.path: env for env in facts.python_envs}
    assert sorted(envs) == ["/opt/venv/lib/python3.11/site-packages", "/usr/lib/python3/dist-packages"]
    system = envs["/usr/lib/python3/dist-packages"]
    venv = envs["/opt/venv/lib/python3.11/site-packages"]
    system_setuptools = system.get("setuptools")
    venv_setuptools = venv.get("setuptools")
    assert system_setuptools is not None and system_setuptools.version == "66.1.1"
    assert venv_setuptools is not None and venv_setuptools.version == "75.0.0"
    assert venv.python_version == "3.11" and system.python_version is None
    names = {d.name: d.version for d in venv.distributions}
    assert names == {"setuptools": "75.0.0", "foo-bar-baz": "1.0", "nometa": "2.0", "legacy-pkg": "0.3"}
    assert {d.version for d in facts.python_distribution("SetupTools")} == {"66.1.1", "75.0.0"}


def test_setuid_setgid_and_world_writable(tmp_path: Path) -> None:
    layers = [
        BASE,
        [
            directory("srv/drop", mode=0o777),
            directory("srv/shared", mode=0o1777),
            directory("var/tmp", mode=0o1777),
            file("usr/local/bin/helper", "x", mode=0o6755, uid=0),
        ],
        [file("usr/bin/wall", "no longer setgid", mode=0o755)],
    ]
    facts = inspect(tmp_path, layers)
    special = {f.path: f for f in facts.setuid_files}
    assert sorted(special) == ["/usr/bin/passwd", "/usr/local/bin/helper"]
    assert special["/usr/bin/passwd"].setuid and not special["/usr/bin/passwd"].setgid
    helper = special["/usr/local/bin/helper"]
    assert helper.setuid and helper.setgid and helper.mode == 0o6755 and helper.layer == 1
    writable = {d.path: d.sticky for d in facts.world_writable_dirs}
    assert writable == {"/tmp": True, "/srv/drop": False, "/srv/shared": True, "/var/tmp": True}
    assert [d.path for d in facts.world_writable_without_sticky] == ["/srv/drop"]


def test_gosu_deleted_in_a_later_layer_is_not_reported(tmp_path: Path) -> None:
    layers = [BASE, [file("usr/sbin/gosu", go_elf(), mode=0o755)], [whiteout("usr/sbin/gosu")]]
    facts = inspect(tmp_path, layers)
    assert "gosu" not in facts.programs()
    assert all(b.path != "/usr/sbin/gosu" for b in facts.binaries)


def test_gosu_renamed_is_found_by_its_go_build_info(tmp_path: Path) -> None:
    layers = [BASE, [file("usr/local/bin/runas", go_elf(), mode=0o755)]]
    facts = inspect(tmp_path, layers)
    (binary,) = facts.binaries_for("gosu")
    assert binary.path == "/usr/local/bin/runas"
    assert binary.matched_by == (BinaryMatch.GO_BUILDINFO,)
    assert binary.layer == 1
    go = binary.go
    assert go is not None
    assert go.go_version == "go1.19.8"
    assert go.main_package == "github.com/tianon/gosu"
    assert go.main_module is not None and go.main_module.path == "github.com/tianon/gosu"
    assert [d.path for d in go.dependencies] == ["github.com/moby/sys/user", "golang.org/x/sys"]
    assert go.dependencies[1].version == "v0.1.0"
    assert ("CGO_ENABLED", "0") in go.settings


@pytest.mark.parametrize(
    ("variant", "kwargs"),
    [
        ("sections", {}),
        ("segments-only", {"sections": False}),
        ("pre-go1.18-pointers", {"inline": False}),
        ("pre-go1.18-no-sections", {"inline": False, "sections": False}),
        ("blob-not-first", {"data_prefix": 48}),
        ("large-text", {"text_size": 300_000}),
        ("data-beyond-first-mebibyte", {"text_size": 3_000_000}),
    ],
)
def test_go_buildinfo_layouts(tmp_path: Path, variant: str, kwargs: dict[str, object]) -> None:
    elf = go_elf("go1.21.6", **kwargs)  # type: ignore[arg-type]
    for gzip_layers in (False, True):
        path = tmp_path / f"{variant}-{gzip_layers}.tar"
        path.write_bytes(oci_save([[file("bin/runas", elf, mode=0o755)]], compress=gzip_layers))
        facts = inspect_image_tar(path, reference="example/app:1")
        (binary,) = facts.binaries
        assert binary.program == "gosu", variant
        assert binary.go is not None and binary.go.go_version == "go1.21.6"


def test_go_binary_by_name_and_build_info(tmp_path: Path) -> None:
    facts = inspect(tmp_path, [BASE, [file("usr/sbin/gosu", go_elf(), mode=0o755)]])
    (binary,) = facts.binaries_for("gosu")
    assert binary.matched_by == (BinaryMatch.NAME, BinaryMatch.GO_BUILDINFO)


def test_go_binary_without_module_info_is_still_go(tmp_path: Path) -> None:
    facts = inspect(tmp_path, [[file("usr/bin/tool", go_elf(modinfo=""), mode=0o755)]])
    (binary,) = facts.binaries
    assert binary.go is not None and binary.go.main_package == "" and binary.program == "tool"


def test_non_executable_and_non_go_files_are_ignored(tmp_path: Path) -> None:
    layers = [
        BASE,
        [
            file("usr/share/doc/gosu.elf", go_elf(), mode=0o644),
            file("usr/share/bash-completion/completions/make", "complete"),
            file("usr/bin/magicless", b"\xff Go buildinf:" + b"\x00" * 100, mode=0o755),
        ],
    ]
    facts = inspect(tmp_path, layers)
    assert facts.binaries == ()


def test_build_tools_by_name_including_alternatives_symlinks(tmp_path: Path) -> None:
    layers = [
        BASE,
        [
            file("usr/bin/x86_64-linux-gnu-gcc-12", plain_elf(), mode=0o755),
            symlink("usr/bin/gcc-12", "x86_64-linux-gnu-gcc-12"),
            symlink("etc/alternatives/cc", "/usr/bin/gcc-12"),
            symlink("usr/bin/cc", "/etc/alternatives/cc"),
            file("usr/bin/make", plain_elf(), mode=0o755),
            hardlink("usr/bin/gmake", "usr/bin/make"),
            symlink("usr/bin/ld", "ld.gold-missing"),
            file("usr/bin/python3.11", plain_elf(), mode=0o755),
        ],
    ]
    facts = inspect(tmp_path, layers)
    found = {b.path: (b.program, b.target) for b in facts.binaries}
    assert found == {
        "/usr/bin/x86_64-linux-gnu-gcc-12": ("gcc", None),
        "/usr/bin/gcc-12": ("gcc", "/usr/bin/x86_64-linux-gnu-gcc-12"),
        "/usr/bin/cc": ("cc", "/usr/bin/x86_64-linux-gnu-gcc-12"),
        "/usr/bin/make": ("make", None),
        "/usr/bin/gmake": ("gmake", None),
    }


def test_binary_names_are_configurable(tmp_path: Path) -> None:
    path = tmp_path / "image.tar"
    path.write_bytes(
        legacy_save([[file("usr/bin/curl", plain_elf(), mode=0o755), file("usr/bin/make", "", 0o755)]])
    )
    facts = inspect_image_tar(path, reference="example/app:1", binary_names={"curl"})
    assert [b.program for b in facts.binaries] == ["curl"]


def test_sizes_and_layers(tmp_path: Path) -> None:
    facts = inspect(tmp_path, [[file("a", b"x" * 1000), file("b", b"y" * 10)], [file("a", b"z" * 5)]])
    assert facts.total_size == 1015
    assert facts.filesystem_size == 15
    assert [layer.content_size for layer in facts.layers] == [1010, 5]


def test_inspect_stream_and_oci_layout_agree_with_legacy(tmp_path: Path) -> None:
    layers = [BASE, venv_layer(), [file("usr/local/bin/runas", go_elf(), mode=0o755)]]
    legacy = inspect(tmp_path, layers)
    streamed = inspect_stream(io.BytesIO(oci_save(layers, compress=True)), reference="example/app:1")
    assert streamed.dpkg_packages == legacy.dpkg_packages
    assert streamed.python_envs == legacy.python_envs
    assert streamed.binaries == legacy.binaries
    assert streamed.passwd == legacy.passwd
    assert streamed.setuid_files == legacy.setuid_files


def test_modinfo_sample_parses() -> None:
    from hardening.inspect.gobuild import parse_modinfo

    info = parse_modinfo("go1.22.1", GOSU_MODINFO + "dep\tx/y\tv1.0.0\th1:a\n=>\t../y\t(devel)\t\n")
    assert info.dependencies[-1].replaced_by is not None
    assert info.dependencies[-1].replaced_by.path == "../y"
    assert info.program == "gosu"
