"""Credentials baked into the image config: ENV, labels, and the build history (build args).

Values are never repeated in findings: the report must not become a second leak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from hardening.findings import Finding, Severity
from hardening.policy.interface import ImageCheck, ImageContext
from hardening.policy.options import Options, Section
from hardening.strict import ListOf, Text, typed

RULE_ENV = "HARDEN-SECRET-ENV"
RULE_LABEL = "HARDEN-SECRET-LABEL"
RULE_HISTORY = "HARDEN-SECRET-HISTORY"

_WORDS = re.compile(r"[^A-Za-z0-9]+")
# NAME=value as the engine writes ENV, ARG and build-arg assignments into history entries.
_ASSIGNMENT = re.compile(r"""(?<![\w$-])([A-Za-z_][A-Za-z0-9_.-]*)=("[^"]*"|'[^']*'|[^\s"']*)""")

WORD = Text(r"^[A-Za-z0-9_]{1,64}$")
ENV_NAME = Text(r"^[A-Za-z_][A-Za-z0-9_.-]{0,255}$")


@dataclass(frozen=True)
class SecretsSection(Section):
    names: tuple[str, ...] = field(default=(), metadata=typed(ListOf(WORD)))
    allow: tuple[str, ...] = field(default=(), metadata=typed(ListOf(ENV_NAME)))


@dataclass(frozen=True)
class SecretWords(Options[SecretsSection]):
    """Words that make a name secret-like, and names that are fine anyway; later files add."""

    section: ClassVar[type[Section]] = SecretsSection
    names: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()

    def merged(self, section: SecretsSection) -> SecretWords:
        return SecretWords(self.names | frozenset(section.names), self.allow | frozenset(section.allow))


def secret_name(name: str, words: frozenset[str], allow: frozenset[str]) -> bool:
    """Whether ``name`` looks like it holds a secret.

    A name matches when one of its words (split at ``_ - .``) equals or ends with a configured
    word, case-insensitively: DB_PASSWORD, APIKEY, github-token. ``*_FILE`` names point to a
    file holding the secret (the Docker secrets convention) and are fine.
    """
    if name in allow:
        return False
    parts = [p.upper() for p in _WORDS.split(name) if p]
    if not parts or parts[-1] == "FILE":
        return False
    upper = {w.upper() for w in words}
    return any(part == word or part.endswith(word) for part in parts for word in upper)


class Secrets(ImageCheck[SecretWords]):
    id = "secrets"
    rules = (
        (RULE_ENV, "An ENV variable with a secret-like name has a non-empty value."),
        (RULE_LABEL, "A label with a secret-like name has a non-empty value."),
        (RULE_HISTORY, "The build history records a secret-like assignment (ENV/ARG/build-arg)."),
    )
    default_severity = Severity.HIGH
    options_type = SecretWords

    def check_image(self, ctx: ImageContext[SecretWords]) -> list[Finding]:
        words, allow = ctx.options.names, ctx.options.allow
        findings: list[Finding] = []
        config = ctx.facts.config
        reported: set[tuple[str, str]] = set()
        sources = (
            (config.env, RULE_ENV, "ENV", "ENV {name}", "baked into the image", "Secret in ENV", "Env"),
            (config.labels, RULE_LABEL, "LABEL", "label {name}", "", "Secret in a label", "Labels"),
        )
        for pairs, rule, keyword, subject, consequence, title, key in sources:
            for name, value in pairs:
                if not value or not secret_name(name, words, allow):
                    continue
                reported.add((name, value))
                where = None
                if ctx.locator:  # the ENV or LABEL instruction that set it
                    where = ctx.locator.at(ctx.locator.defining_instruction(keyword, name))
                findings.append(
                    ctx.finding(
                        rule,
                        f"{subject.format(name=name)} has a non-empty value ({len(value)} characters)"
                        + (f" {consequence}" if consequence else ""),
                        title=title,
                        where=where,
                        image_path=f"config:{key}/{name}",
                    )
                )
        for index, entry in enumerate(config.history):
            for match in _ASSIGNMENT.finditer(entry.created_by):
                name, value = match.group(1), match.group(2).strip("\"'")
                if not value or value.startswith("$") or not secret_name(name, words, allow):
                    continue
                if (name, value) in reported:
                    continue
                reported.add((name, value))
                findings.append(
                    ctx.finding(
                        RULE_HISTORY,
                        f"history entry {index} records {name} with a non-empty value "
                        f"({len(value)} characters); build args and overwritten ENV stay in the history",
                        title="Secret in the image history",
                        where=ctx.locator.locate_history(index) if ctx.locator else None,
                        image_path=f"config:history[{index}]/{name}",
                    )
                )
        return findings
