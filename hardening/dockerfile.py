"""A small Dockerfile parser: instructions with their line spans, stages, ARG and ENV values.

It reads what the engine reads (parser directives, the escape character, continuation lines,
comments inside continuations) and keeps the line numbers, because every policy finding has to
point at the repository line that caused it. Heredocs are not supported: no template uses them.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_FLAG = re.compile(r"--([A-Za-z][A-Za-z0-9-]*)(?:=(\S*))?")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
# Instructions that run something in the image and therefore can create any file.
RUN_LIKE = frozenset({"RUN"})
FILE_INSTRUCTIONS = frozenset({"COPY", "ADD"})


@dataclass(frozen=True)
class Instruction:
    """One instruction; ``value`` is the text after the keyword with continuations joined."""

    keyword: str
    value: str
    line: int
    end_line: int
    stage: int  # index of the stage it belongs to; -1 for global ARGs before the first FROM
    flags: tuple[tuple[str, str], ...] = ()
    arguments: str = ""  # ``value`` without the leading ``--flag`` options

    def flag(self, name: str) -> str | None:
        return next((value for key, value in self.flags if key == name), None)

    @property
    def exec_form(self) -> tuple[str, ...] | None:
        """The JSON array of an exec-form RUN/CMD/ENTRYPOINT/COPY, or None for shell form."""
        text = self.arguments.strip()
        if not text.startswith("["):
            return None
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return None
        if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
            return tuple(parsed)
        return None

    @property
    def words(self) -> tuple[str, ...]:
        """The arguments split as the engine splits COPY/ADD/FROM/USER (JSON or whitespace)."""
        exec_form = self.exec_form
        if exec_form is not None:
            return exec_form
        return tuple(self.arguments.split())

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
                    for name, default in parse_arg(item.arguments):
                        if default is not None:
                            args[name] = self.expand(default, {**args, **env})
                        elif name in globals_:
                            args[name] = globals_[name]
                elif item.keyword == "ENV":
                    for name, value in parse_env(item.arguments):
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


def parse_arg(arguments: str) -> list[tuple[str, str | None]]:
    """``ARG A=1 B`` → [("A", "1"), ("B", None)]."""
    result: list[tuple[str, str | None]] = []
    for word in _split_words(arguments):
        name, equals, default = word.partition("=")
        result.append((name, default if equals else None))
    return result


def parse_env(arguments: str) -> list[tuple[str, str]]:
    """``ENV A=1 B="x y"`` and the legacy ``ENV A value with spaces``."""
    words = _split_words(arguments)
    if not words:
        return []
    if "=" not in words[0]:
        name, _, rest = arguments.strip().partition(" ")
        return [(name, _unquote(rest.strip()))]
    result = []
    for word in words:
        name, _, value = word.partition("=")
        result.append((name, value))
    return result


def parse_label(arguments: str) -> list[tuple[str, str]]:
    return parse_env(arguments)


def _split_words(text: str) -> list[str]:
    try:
        return shlex.split(text, posix=True)
    except ValueError:
        return text.split()


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _split_flags(value: str) -> tuple[tuple[tuple[str, str], ...], str]:
    flags: list[tuple[str, str]] = []
    rest = value.lstrip()
    while rest.startswith("--"):
        word, _, remainder = rest.partition(" ")
        match = _FLAG.fullmatch(word)
        if match is None:
            break
        flags.append((match.group(1).lower(), match.group(2) or ""))
        rest = remainder.lstrip()
    return tuple(flags), rest


def parse_dockerfile(text: str, path: str = "Dockerfile") -> Dockerfile:
    """Parse ``text``; unknown or malformed lines are kept as instructions, never dropped."""
    lines = text.splitlines()
    directives: list[tuple[str, str]] = []
    escape = "\\"
    start = 0
    # Parser directives are only recognised before any other line, comment or blank line.
    for number, raw in enumerate(lines):
        match = _DIRECTIVE.match(raw.strip())
        if match is None or match.group(1).lower() in {d[0] for d in directives}:
            break
        key = match.group(1).lower()
        directives.append((key, match.group(2)))
        if key == "escape" and match.group(2) in ("`", "\\"):
            escape = match.group(2)
        start = number + 1

    instructions: list[Instruction] = []
    stage_index = -1
    index = start
    while index < len(lines):
        raw = lines[index]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        first = index
        parts: list[str] = []
        current = raw.rstrip()
        while True:
            if current.endswith(escape):
                parts.append(current[:-1])
                index += 1
                # Comment and blank lines inside a continuation are dropped by the engine.
                while index < len(lines) and (
                    not lines[index].strip() or lines[index].lstrip().startswith("#")
                ):
                    index += 1
                if index >= len(lines):
                    break
                current = lines[index].rstrip()
                continue
            parts.append(current)
            break
        end = min(index, len(lines) - 1)
        joined = "".join(parts).strip()
        keyword, _, value = joined.partition(" ")
        keyword = keyword.upper()
        value = value.strip()
        if keyword == "FROM":
            stage_index += 1
        flags, arguments = _split_flags(value) if keyword in {"FROM", "COPY", "ADD", "RUN"} else ((), value)
        instructions.append(
            Instruction(
                keyword=keyword,
                value=value,
                line=first + 1,
                end_line=end + 1,
                stage=stage_index if keyword != "ARG" or stage_index >= 0 else -1,
                flags=flags,
                arguments=arguments,
            )
        )
        index += 1
    return _assemble(path, tuple(instructions), tuple(directives))


def _assemble(
    path: str, instructions: tuple[Instruction, ...], directives: tuple[tuple[str, str], ...]
) -> Dockerfile:
    global_args: list[tuple[str, str | None]] = []
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.stage == -1:
            if instruction.keyword == "ARG":
                global_args.extend(parse_arg(instruction.arguments))
            continue
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            base = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(len(stages), base, name, instruction, (instruction,)))
        else:
            stages[-1] = replace(stages[-1], instructions=(*stages[-1].instructions, instruction))
    return Dockerfile(path, instructions, tuple(stages), tuple(global_args), directives)
