"""The Dockerfile parser: line spans, continuations, directives, stages, ARG/ENV scope."""

from __future__ import annotations

from hardening.dockerfile import parse_dockerfile

TEXT = """\
# escape=\\
ARG BASE=hardening/debian:bookworm
ARG RUNAS

FROM ${BASE} AS builder
RUN apt-get update \\
 # a comment inside a continuation
 && apt-get install -y gcc

FROM builder AS tested
ENV PATH=/opt/venv/bin:/usr/bin
ARG RUNAS=root

FROM hardening/debian:bookworm
ARG RUNAS
COPY --from=builder --chown=1:1 /opt/venv /opt/venv
USER ${RUNAS:-app}
"""


def test_instructions_have_line_spans_and_flags() -> None:
    df = parse_dockerfile(TEXT, "Dockerfile")
    run = next(i for i in df.instructions if i.keyword == "RUN")
    assert (run.line, run.end_line) == (6, 8)
    assert "apt-get install -y gcc" in run.arguments
    assert "comment" not in run.arguments
    copy = next(i for i in df.instructions if i.keyword == "COPY")
    assert copy.flag("from") == "builder" and copy.flag("chown") == "1:1"
    assert copy.words == ("/opt/venv", "/opt/venv")
    assert df.directives == (("escape", "\\"),)


def test_stages_names_and_final() -> None:
    df = parse_dockerfile(TEXT)
    assert [(s.name, s.base) for s in df.stages] == [
        ("builder", "${BASE}"),
        ("tested", "builder"),
        (None, "hardening/debian:bookworm"),
    ]
    assert df.final_stage is df.stages[2]
    assert df.stage_named("BUILDER") is df.stages[0]
    assert df.parent_stage(df.stages[1]) is df.stages[0]
    assert [s.index for s in df.lineage(df.stages[1])] == [0, 1]
    assert df.global_args == (("BASE", "hardening/debian:bookworm"), ("RUNAS", None))


def test_arg_and_env_scope() -> None:
    df = parse_dockerfile(TEXT)
    final = df.stages[2]
    user = final.last("USER")
    assert user is not None
    values = df.variables_before(final, user)
    # RUNAS is redeclared without default and the global has none: unset, so the default applies.
    assert df.expand(user.arguments, values) == "app"
    tested = df.variables_before(df.stages[1])
    assert tested["RUNAS"] == "root" and tested["PATH"].startswith("/opt/venv/bin")


def test_global_arg_default_reaches_a_stage_that_redeclares_it() -> None:
    df = parse_dockerfile("ARG WHO=0\nFROM scratch\nARG WHO\nUSER $WHO\n")
    stage = df.stages[0]
    assert df.expand("$WHO", df.variables_before(stage, stage.last("USER"))) == "0"


def test_backtick_escape_directive_and_exec_form() -> None:
    df = parse_dockerfile('# escape=`\nFROM scratch\nRUN echo a `\n    b\nCMD ["python", "-c", "x"]\n')
    run = df.instructions[1]
    assert (run.line, run.end_line) == (3, 4) and run.arguments == "echo a     b"
    assert df.instructions[2].exec_form == ("python", "-c", "x")


def test_parse_arg_and_env_forms() -> None:
    text = 'FROM a\nARG A=1 B\nENV A=1 B="x y"\nENV LEGACY some value\n'
    arg, env, legacy = parse_dockerfile(text).stages[0].body
    assert arg.declared_args() == [("A", "1"), ("B", None)]
    assert env.assignments() == [("A", "1"), ("B", "x y")]
    assert legacy.assignments() == [("LEGACY", "some value")]


def test_empty_and_comment_only_files() -> None:
    assert parse_dockerfile("").stages == ()
    assert parse_dockerfile("# only a comment\n\n").instructions == ()
