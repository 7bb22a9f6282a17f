"""An image's build history read against its Dockerfile: which instruction an entry records.

The classic builder writes ``/bin/sh -c #(nop)  USER 1`` for metadata and the shell in force
followed by the command for a RUN (``/bin/bash -o pipefail -c apt-get …`` after a SHELL);
BuildKit writes ``RUN /bin/sh -c … # buildkit`` and ``USER 1``. Build arguments in scope of a RUN
come first (``|2 A=1 B=2 /bin/sh -c …``).
"""

from __future__ import annotations

import re

from hardening.dockerfile import Instruction
from hardening.inspect.facts import HistoryEntry

DEFAULT_SHELL: tuple[str, ...] = ("/bin/sh", "-c")

_HISTORY_ARGS = re.compile(r"^\|\d+\s+")
_SHELL_PREFIX = re.compile(r"^/bin/(?:ba|da)?sh\s+-c\s+")
_NOP = re.compile(r"#\(nop\)\s*")
_KEYWORDS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    }
)  # fmt: skip


def _normalise(command: str) -> str:
    return " ".join(command.split())


def _history_command(entry: HistoryEntry) -> str:
    text = entry.created_by.strip()
    if text.endswith("# buildkit"):
        text = text[: -len("# buildkit")].rstrip()
    return text


def history_keyword(entry: HistoryEntry) -> str:
    """The instruction keyword an entry records (RUN for a plain command)."""
    text = _history_command(entry)
    nop = _NOP.search(text)
    if nop:
        return text[nop.end() :].split(" ", 1)[0].upper()
    first = text.split(" ", 1)[0]
    if first in _KEYWORDS:
        return first
    return "RUN"


def _run_command(entry: HistoryEntry, shell: tuple[str, ...] = DEFAULT_SHELL) -> str:
    """The command of a RUN history entry, without the shell the engine ran it with."""
    text = _history_command(entry).removeprefix("RUN ")
    prefix = " ".join(shell) + " "
    if _HISTORY_ARGS.match(text):
        # `|2 A=1 B=2 /bin/sh -c …`: the build-arg assignments come before the shell.
        found = text.find(" " + prefix)
        if found >= 0:
            text = text[found + 1 :]
        else:
            pattern = re.search(_SHELL_PREFIX.pattern.lstrip("^"), text)
            text = text[pattern.start() :] if pattern else _HISTORY_ARGS.sub("", text, count=1)
    if text.startswith(prefix):
        return _normalise(text[len(prefix) :])
    return _normalise(_SHELL_PREFIX.sub("", text, count=1))


def history_matches(
    entry: HistoryEntry, instruction: Instruction, shell: tuple[str, ...] = DEFAULT_SHELL
) -> bool:
    """Whether ``entry`` records ``instruction``, run under ``shell`` when it is a RUN."""
    keyword = history_keyword(entry)
    if keyword != instruction.keyword:
        return False
    if keyword != "RUN":
        return True
    exec_form = instruction.exec_form
    if exec_form is not None:
        command = _run_command(entry)
        return command == _normalise(" ".join(exec_form)) or command.startswith("[")
    return _run_command(entry, shell) == _normalise(instruction.arguments)
