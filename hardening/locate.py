"""From a problem in a built image to the repository line that caused it.

A finding is only actionable when a reviewer lands on the line to change. The Locator answers
"which instruction of the rendered Dockerfile put this user / package / file / layer into the
final image?" and, through the render line map, "which template line is behind it?".

Answers come from the Dockerfile text first (the instruction that names a package, the COPY
whose destination covers a path). When the image's facts are given, the image history is aligned
with the final stage's instructions; a layer then maps to exactly one instruction, which is the
most precise answer and is used whenever the alignment is unambiguous. A file whose layer is one
of the base image's is located on FROM even when the history does not align: the inspector knows
the layer, and the base's layers are below the ones the final stage's RUN/COPY/ADD made.
Whatever cannot be traced falls back to the final image's FROM line: it came with the base.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hardening.buildhistory import DEFAULT_SHELL, history_keyword, history_matches
from hardening.dockerfile import Dockerfile, Instruction, Stage, parse_dockerfile
from hardening.findings import SourceLocation
from hardening.inspect.facts import ImageFacts
from hardening.render import RenderedDockerfile

Where = tuple[SourceLocation, SourceLocation | None]

DEBIAN_KINDS = frozenset({"debian", "deb", "dpkg", "ubuntu"})
PYTHON_KINDS = frozenset({"python", "python-pkg", "pip", "pypi", "pipenv", "poetry"})

_SEGMENT_SPLIT = re.compile(r"&&|\|\||[;|\n]")
_APT_INSTALL = re.compile(r"\b(?:apt-get|apt|aptitude)\b(?P<rest>.*?)\binstall\b(?P<packages>.*)")
_PIP_INSTALL = re.compile(r"(?P<before>.*?)(?P<pip>\S*\bpip[0-9.]*)\s+(?:-\S+\s+)*install\b(?P<after>.*)")
_VENV_CREATE = re.compile(r"(?:-m\s+venv|\bvirtualenv)\s+(?:--?\S+\s+)*(?P<dir>/\S+)")
_SYSTEM_ROOTS = ("/usr", "/usr/local", "/")


def env_root(env_path: str) -> str:
    """``/opt/venv`` for ``/opt/venv/lib/python3.11/site-packages``; ``/usr`` for Debian's dir."""
    path = "/" + env_path.strip("/")
    match = re.search(r"/lib(?:64)?/python[0-9.]*/(?:site|dist)-packages", path)
    return path[: match.start()] or "/" if match else path


def environment_of(path: str) -> str:
    """The site-/dist-packages directory a file path lies in (the path itself if none)."""
    path = "/" + path.strip("/")
    match = re.search(r"^(.*?/(?:site|dist)-packages)(?:/|$)", path)
    return match.group(1) if match else path


def _covers(directory: str, path: str) -> bool:
    directory = directory.rstrip("/")
    return path == directory or path.startswith(directory + "/")


def _unquoted(text: str) -> str:
    return text.replace('"', " ").replace("'", " ")


@dataclass(frozen=True)
class _Aligned:
    """Layer index → instruction of the final image (None: the layer came with the base)."""

    layers: tuple[Instruction | None, ...]
    history: tuple[Instruction | None, ...]


class Locator:
    """Maps findings to (rendered Dockerfile line, template line)."""

    def __init__(self, rendered: RenderedDockerfile, facts: ImageFacts | None = None) -> None:
        self.rendered = rendered
        self.facts = facts
        self.dockerfile: Dockerfile = parse_dockerfile(rendered.text, rendered.path.as_posix())
        final = self.dockerfile.final_stage
        self._stages: tuple[Stage, ...] = self.dockerfile.lineage(final) if final else ()
        # What the final image is made of: the bodies of the final stage and the stages under it.
        self.final_instructions: tuple[Instruction, ...] = tuple(
            item for stage in self._stages for item in stage.body
        )
        self.base_from: Instruction | None = self._stages[0].from_instruction if self._stages else None
        self._shells = self._shells_in_effect()
        self._aligned = self._align() if facts is not None else None
        self.base_layers = self._base_layers()

    # -- public API ---------------------------------------------------------------------

    def at(self, instruction: Instruction | None) -> Where:
        """The locations of ``instruction`` (of the file's first line when None)."""
        if instruction is None:
            return SourceLocation(self.rendered.path.as_posix(), 1), None
        rendered = SourceLocation(
            self.rendered.path.as_posix(),
            instruction.line,
            instruction.end_line if instruction.end_line != instruction.line else None,
        )
        template_line = self.rendered.template_line(instruction.line)
        template = (
            SourceLocation(self.rendered.template.as_posix(), template_line)
            if template_line is not None
            else None
        )
        return rendered, template

    def locate_user(self) -> Where:
        return self.at(self.user_instruction())

    def locate_package(self, kind: str, name: str, env_path: str | None = None) -> Where:
        return self.at(self.package_instruction(kind, name, env_path))

    def locate_path(self, path: str, layer: int | None = None) -> Where:
        return self.at(self.path_instruction(path, layer))

    def locate_layer(self, diff_id: str) -> Where:
        return self.at(self.layer_instruction(diff_id) or self.base_from)

    def locate_history(self, index: int) -> Where:
        """The instruction behind ``facts.config.history[index]`` (FROM for the base's entries)."""
        if self._aligned is not None and 0 <= index < len(self._aligned.history):
            return self.at(self._aligned.history[index] or self.base_from)
        return self.at(self.base_from)

    # -- instruction lookups ------------------------------------------------------------

    def user_instruction(self) -> Instruction | None:
        """The last USER of the final image, else its FROM (the base's user applies)."""
        users = [i for i in self.final_instructions if i.keyword == "USER"]
        return users[-1] if users else self.base_from

    def package_instruction(self, kind: str, name: str, env_path: str | None = None) -> Instruction | None:
        kind = kind.lower()
        if kind in DEBIAN_KINDS:
            return self._apt_instruction(name) or self.base_from
        if kind in PYTHON_KINDS:
            return self._python_instruction(name, env_path) or self.base_from
        return self.base_from

    def path_instruction(self, path: str, layer: int | None = None) -> Instruction | None:
        """The last instruction that could have written ``path`` into the final image.

        ``layer`` (index in the image, 0 = first base layer) gives an exact answer when the
        history aligns; otherwise a COPY/ADD whose destination covers the path or a RUN that
        names it (or its file name) is taken; otherwise FROM.
        """
        path = "/" + path.strip("/")
        if layer is not None and self.base_layers is not None and 0 <= layer < self.base_layers:
            return self.base_from
        if layer is not None and self._aligned is not None and 0 <= layer < len(self._aligned.layers):
            return self._aligned.layers[layer] or self.base_from
        base_name = posixpath.basename(path)
        name_word = re.compile(r"(?<![\w./-])" + re.escape(base_name) + r"(?![\w-])") if base_name else None
        found: Instruction | None = None
        for instruction in self.final_instructions:
            if instruction.keyword in ("COPY", "ADD"):
                destination = self._destination(instruction)
                if destination is not None and _covers(destination, path):
                    found = instruction
            elif instruction.keyword == "RUN":
                text = _unquoted(instruction.script)
                mentions_path = re.search(re.escape(path) + r"(?![\w.-])", text) is not None
                if mentions_path or (name_word is not None and name_word.search(text)):
                    found = instruction
        return found or self.base_from

    def layer_instruction(self, diff_id: str) -> Instruction | None:
        """The instruction that created the layer ``diff_id``; None when that cannot be told.

        A layer of the base image maps to the final FROM.
        """
        if self.facts is None or self._aligned is None:
            return None
        wanted = diff_id if diff_id.startswith("sha256:") else f"sha256:{diff_id}"
        for layer in self.facts.layers:
            if layer.diff_id == wanted and 0 <= layer.index < len(self._aligned.layers):
                return self._aligned.layers[layer.index] or self.base_from
        return None

    def defining_instruction(self, keyword: str, name: str) -> Instruction | None:
        """The last ENV / LABEL / ARG of the final image that sets ``name``, else FROM."""
        found = None
        for instruction in self.final_instructions:
            if instruction.keyword != keyword:
                continue
            pairs = instruction.declared_args() if keyword == "ARG" else instruction.assignments()
            if any(key == name for key, _ in pairs):
                found = instruction
        return found or self.base_from

    @property
    def history_aligned(self) -> bool:
        return self._aligned is not None

    # -- Debian -------------------------------------------------------------------------

    def _apt_instruction(self, name: str) -> Instruction | None:
        found = None
        for instruction in self.final_instructions:
            if instruction.keyword == "RUN" and name in apt_installed_names(instruction.script):
                found = instruction
        return found

    # -- Python -------------------------------------------------------------------------

    def _python_instruction(self, name: str, env_path: str | None) -> Instruction | None:
        if env_path is None:
            env_path = self._unique_environment(name)
            if env_path is None:
                return None
        env_path = environment_of(env_path)
        root = env_root(env_path)
        found = None
        for stage in self._stages:
            for instruction in stage.body:
                if instruction.keyword == "RUN" and self._installs_into(stage, instruction, env_path, root):
                    found = instruction
                elif instruction.keyword in ("COPY", "ADD"):
                    destination = self._destination(instruction)
                    if destination is not None and (_covers(destination, env_path) or destination == root):
                        found = instruction
        if found is None and env_path.startswith("/usr/lib/python3/dist-packages"):
            # Debian ships Python distributions as python3-<name> packages.
            found = self._apt_instruction(f"python3-{name.lower()}")
        return found

    def _unique_environment(self, name: str) -> str | None:
        if self.facts is None:
            return None
        envs = [env.path for env in self.facts.python_envs if env.get(name) is not None]
        return envs[0] if len(envs) == 1 else None

    def _installs_into(self, stage: Stage, instruction: Instruction, env_path: str, root: str) -> bool:
        for segment in _SEGMENT_SPLIT.split(instruction.script):
            venv = _VENV_CREATE.search(segment)
            if venv and _covers(venv.group("dir"), env_path):
                return True
            match = _PIP_INSTALL.search(segment)
            if match is None:
                continue
            target = pip_target(match.group("before"), match.group("pip"), match.group("after"))
            if target.directory is not None:
                if _covers(target.directory, env_path):
                    return True
                continue
            if target.root is not None:
                if target.root.rstrip("/") == root.rstrip("/"):
                    return True
                continue
            # A bare pip installs wherever PATH leads: a venv when its bin comes first.
            variables = self.dockerfile.variables_before(stage, instruction)
            active = _active_root(variables)
            if active is not None:
                if active == root:
                    return True
            elif root in _SYSTEM_ROOTS:
                return True
        return False

    # -- files --------------------------------------------------------------------------

    def _destination(self, instruction: Instruction) -> str | None:
        words = instruction.words
        if len(words) < 2:
            return None
        stage = self.dockerfile.stages[instruction.stage]
        variables = self.dockerfile.variables_before(stage, instruction)
        destination = self.dockerfile.expand(words[-1], variables)
        if not destination.startswith("/"):
            destination = posixpath.join(self._workdir(stage, instruction), destination)
        normalised = posixpath.normpath(destination)
        return "/" + normalised.lstrip("/")

    def _workdir(self, stage: Stage, instruction: Instruction) -> str:
        workdir = "/"
        for member in self.dockerfile.lineage(stage):
            for item in member.body:
                if item is instruction:
                    return workdir
                if item.keyword == "WORKDIR":
                    variables = self.dockerfile.variables_before(member, item)
                    target = self.dockerfile.expand(item.arguments.strip(), variables)
                    workdir = posixpath.join(workdir, target)
        return workdir

    # -- history --------------------------------------------------------------------------

    def _shells_in_effect(self) -> dict[int, tuple[str, ...]]:
        """The SHELL each final-image instruction runs under (by id), which the engine writes in
        front of every RUN in the history: ``/bin/bash -o pipefail -c apt-get …``."""
        shells: dict[int, tuple[str, ...]] = {}
        shell = DEFAULT_SHELL
        for instruction in self.final_instructions:
            shells[id(instruction)] = shell
            if instruction.keyword == "SHELL" and instruction.exec_form:
                shell = instruction.exec_form
        return shells

    def _base_layers(self) -> int | None:
        """How many of the image's first layers came with the base image (the final FROM).

        When the history's commands do not align (a RUN the engine recorded differently), its
        keywords may still: that is enough to know where the base ends.
        """
        aligned = self._aligned or (self._align(exact=False) if self.facts is not None else None)
        if aligned is None:
            return None
        base = 0
        while base < len(aligned.layers) and aligned.layers[base] is None:
            base += 1
        return base

    def _align(self, *, exact: bool = True) -> _Aligned | None:
        """Match the image history, from its end, with the final image's instructions.

        The classic builder records one history entry per instruction after FROM, in order;
        BuildKit records none for ARG. Engine-added LABEL entries (build labels) may trail.
        Anything that does not match is ambiguity, and ambiguity gives no answer. Not ``exact``:
        entries match by keyword alone, which is enough to tell the base's layers apart.
        """
        assert self.facts is not None  # noqa: S101 # nosec B101 - narrows a type; only called with facts
        history = self.facts.config.history
        if not history:
            return None
        position = len(history) - 1
        matched: dict[int, Instruction] = {}
        for instruction in reversed(self.final_instructions):
            if not matched:
                while (
                    position >= 0
                    and history_keyword(history[position]) == "LABEL"
                    and not history_matches(history[position], instruction, DEFAULT_SHELL)
                ):
                    position -= 1
            shell = self._shells.get(id(instruction), DEFAULT_SHELL)
            if position >= 0 and (
                history_matches(history[position], instruction, shell)
                if exact
                else history_keyword(history[position]) == instruction.keyword
            ):
                matched[position] = instruction
                position -= 1
                continue
            if instruction.keyword == "ARG":
                continue
            return None
        base_entries = position + 1
        by_history: list[Instruction | None] = []
        by_layer: list[Instruction | None] = []
        for index, entry in enumerate(history):
            owner = matched.get(index) if index >= base_entries else None
            by_history.append(owner)
            if not entry.empty_layer:
                by_layer.append(owner)
        if len(by_layer) != len(self.facts.layers):
            return None
        return _Aligned(tuple(by_layer), tuple(by_history))


@dataclass(frozen=True)
class PipTarget:
    """Where a ``pip install`` writes: a --target directory, a prefix/venv root, or unknown."""

    directory: str | None = None
    root: str | None = None


def pip_target(before: str, pip: str, after: str) -> PipTarget:
    """Read the target of one ``pip install`` command segment."""
    words = after.split()
    for index, word in enumerate(words):
        for option in ("--target", "-t", "--prefix", "--root"):
            value = None
            if word == option and index + 1 < len(words):
                value = words[index + 1]
            elif word.startswith(option + "=") and option.startswith("--"):
                value = word.split("=", 1)[1]
            if value is not None:
                value = value.strip("'\"")
                return PipTarget(directory=value) if option in ("--target", "-t") else PipTarget(root=value)
    # `/opt/venv/bin/pip install` or `/opt/venv/bin/python -m pip install`.
    program = pip
    prior = before.split()
    if not pip.startswith("/") and len(prior) >= 2 and prior[-1] == "-m":
        program = prior[-2]
    if program.startswith("/") and "/bin/" in program:
        return PipTarget(root=program.rsplit("/bin/", 1)[0] or "/")
    return PipTarget()


def _active_root(variables: dict[str, str]) -> str | None:
    """The venv a bare ``pip`` / ``python`` resolves to, when PATH puts one first."""
    venv = variables.get("VIRTUAL_ENV")
    path = variables.get("PATH", "")
    for entry in path.split(":"):
        entry = entry.rstrip("/")
        if not entry.endswith("/bin"):
            continue
        root = entry[: -len("/bin")] or "/"
        if root in _SYSTEM_ROOTS or root in ("/usr/local/sbin", "/sbin"):
            return None
        return root
    return venv.rstrip("/") if venv else None


def apt_installed_names(command: str) -> frozenset[str]:
    """Package names an ``apt-get install`` (or ``apt install``) in ``command`` names."""
    names: set[str] = set()
    for segment in _SEGMENT_SPLIT.split(command):
        match = _APT_INSTALL.search(segment)
        if match is None:
            continue
        skip_next = False
        for word in match.group("packages").split():
            word = word.strip("'\"")
            if skip_next:
                skip_next = False
                continue
            if word in ("-o", "-t", "--target-release", "-c"):
                skip_next = True
                continue
            if word.startswith("-") or not word or "$" in word:
                continue
            name = re.split(r"[=:/]", word, maxsplit=1)[0]
            if re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name):
                names.add(name)
    return frozenset(names)


__all__: Sequence[str] = (
    "DEBIAN_KINDS",
    "PYTHON_KINDS",
    "Locator",
    "PipTarget",
    "Where",
    "apt_installed_names",
    "env_root",
    "environment_of",
    "pip_target",
)
