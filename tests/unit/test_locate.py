"""The Locator: from users, packages, paths and layers to the rendered and template lines."""

from __future__ import annotations

from hardening.findings import SourceLocation
from hardening.inspect.facts import HistoryEntry
from hardening.inspect.pydist import PythonDistribution, PythonEnvironment
from hardening.locate import Locator, apt_installed_names, env_root, environment_of, pip_target
from tests.unit.test_policy_support import config, facts, layers, rendered

DOCKERFILE = """\
# header 1
# header 2
# header 3
FROM hardening/debian:bookworm AS builder
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3.11-venv gcc
RUN python3.11 -m venv /opt/venv \\
 && /opt/venv/bin/python -m pip install --no-index 'setuptools>=75'

FROM hardening/debian:bookworm
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3.11 python3-setuptools curl=7.88.1-10 \\
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /opt/venv /opt/venv
COPY entrypoint.sh /usr/local/bin/
WORKDIR /app
COPY app.py ./
RUN chmod 0755 /usr/local/bin/entrypoint.sh && ln -s /usr/bin/python3 /usr/local/bin/py
ENV PATH=/opt/venv/bin:/usr/bin:/bin
RUN pip install --no-index extra
USER 10001:10001
CMD ["python"]
"""
PATH = "dockerfiles/demo/Dockerfile"
TEMPLATE = "dockerfiles/demo/Dockerfile.j2"


def locator(image_facts: object = None) -> Locator:
    return Locator(rendered(DOCKERFILE, template_offset=3), image_facts)  # type: ignore[arg-type]


def line(where: tuple[SourceLocation, SourceLocation | None]) -> int:
    return where[0].line


def test_user_is_the_last_user_of_the_final_stage_with_its_template_line() -> None:
    where = locator().locate_user()
    assert where == (SourceLocation(PATH, 21), SourceLocation(TEMPLATE, 18))


def test_user_falls_back_to_the_final_from() -> None:
    loc = Locator(rendered("FROM a:1 AS b\nUSER 1\nFROM a:1\nRUN true\n"))
    assert line(loc.locate_user()) == 3


def test_user_in_a_stage_built_on_another_stage() -> None:
    loc = Locator(rendered("FROM a:1 AS base\nUSER 10\nFROM base\nRUN true\n"))
    assert line(loc.locate_user()) == 2


def test_multi_line_instruction_has_an_end_line() -> None:
    where = locator().locate_package("debian", "python3.11")
    assert where[0] == SourceLocation(PATH, 11, 13)


def test_debian_package_named_by_the_final_stage_install_line() -> None:
    loc = locator()
    assert line(loc.locate_package("debian", "curl")) == 11  # pinned as curl=7.88.1-10
    # gcc is installed only in the builder: it cannot have come from there, so the base did.
    assert line(loc.locate_package("debian", "gcc")) == 10
    assert line(loc.locate_package("debian", "libc6")) == 10


def test_python_package_in_a_copied_venv_points_at_the_copy() -> None:
    loc = locator()
    where = loc.locate_package("python-pkg", "setuptools", "/opt/venv/lib/python3.11/site-packages")
    # The last writer is the bare pip that PATH sends into the venv.
    assert line(where) == 20
    where = loc.locate_package(
        "python", "setuptools", "opt/venv/lib/python3.11/site-packages/setuptools-66.dist-info/METADATA"
    )
    assert line(where) == 20


def test_python_package_copied_venv_without_later_pip() -> None:
    text = DOCKERFILE.replace("RUN pip install --no-index extra\n", "")
    loc = Locator(rendered(text))
    assert line(loc.locate_package("python", "pip", "/opt/venv/lib/python3.11/site-packages")) == 14


def test_debian_dist_packages_points_at_the_python3_package() -> None:
    loc = locator()
    assert line(loc.locate_package("python", "setuptools", "/usr/lib/python3/dist-packages")) == 11
    assert line(loc.locate_package("python", "wheel", "/usr/lib/python3/dist-packages")) == 10


def test_python_package_without_env_uses_the_only_environment_holding_it() -> None:
    env = PythonEnvironment(
        "/opt/venv/lib/python3.11/site-packages",
        (PythonDistribution("extra", "1", "/opt/venv/lib/python3.11/site-packages/extra-1.dist-info"),),
    )
    loc = locator(facts(python_envs=(env,)))
    assert line(loc.locate_package("python", "extra")) == 20
    assert line(locator().locate_package("python", "extra")) == 10


def test_unknown_kind_is_the_base() -> None:
    assert line(locator().locate_package("gobinary", "x")) == 10


def test_paths() -> None:
    loc = locator()
    assert line(loc.locate_path("/usr/local/bin/entrypoint.sh")) == 18  # chmod names it after COPY
    assert line(loc.locate_path("/usr/local/bin/py")) == 18
    assert line(loc.locate_path("/app/app.py")) == 17  # relative destination under WORKDIR
    assert line(loc.locate_path("/opt/venv/bin/python")) == 14
    assert line(loc.locate_path("/usr/bin/su")) == 10


def test_path_by_file_name_in_a_run() -> None:
    loc = Locator(rendered("FROM a:1\nRUN apt-get install -y gosu\nRUN true\n"))
    assert line(loc.locate_path("/usr/sbin/gosu")) == 2


CLASSIC_HISTORY = (
    HistoryEntry("", False, comment="Imported from -"),
    HistoryEntry(
        "/bin/sh -c apt-get update  && apt-get install -y --no-install-recommends python3.11 "
        "python3-setuptools curl=7.88.1-10  && rm -rf /var/lib/apt/lists/*",
        False,
    ),
    HistoryEntry("/bin/sh -c #(nop) COPY dir:abc in /opt/venv ", False),
    HistoryEntry("/bin/sh -c #(nop) COPY file:def in /usr/local/bin/ ", False),
    HistoryEntry("/bin/sh -c #(nop) WORKDIR /app", False),
    HistoryEntry("/bin/sh -c #(nop) COPY file:123 in ./ ", False),
    HistoryEntry(
        "/bin/sh -c chmod 0755 /usr/local/bin/entrypoint.sh && ln -s /usr/bin/python3 /usr/local/bin/py",
        False,
    ),
    HistoryEntry("/bin/sh -c #(nop)  ENV PATH=/opt/venv/bin:/usr/bin:/bin", True),
    HistoryEntry("|1 X=1 /bin/sh -c pip install --no-index extra", False),
    HistoryEntry("/bin/sh -c #(nop)  USER 10001:10001", True),
    HistoryEntry('/bin/sh -c #(nop)  CMD ["python"]', True),
    HistoryEntry("/bin/sh -c #(nop)  LABEL org.opencontainers.image.title=demo", True),
)


def aligned_facts() -> object:
    return facts(config=config(history=CLASSIC_HISTORY), layers=layers(8))


def test_layers_map_through_the_history() -> None:
    loc = locator(aligned_facts())
    assert loc.history_aligned
    assert line(loc.locate_layer(f"sha256:{0:064x}")) == 10  # the base layer
    assert line(loc.locate_layer(f"{1:064x}")) == 11
    assert line(loc.locate_layer(f"sha256:{2:064x}")) == 14
    assert line(loc.locate_layer(f"sha256:{7:064x}")) == 20
    # An exact layer beats the textual guess: /usr/local/bin/py was made by layer 6 (the RUN).
    assert line(loc.locate_path("/opt/venv/bin/anything", layer=2)) == 14
    assert line(loc.locate_path("/etc/passwd", layer=0)) == 10
    assert line(loc.locate_history(10)) == 22
    assert line(loc.locate_history(0)) == 10


def test_unknown_layer_falls_back_to_from() -> None:
    loc = locator(aligned_facts())
    assert loc.layer_instruction("sha256:" + "f" * 64) is None
    assert line(loc.locate_layer("sha256:" + "f" * 64)) == 10


def test_history_that_does_not_match_gives_no_layer_answer() -> None:
    history = tuple(e for e in CLASSIC_HISTORY if "WORKDIR" not in e.created_by)
    loc = locator(facts(config=config(history=history), layers=layers(8)))
    assert not loc.history_aligned
    assert loc.layer_instruction(f"sha256:{2:064x}") is None
    # Without a layer answer the textual rules still apply.
    assert line(loc.locate_path("/opt/venv/bin/python", layer=2)) == 14


def test_layer_count_mismatch_gives_no_layer_answer() -> None:
    loc = locator(facts(config=config(history=CLASSIC_HISTORY), layers=layers(5)))
    assert not loc.history_aligned


def test_buildkit_history_strings() -> None:
    text = "FROM a:1\nARG V=1\nRUN echo $V\nUSER 1\n"
    history = (
        HistoryEntry("base", False),
        HistoryEntry("RUN |1 V=1 /bin/sh -c echo $V # buildkit", False),
        HistoryEntry("USER 1", True),
    )
    loc = Locator(rendered(text), facts(config=config(history=history), layers=layers(2)))
    assert loc.history_aligned
    assert line(loc.locate_layer(f"sha256:{1:064x}")) == 3


def test_helpers() -> None:
    assert env_root("/opt/venv/lib/python3.11/site-packages") == "/opt/venv"
    assert env_root("/usr/lib/python3/dist-packages") == "/usr"
    assert (
        environment_of("/usr/lib/python3/dist-packages/pip-23.dist-info") == "/usr/lib/python3/dist-packages"
    )
    assert apt_installed_names("apt-get -y install -o A=b foo bar=1 baz:amd64 $X && apt install qux") == {
        "foo",
        "bar",
        "baz",
        "qux",
    }
    assert pip_target("", "pip", " --target /x y").directory == "/x"
    assert pip_target("", "pip", " --prefix=/p y").root == "/p"
    assert pip_target("/opt/v/bin/python -m ", "pip", " y").root == "/opt/v"
    assert pip_target("", "/opt/v/bin/pip", " y").root == "/opt/v"
    assert pip_target("", "pip", " y").root is None


SHELL_TEXT = (
    'FROM a:1\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN useradd app && passwd --lock root\nUSER 1\n'
)


def test_history_under_a_custom_shell_aligns() -> None:
    # The engine writes the SHELL in force in front of every entry it records after it.
    history = (
        HistoryEntry("", False, comment="Imported from -"),
        HistoryEntry("/bin/sh -c #(nop)  SHELL [/bin/bash -o pipefail -c]", True),
        HistoryEntry("/bin/bash -o pipefail -c useradd app && passwd --lock root", False),
        HistoryEntry("/bin/bash -o pipefail -c #(nop)  USER 1", True),
    )
    loc = Locator(rendered(SHELL_TEXT), facts(config=config(history=history), layers=layers(2)))
    assert loc.history_aligned
    assert line(loc.locate_layer(f"sha256:{1:064x}")) == 3
    # /usr/bin/passwd came with the base, although the RUN names the program.
    assert line(loc.locate_path("/usr/bin/passwd", layer=0)) == 1
    assert line(loc.locate_path("/usr/bin/passwd", layer=1)) == 3


def test_a_base_layer_is_located_on_from_when_only_the_keywords_align() -> None:
    history = (
        HistoryEntry("", False, comment="Imported from -"),
        HistoryEntry("/bin/sh -c #(nop)  SHELL [/bin/bash -o pipefail -c]", True),
        HistoryEntry("/bin/bash -o pipefail -c a command this Dockerfile does not have", False),
        HistoryEntry("/bin/bash -o pipefail -c #(nop)  USER 1", True),
    )
    loc = Locator(rendered(SHELL_TEXT), facts(config=config(history=history), layers=layers(2)))
    assert not loc.history_aligned
    assert loc.base_layers == 1
    assert line(loc.locate_path("/usr/bin/passwd", layer=0)) == 1  # the base's: FROM
    assert line(loc.locate_path("/usr/bin/passwd", layer=1)) == 3  # not the base's: the RUN naming it
    assert line(loc.locate_path("/usr/bin/passwd")) == 3  # no layer known: the RUN naming it


def test_heredoc_scripts_are_read_for_packages_and_paths() -> None:
    text = (
        "FROM a:1\n"
        "RUN <<EOF\n"
        "set -e\n"
        "apt-get install -y --no-install-recommends curl\n"
        "install -m 4755 /bin/true /usr/local/bin/elevate\n"
        "EOF\n"
        "RUN cat <<EOF > /etc/motd\n"
        "apt-get install -y gosu\n"
        "EOF\n"
    )
    loc = Locator(rendered(text))
    assert loc.locate_package("deb", "curl")[0] == SourceLocation(PATH, 2, 6)
    assert line(loc.locate_path("/usr/local/bin/elevate")) == 2
    assert line(loc.locate_path("/etc/motd")) == 7
    # Text written to a file is no command: gosu is not installed by line 7.
    assert line(loc.locate_package("deb", "gosu")) == 1
