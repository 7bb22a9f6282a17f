"""Dockerfiles read by the engine's own parser: instructions with line spans, stages, ARG/ENV.

The parsing is BuildKit's (the ``dockerfile`` package wraps its Go parser), so a Dockerfile means
here what it means to ``docker build``: parser directives, the escape character, continuation
lines, comments inside continuations, heredocs (``RUN <<EOF``, ``COPY <<EOF``), and the same
rejections. What the engine resolves later — ARG and ENV scope, variable expansion, stage
lineage — is done here, because every finding has to point at the repository line behind it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hardening.errors import DockerfileError, Location

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_KEYWORD = re.compile(r"\s*\S*")
# A heredoc redirection on an instruction line: ``<<EOF``, ``<<-"EOF"``, ``3<<'X'``.
_HEREDOC_MARK = re.compile(r"""\d*<<-?(["']?)[A-Za-z0-9_.-]+\1""")
_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"})
# Instructions whose arguments the engine splits into words (or reads as a JSON array).
_WORD_INSTRUCTIONS = frozenset({"ADD", "COPY", "EXPOSE", "FROM", "VOLUME"})
# Errors the engine's parser reports are located by re-parsing prefixes; beyond this many lines
# the error keeps the file but not the line.
_LOCATE_LIMIT = 5000
_NO_INSTRUCTIONS = "file with no instructions"


@dataclass(frozen=True)
class Heredoc:
    """The body of a ``<<NAME`` redirection; ``fd`` 0 is standard input."""

    name: str
    content: str
    fd: int = 0


@dataclass(frozen=True)
class Instruction:
    """One instruction as the engine parsed it.

    ``value`` is the text after the keyword on the instruction's own line(s), continuations
    joined, without heredoc bodies; ``arguments`` is ``value`` without the leading ``--flag``
    options; ``values`` are the engine's words (a JSON array, whitespace-separated words,
    name/value pairs or one string, depending on the instruction).
    """

    keyword: str
    value: str
    line: int
    end_line: int
    stage: int  # index of the stage it belongs to; -1 for instructions before the first FROM
    flags: tuple[tuple[str, str], ...] = ()
    arguments: str = ""
    values: tuple[str, ...] = ()
    json: bool = False
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str) -> str | None:
        return next((value for key, value in self.flags if key == name), None)

    @property
    def exec_form(self) -> tuple[str, ...] | None:
        """The JSON array of an exec-form RUN/CMD/ENTRYPOINT/COPY, or None for shell form."""
        return self.values if self.json else None

    @property
    def words(self) -> tuple[str, ...]:
        """The arguments split as the engine splits COPY/ADD/FROM (JSON or whitespace)."""
        if self.json or self.keyword in _WORD_INSTRUCTIONS:
            return self.values
        return tuple(self.arguments.split())

    @property
    def script(self) -> str:
        """The shell commands of a shell-form RUN: its command line, and each heredoc that a shell
        runs as a script (``RUN <<EOF`` without another interpreter, ``RUN bash <<EOF``).

        A heredoc that is data (``cat <<EOF > file``, ``python3 <<EOF``) holds no commands.
        """
        scripts = [self.arguments]
        scripts.extend(doc.content for doc in self.heredocs if self._runs_as_shell(doc))
        return "\n".join(scripts)

    def _runs_as_shell(self, doc: Heredoc) -> bool:
        if doc.fd != 0:
            return False
        command = _HEREDOC_MARK.sub(" ", self.arguments).split()
        if not command:
            # BuildKit runs a lone heredoc as the script itself: by its #! line, else the shell.
            if len(self.heredocs) != 1 or not doc.content.startswith("#!"):
                return len(self.heredocs) == 1
            interpreter = doc.content[2:].split("\n", 1)[0].split()
            if interpreter[:1] and interpreter[0].rsplit("/", 1)[-1] == "env":
                interpreter = interpreter[1:]
            return bool(interpreter) and interpreter[0].rsplit("/", 1)[-1] in _SHELLS
        # `bash <<EOF`, `sh -e <<EOF`: a shell reading its script from standard input.
        return command[0].rsplit("/", 1)[-1] in _SHELLS and "-c" not in command

    def declared_args(self) -> list[tuple[str, str | None]]:
        """``ARG A=1 B`` → [("A", "1"), ("B", None)]."""
        result: list[tuple[str, str | None]] = []
        for word in self.values:
            name, equals, default = word.partition("=")
            result.append((name, _unquote_word(default) if equals else None))
        return result

    def assignments(self) -> list[tuple[str, str]]:
        """The name/value pairs of ENV and LABEL (``ENV A=1 B="x y"``, legacy ``ENV A value``)."""
        first = self.arguments.split(maxsplit=1)[:1]
        if first and "=" not in first[0]:
            # The legacy form: one name, and the rest of the line is its value.
            return [(self.values[0], _unquote(self.values[1]))] if len(self.values) == 2 else []
        pairs = self.values
        return [(_unquote_word(pairs[i]), _unquote_word(pairs[i + 1])) for i in range(0, len(pairs) - 1, 2)]

    def __str__(self) -> str:
        return f"{self.keyword} {self.value}".rstrip()


@dataclass(frozen=True)
class Stage:
    index: int
    base: str  # the image or stage name after FROM, as written
    name: str | None
    from_instruction: Instruction
    instructions: tuple[Instruction, ...]  # FROM first

    @property
    def body(self) -> tuple[Instruction, ...]:
        """The instructions after FROM."""
        return self.instructions[1:]

    def last(self, keyword: str) -> Instruction | None:
        return next((i for i in reversed(self.instructions) if i.keyword == keyword), None)


@dataclass(frozen=True)
class Dockerfile:
    path: str
    instructions: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    global_args: tuple[tuple[str, str | None], ...] = ()
    directives: tuple[tuple[str, str], ...] = field(default=())

    @property
    def final_stage(self) -> Stage | None:
        return self.stages[-1] if self.stages else None

    def stage_named(self, name: str) -> Stage | None:
        """A stage by its ``AS`` name (case-insensitive, as the engine does) or its index."""
        lowered = name.lower()
        for stage in self.stages:
            if stage.name is not None and stage.name.lower() == lowered:
                return stage
        if name.isdigit() and int(name) < len(self.stages):
            return self.stages[int(name)]
        return None

    def parent_stage(self, stage: Stage) -> Stage | None:
        """The earlier stage this one is built ``FROM``, if any."""
        parent = self.stage_named(self.expand(stage.base, self.global_defaults()))
        return parent if parent is not None and parent.index < stage.index else None

    def lineage(self, stage: Stage) -> tuple[Stage, ...]:
        """``stage`` and the stages it is built on, outermost first."""
        chain = [stage]
        current = self.parent_stage(stage)
        while current is not None and current not in chain:
            chain.insert(0, current)
            current = self.parent_stage(current)
        return tuple(chain)

    def global_defaults(self) -> dict[str, str]:
        return {name: value for name, value in self.global_args if value is not None}

    def variables_before(self, stage: Stage, instruction: Instruction | None = None) -> dict[str, str]:
        """ARG defaults and ENV values in scope at ``instruction`` (default: end of the stage).

        A stage sees a global ARG only when it declares it again; ENV values carry over from a
        parent stage, ARGs do not, and ENV wins over an ARG of the same name.
        """
        globals_ = self.global_defaults()
        env: dict[str, str] = {}
        args: dict[str, str] = {}
        for member in self.lineage(stage):
            args = {}
            for item in member.body:
                if instruction is not None and item is instruction:
                    return {**args, **env}
                if item.keyword == "ARG":
                    for name, default in item.declared_args():
                        if default is not None:
                            args[name] = self.expand(default, {**args, **env})
                        elif name in globals_:
                            args[name] = globals_[name]
                elif item.keyword == "ENV":
                    for name, value in item.assignments():
                        env[name] = self.expand(value, {**args, **env})
        return {**args, **env}

    @staticmethod
    def expand(text: str, values: Mapping[str, str]) -> str:
        """Substitute ``$X``, ``${X}``, ``${X:-word}`` and ``${X:+word}`` like the engine."""

        def replace(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(4)
            operator, word = match.group(2), match.group(3)
            value = values.get(name)
            if operator in (":-", "-"):
                return value if value else (word or "")
            if operator in (":+", "+"):
                return (word or "") if value else ""
            return value if value is not None else ""

        return _VARIABLE.sub(replace, text)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _unquote_word(word: str) -> str:
    """One word of ``name=value`` with its quotes and escapes removed, as the shell would."""
    try:
        parts = shlex.split(word, posix=True)
    except ValueError:
        return word
    return parts[0] if len(parts) == 1 else _unquote(word)


def _flags(raw: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    flags: list[tuple[str, str]] = []
    for word in raw:
        name, _, value = word.removeprefix("--").partition("=")
        flags.append((name.lower(), value))
    return tuple(flags)


def _without_flags(value: str, raw: tuple[str, ...]) -> str:
    """``value`` after the ``--flag`` words the engine took off the front."""
    rest = value.lstrip()
    for word in raw:
        if not rest.startswith(word):
            break
        rest = rest[len(word) :].lstrip()
    return rest


def _directives(text: str) -> tuple[tuple[str, str], ...]:
    """Parser directives: ``# key=value`` lines before any other line, comment or blank line."""
    directives: list[tuple[str, str]] = []
    for raw in text.splitlines():
        match = _DIRECTIVE.match(raw.strip())
        if match is None or match.group(1).lower() in {d[0] for d in directives}:
            break
        directives.append((match.group(1).lower(), match.group(2)))
    return tuple(directives)


def _buildkit() -> Any:
    """BuildKit's parser. Imported on first use: it starts a Go runtime in the process."""
    import dockerfile

    return dockerfile


def _engine_parse(text: str) -> list[Any]:
    return list(_buildkit().parse_string(text))


def _error_line(text: str, message: str) -> int | None:
    """The first line at which the engine's parser reports ``message`` (it names no line)."""
    lines = text.splitlines(keepends=True)
    if len(lines) > _LOCATE_LIMIT:
        return None
    for count in range(1, len(lines) + 1):
        try:
            _engine_parse("".join(lines[:count]))
        except _buildkit().GoParseError as exc:
            if str(exc) == message:
                return count
    return None


def _checked_text(text: str, path: str) -> None:
    """Refuse what the parser's C boundary cannot carry faithfully."""
    # The binding passes a C string: a NUL would silently end the file there (and hide, say, a
    # later USER root), and a lone surrogate has no UTF-8 form. Neither is a Dockerfile.
    nul = text.find("\x00")
    if nul >= 0:
        raise DockerfileError(
            "the Dockerfile contains a NUL byte",
            location=Location(path, text.count("\n", 0, nul) + 1),
            hint="a Dockerfile is text; remove the NUL byte",
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DockerfileError(
            "the Dockerfile is not valid UTF-8 text",
            location=Location(path, text.count("\n", 0, exc.start) + 1),
            hint="save the Dockerfile as UTF-8",
        ) from None


def parse_dockerfile(text: str, path: str = "Dockerfile") -> Dockerfile:
    """Parse ``text`` with the engine's parser; what it rejects is a ``DockerfileError``.

    Unknown instructions are kept (the parser keeps them too; the build would reject them).
    A file without instructions is an empty Dockerfile.
    """
    _checked_text(text, path)
    try:
        commands = _engine_parse(text)
    except _buildkit().GoParseError as exc:
        message = str(exc)
        if message == _NO_INSTRUCTIONS:
            return Dockerfile(path, (), (), (), _directives(text))
        raise DockerfileError(
            f"the engine's Dockerfile parser rejects it: {message}",
            location=Location(path, _error_line(text, message)),
            hint="fix that instruction; `docker build` fails on it the same way",
        ) from None
    instructions: list[Instruction] = []
    stage = -1
    for command in commands:
        keyword = str(command.cmd).upper()
        if keyword == "FROM":
            stage += 1
        original = str(command.original)
        heredocs = tuple(
            Heredoc(str(h.name), str(h.content), int(h.file_descriptor)) for h in command.heredocs
        )
        # The instruction's own line: heredoc bodies follow it after a newline.
        own_line = original.split("\n", 1)[0] if heredocs else original
        value = _KEYWORD.sub("", own_line, count=1).strip()
        raw_flags = tuple(str(flag) for flag in command.flags)
        instructions.append(
            Instruction(
                keyword=keyword,
                value=value,
                line=int(command.start_line),
                end_line=int(command.end_line),
                stage=stage,
                flags=_flags(raw_flags),
                arguments=_without_flags(value, raw_flags),
                values=tuple(str(v) for v in command.value),
                json=bool(command.json),
                heredocs=heredocs,
            )
        )
    return _assemble(path, tuple(instructions), _directives(text))


def _assemble(
    path: str, instructions: tuple[Instruction, ...], directives: tuple[tuple[str, str], ...]
) -> Dockerfile:
    global_args: list[tuple[str, str | None]] = []
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.stage == -1:
            if instruction.keyword == "ARG":
                global_args.extend(instruction.declared_args())
            continue
        if instruction.keyword == "FROM":
            words = instruction.values
            base = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(len(stages), base, name, instruction, (instruction,)))
        else:
            stages[-1] = replace(stages[-1], instructions=(*stages[-1].instructions, instruction))
    return Dockerfile(path, instructions, tuple(stages), tuple(global_args), directives)
