"""tests/data/strict/corpus.jsonl: near-miss policy files and catalogs, and what harden answered.

    PYTHONPATH=<tree> .venv/bin/python tests/unit/strict_corpus.py tests/data/strict/corpus.jsonl [NOTE]

The expectations in the committed corpus.jsonl (a header line, then one case per line) were
recorded from the tree at commit cb4d96e, when pydantic validated both files, by ``answer_policy``
and ``answer_catalog`` below: tests/unit/test_strict.py holds ``hardening.strict`` to exactly the
answers users got then (which key paths, lines, messages, in which order, how many). The
documents are valid ones with random values replaced, keys removed or added (also keys that are
not strings), and random characters cut and inserted; one document is kept per distinct answer,
up to a cap, so the file stays small. Deterministic for a given seed.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import math
import random
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from hardening.catalog import load_catalog
from hardening.errors import HardeningError
from hardening.policy.config import merge, parse_policy

SHOWN = "policies/x.yaml"
SEED = 20261201
CAP = {"policy": 90, "catalog": 80}
# Syntax errors are the parsers' (PyYAML, tomllib), not the schema's: a few suffice.
SYNTAX_CAP = 6

POLICY = """\
version: 1
description: all
fail_level: low
checks:
  non_root: {severity: high, enabled: true}
  package_floors:
    floors:
      - {package: setuptools, minimum: "75", rationale: r, advisories: [CVE-2024-6345]}
      - {package: pip, minimum: "24.3"}
  forbidden_binaries: {names: [gosu], go_modules: [github.com/tianon/gosu]}
  build_tools: {names: [gcc]}
  setuid: {allow: [/usr/bin/passwd]}
  secrets: {names: [PASSWORD], allow: [DB_PASSWORD_FILE]}
  anomalies: {allow: ["/dev/*"]}
  dockerfile: {enabled: false}
"""

CATALOG = """\
[project]
output_dir = "scans"
default_base = "bookworm"

[db]
repositories = ["127.0.0.1:5000/trivy-db:2"]

[base.bookworm]
repository = "hardening/debian"
tag = "bookworm"
suite = "bookworm"
policies = ["policies/policy.yaml"]

[[image]]
name = "demo"
template = "dockerfiles/demo/Dockerfile.j2"
repository = "example/demo"
tags = ["1"]
policies = ["policies/policy.yaml"]

[image.variables]
greeting = "hello"
uid = 10001

[[image]]
name = "multi"
template = "dockerfiles/multi/Dockerfile.j2"
repository = "example/multi"

[[image.variant]]
name = "multi"
tags = ["3.11"]
variables = { version = "3.11", extra = ["a", "b"] }

[[image.variant]]
tags = ["3.13"]
"""

# Files the catalog names; the test writes the same ones.
FILES = {
    "dockerfiles/demo/Dockerfile.j2": "FROM {{ base_image }}\n",
    "dockerfiles/multi/Dockerfile.j2": "FROM {{ base_image }}\n",
    "policies/policy.yaml": "version: 1\n",
}

VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 2, 1.0, 1.5, float("nan"), float("inf"), 2**63, 2**63 - 1, 2**70,
    "", "x", "low", "LOW", "critical", "a b", "/x", "/x\n", "x\n", "gcc", "github.com/x", "24.3",
    "banana", "CVE-2024-1", "1", "Bad Name", "UPPER/Case", "../x", "/abs", "$(id)", "x && y",
    "hardening/debian", "bookworm", "nope", "policies/policy.yaml", "policies/none.yaml",
    [], [1], ["x"], [None], ["/a", 5], ["gcc", "a b", 3], [[1]], [{}], [{"tags": []}],
    {}, {"x": 1}, {"severity": "low"}, {"package": "pip", "minimum": "1"}, {"tags": ["x"]},
    {"repositories": []}, {"a": 1, "b": [1], "c": {"d": 1}}, {"base_image": "x"},
    datetime.date(2020, 1, 1), datetime.datetime(2020, 1, 1, 1, 2, 3), b"x",
]  # fmt: skip
KEYS: list[Any] = [
    "version", "description", "fail_level", "checks", "severity", "enabled", "names", "allow",
    "floors", "package", "minimum", "advisories", "go_modules", "non_root", "package_floors",
    "nope", "severty", "", "project", "base", "image", "db", "name", "template", "repository",
    "tags", "variables", "variant", "output_dir", "default_base", "gate", "tag", "suite",
    "wheelhouse", "repositories", "a b", 1, True, None, 1.5, 2**70, datetime.date(2021, 2, 3),
]  # fmt: skip
NOISE = [*"\"'[]{}:,=-#\n\t \\x0123456789.eE$%&*!|>@`", "\ufffd", "\x00", "\u2028"]


def paths(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in children:
        yield from paths(value, (*path, key))


def at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def value(rng: random.Random, toml: bool, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 1 or roll < 0.6:
        return copy.deepcopy(rng.choice(VALUES))
    if roll < 0.8:
        return [value(rng, toml, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = [k for k in KEYS if isinstance(k, str)] if toml else KEYS
    return {rng.choice(keys): value(rng, toml, depth + 1) for _ in range(rng.randint(0, 3))}


def mutated(rng: random.Random, data: Any, toml: bool) -> Any:
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(list(paths(data)))
        target, roll = at(data, path), rng.random()
        if path and roll < 0.5:
            at(data, path[:-1])[path[-1]] = value(rng, toml)
        elif path and roll < 0.65:
            del at(data, path[:-1])[path[-1]]
        elif isinstance(target, dict):
            keys = [k for k in KEYS if isinstance(k, str)] if toml else KEYS
            target[rng.choice(keys)] = value(rng, toml)
        elif isinstance(target, list):
            target.append(value(rng, toml))
    return data


def noisy(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 3)):
        start = rng.randint(0, len(text))
        end = rng.randint(start, min(len(text), start + 10))
        text = text[:start] + "".join(rng.choice(NOISE) for _ in range(rng.randint(0, 5))) + text[end:]
    return text


def toml_value(item: Any) -> str:
    if item is None or isinstance(item, bytes) or (isinstance(item, float) and math.isnan(item)):
        raise ValueError("not in TOML")
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, float) and math.isinf(item):
        return "inf"
    if isinstance(item, int | float):
        if isinstance(item, int) and not -(2**63) <= item < 2**63:
            raise ValueError("not in TOML")
        return repr(item)
    if isinstance(item, str):
        return json.dumps(item)
    if isinstance(item, datetime.date):
        return item.isoformat()
    if isinstance(item, list):
        return "[" + ", ".join(toml_value(x) for x in item) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in item.items()) + "}"


def toml_key(key: Any) -> str:
    if not isinstance(key, str):
        raise ValueError("not in TOML")
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def is_tables(item: Any) -> bool:
    return isinstance(item, list) and bool(item) and all(isinstance(x, dict) for x in item)


def toml_text(data: dict[str, Any]) -> str:
    """A catalog in the shapes people write: tables, arrays of tables, inline values."""
    lines = [
        f"{toml_key(k)} = {toml_value(v)}"
        for k, v in data.items()
        if not isinstance(v, dict) and not is_tables(v)
    ]
    for key, item in data.items():
        if isinstance(item, dict):
            lines.append(f"\n[{toml_key(key)}]")
            lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in item.items())
        elif is_tables(item):
            for entry in item:
                lines.append(f"\n[[{toml_key(key)}]]")
                nested = [(k, v) for k, v in entry.items() if is_tables(v)]
                lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in entry.items() if not is_tables(v))
                for name, tables in nested:
                    for table in tables:
                        lines.append(f"\n[[{toml_key(key)}.{toml_key(name)}]]")
                        lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def answer_policy(text: str) -> str:
    try:
        policy = merge([(SHOWN, parse_policy(text, SHOWN))])
    except HardeningError as exc:
        return f"exit {exc.exit_code}\n{exc.diagnostics()}"
    checks = {
        check.value: [config.severity.label, config.enabled, canonical(config.options)]
        for check, config in policy.checks.items()
    }
    return "ok " + json.dumps({"fail_level": policy.fail_level.label, "checks": checks}, sort_keys=True)


def canonical(options: Any) -> Any:
    """Options as JSON, sets sorted (their order varies from run to run)."""
    out = {}
    for field in dataclasses.fields(options):
        item = getattr(options, field.name)
        if isinstance(item, frozenset):
            out[field.name] = sorted(item)
        elif isinstance(item, tuple):
            out[field.name] = [canonical(x) if dataclasses.is_dataclass(x) else x for x in item]
        else:
            out[field.name] = item
    return out


def answer_catalog(text: str, root: Path) -> str:
    path = root / "hardening.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        answer = "ok " + repr(load_catalog(path))
    except HardeningError as exc:
        answer = f"exit {exc.exit_code}\n{exc.diagnostics()}"
    return answer.replace(str(root), "<root>")


def shape(answer: str) -> str:
    """What makes two answers the same kind: the messages, without lines and values."""
    text = re.sub(r":\d+:", ":N:", answer)
    return re.sub(r"'[^']*'|\"[^\"]*\"|\[\d+\]|\d+", "_", text)


def main() -> int:
    rng = random.Random(SEED)
    out: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    counts = {"policy": 0, "catalog": 0}
    syntax = {"policy": 0, "catalog": 0}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for name, content in FILES.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(content)
        for _ in range(6000):
            kind = rng.choice(["policy", "catalog"])
            if counts[kind] >= CAP[kind]:
                continue
            try:
                if kind == "policy":
                    if rng.random() < 0.25:
                        text = noisy(rng, POLICY)
                    else:
                        data = mutated(rng, yaml.safe_load(POLICY), toml=False)
                        text = yaml.safe_dump(
                            data, default_flow_style=rng.choice([None, False]), sort_keys=False
                        )
                else:
                    if rng.random() < 0.2:
                        text = noisy(rng, CATALOG)
                    else:
                        import tomllib

                        text = toml_text(mutated(rng, tomllib.loads(CATALOG), toml=True))
            except (ValueError, yaml.YAMLError):
                continue
            answer = answer_policy(text) if kind == "policy" else answer_catalog(text, root)
            if (kind, shape(answer)) in seen:
                continue
            if "not valid YAML" in answer or "not valid TOML" in answer:
                if syntax[kind] >= SYNTAX_CAP:
                    continue
                syntax[kind] += 1
            seen.add((kind, shape(answer)))
            counts[kind] += 1
            out.append({"kind": kind, "text": text, "answer": answer})
    for kind, text in (("policy", POLICY), ("catalog", CATALOG)):
        out.insert(0, {"kind": kind, "text": text, "answer": ""})
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for name, content in FILES.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(content)
        for case in out[:2]:
            case["answer"] = (
                answer_policy(case["text"])
                if case["kind"] == "policy"
                else answer_catalog(case["text"], root)
            )
    header = {"recorded_from": sys.argv[2] if len(sys.argv) > 2 else "", "files": FILES, "shown": SHOWN}
    lines = [json.dumps(header), *(json.dumps(case) for case in out)]
    Path(sys.argv[1]).write_text("\n".join(lines) + "\n")
    print(f"{len(out)} cases: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
