"""GitHub code scanning's upload rules for SARIF, beyond what the JSON schema says.

The figures come from GitHub's documentation ("SARIF support for code scanning" and
"SARIF results exceed one or more limits", checked 2025): a file breaking a *maximum* is
rejected at upload; above a *display* limit GitHub silently keeps only part of the data.
``check_github_rules`` reports every problem it finds rather than stopping at the first, so a
test failure shows the whole picture.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Upload is rejected above these.
MAX_RUNS_PER_FILE = 20
MAX_RESULTS_PER_RUN = 25_000
MAX_RULES_PER_RUN = 25_000
MAX_EXTENSIONS_PER_RUN = 100
MAX_TAGS_PER_RULE = 20
MAX_GZIP_BYTES = 10 * 1000 * 1000  # "10 MB" gzip-compressed; the decimal reading is the safe one
MAX_RULE_NAME_CHARS = 255
MAX_DESCRIPTION_CHARS = 1024  # shortDescription.text and fullDescription.text
# The result table documents "up to a maximum of 10" locations (the limits table says 1,000
# with 100 displayed); the stricter figure is the one we hold ourselves to.
MAX_LOCATIONS_PER_RESULT = 10

# GitHub keeps only this much and drops the rest without failing the upload.
DISPLAYED_RESULTS_PER_RUN = 5_000
DISPLAYED_TAGS_PER_RULE = 10

LEVELS = frozenset({"none", "note", "warning", "error"})
RULE_LEVELS = frozenset({"note", "warning", "error"})
PRECISIONS = frozenset({"very-high", "high", "medium", "low"})
PROBLEM_SEVERITIES = frozenset({"error", "warning", "recommendation"})


@dataclass(frozen=True)
class Problem:
    """One way a SARIF document breaks GitHub's rules; ``where`` is a JSON path into it."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def category_of(automation_id: str) -> str:
    """GitHub reads ``runAutomationDetails.id`` as ``category/run-id``: the part before the last
    slash is the category, an id without a slash has none."""
    head, sep, _ = automation_id.rpartition("/")
    return head if sep else ""


def gzip_size(doc: Mapping[str, Any], *, limit: int | None = None) -> int:
    """The gzip size GitHub measures; with ``limit``, a cheap upper bound when that settles it.

    Deflate adds at most 5 bytes per 64 KiB block plus a header to incompressible input, and
    level 1 never compresses better than level 9, so either bound below the limit proves the
    real size is below it too.
    """
    return gzip_size_of(json.dumps(doc, ensure_ascii=False).encode("utf-8"), limit=limit)


def gzip_size_of(raw: bytes, *, limit: int | None = None) -> int:
    """``gzip_size`` of a document already written as ``json.dumps(doc, ensure_ascii=False)``."""
    if limit is not None:
        plain_bound = len(raw) + 5 * (len(raw) // 65536 + 1) + 64
        if plain_bound <= limit:
            return plain_bound
        fast = len(gzip.compress(raw, compresslevel=1, mtime=0))
        if fast <= limit:
            return fast
    return len(gzip.compress(raw, mtime=0))


def _text(obj: Any, key: str) -> str | None:
    """``obj[key].text`` when both levels are there and it is a string."""
    if not isinstance(obj, Mapping):
        return None
    inner = obj.get(key)
    if not isinstance(inner, Mapping):
        return None
    text = inner.get("text")
    return text if isinstance(text, str) else None


def _is_relative_uri(uri: str) -> bool:
    if not uri or uri.startswith(("/", "\\")):
        return False
    scheme, sep, _ = uri.partition(":")
    # a drive letter or a scheme both mean "not relative to the repository root"
    return not (sep and scheme.isalpha() and "/" not in scheme)


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def check_log(self, doc: Any) -> None:
        if not isinstance(doc, Mapping):
            self.add("$", "a SARIF log must be a JSON object")
            return
        if doc.get("version") != "2.1.0":
            self.add("$.version", f"must be '2.1.0', found {doc.get('version')!r}")
        if not isinstance(doc.get("$schema"), str) or not doc.get("$schema"):
            self.add("$.$schema", "required: the URI of the SARIF 2.1.0 schema")
        runs = doc.get("runs")
        if not isinstance(runs, list):
            self.add("$.runs", "required: an array of runs")
            return
        if len(runs) > MAX_RUNS_PER_FILE:
            self.add("$.runs", f"{len(runs)} runs, GitHub accepts at most {MAX_RUNS_PER_FILE}")
        seen: dict[tuple[str, str], int] = {}
        for index, run in enumerate(runs):
            identity = self.check_run(f"$.runs[{index}]", run)
            if identity is None:
                continue
            if identity in seen:
                self.add(
                    f"$.runs[{index}]",
                    f"same tool {identity[0]!r} and category {identity[1]!r} as "
                    f"runs[{seen[identity]}]; GitHub rejects such files",
                )
            else:
                seen[identity] = index
        size = gzip_size(doc)
        if size > MAX_GZIP_BYTES:
            self.add("$", f"{size} bytes gzip-compressed, GitHub accepts at most {MAX_GZIP_BYTES}")

    def check_run(self, where: str, run: Any) -> tuple[str, str] | None:
        if not isinstance(run, Mapping):
            self.add(where, "a run must be an object")
            return None
        tool = run.get("tool")
        driver = tool.get("driver") if isinstance(tool, Mapping) else None
        name = driver.get("name") if isinstance(driver, Mapping) else None
        if not isinstance(name, str) or not name:
            self.add(f"{where}.tool.driver.name", "required and must not be empty")
            name = None
        rule_ids: list[str] = []
        if isinstance(driver, Mapping):
            rule_ids = self.check_rules(f"{where}.tool.driver.rules", driver.get("rules"))
        if isinstance(tool, Mapping):
            extensions = tool.get("extensions")
            if isinstance(extensions, list) and len(extensions) > MAX_EXTENSIONS_PER_RUN:
                self.add(f"{where}.tool.extensions", f"more than {MAX_EXTENSIONS_PER_RUN}")
        results = run.get("results")
        if not isinstance(results, list):
            self.add(f"{where}.results", "required: an array (empty when nothing was found)")
        else:
            if len(results) > MAX_RESULTS_PER_RUN:
                self.add(
                    f"{where}.results",
                    f"{len(results)} results, GitHub accepts at most {MAX_RESULTS_PER_RUN}",
                )
            elif len(results) > DISPLAYED_RESULTS_PER_RUN:
                self.add(
                    f"{where}.results",
                    f"{len(results)} results, GitHub keeps only {DISPLAYED_RESULTS_PER_RUN}",
                )
            for index, result in enumerate(results):
                self.check_result(f"{where}.results[{index}]", result, rule_ids)
        details = run.get("automationDetails")
        category = ""
        if details is not None:
            auto_id = details.get("id") if isinstance(details, Mapping) else None
            if not isinstance(auto_id, str):
                self.add(f"{where}.automationDetails.id", "must be a string")
            else:
                category = category_of(auto_id)
        return None if name is None else (name, category)

    def check_rules(self, where: str, rules: Any) -> list[str]:
        if not isinstance(rules, list):
            self.add(where, "required: an array of reportingDescriptor objects")
            return []
        if len(rules) > MAX_RULES_PER_RUN:
            self.add(where, f"{len(rules)} rules, GitHub accepts at most {MAX_RULES_PER_RUN}")
        ids: list[str] = []
        for index, rule in enumerate(rules):
            here = f"{where}[{index}]"
            if not isinstance(rule, Mapping):
                self.add(here, "a rule must be an object")
                ids.append("")
                continue
            rule_id = rule.get("id")
            if not isinstance(rule_id, str) or not rule_id:
                self.add(f"{here}.id", "required and must not be empty")
                rule_id = ""
            elif rule_id in ids:
                self.add(f"{here}.id", f"duplicate rule id {rule_id!r}")
            ids.append(rule_id)
            self.check_rule(here, rule)
        return ids

    def check_rule(self, where: str, rule: Mapping[str, Any]) -> None:
        name = rule.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_RULE_NAME_CHARS):
            self.add(f"{where}.name", f"must be a string of at most {MAX_RULE_NAME_CHARS} chars")
        for key in ("shortDescription", "fullDescription"):
            text = _text(rule, key)
            if not text:
                self.add(f"{where}.{key}.text", "required and must not be empty")
            elif len(text) > MAX_DESCRIPTION_CHARS:
                self.add(f"{where}.{key}.text", f"longer than {MAX_DESCRIPTION_CHARS} chars")
        if not _text(rule, "help"):
            self.add(f"{where}.help.text", "required and must not be empty")
        config = rule.get("defaultConfiguration")
        if isinstance(config, Mapping) and "level" in config and config["level"] not in RULE_LEVELS:
            self.add(f"{where}.defaultConfiguration.level", f"not one of {sorted(RULE_LEVELS)}")
        props = rule.get("properties")
        if props is None:
            return
        if not isinstance(props, Mapping):
            self.add(f"{where}.properties", "must be an object")
            return
        tags = props.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            self.add(f"{where}.properties.tags", "must be an array of strings")
            tags = []
        elif len(tags) > MAX_TAGS_PER_RULE:
            self.add(f"{where}.properties.tags", f"more than {MAX_TAGS_PER_RULE} tags")
        elif len(tags) > DISPLAYED_TAGS_PER_RULE:
            self.add(f"{where}.properties.tags", f"GitHub shows only {DISPLAYED_TAGS_PER_RULE}")
        if "precision" in props and props["precision"] not in PRECISIONS:
            self.add(f"{where}.properties.precision", f"not one of {sorted(PRECISIONS)}")
        if "problem.severity" in props and props["problem.severity"] not in PROBLEM_SEVERITIES:
            self.add(f"{where}.properties.problem.severity", "not error/warning/recommendation")
        if "security-severity" in props:
            self.check_security_severity(where, props["security-severity"], tags)

    def check_security_severity(self, where: str, value: Any, tags: Sequence[str]) -> None:
        here = f"{where}.properties.security-severity"
        if not isinstance(value, str):
            self.add(here, 'must be a string holding a number, e.g. "7.5"')
            return
        try:
            score = float(value)
        except ValueError:
            self.add(here, f"{value!r} is not a number")
            return
        if not math.isfinite(score) or not 0.0 <= score <= 10.0:
            self.add(here, f"{value!r} is outside 0.0-10.0")
        if "security" not in tags:
            self.add(here, "GitHub only reads it when the rule is tagged 'security'")

    def check_result(self, where: str, result: Any, rule_ids: Sequence[str]) -> None:
        if not isinstance(result, Mapping):
            self.add(where, "a result must be an object")
            return
        if not _text(result, "message"):
            self.add(f"{where}.message.text", "required and must not be empty")
        rule_id = result.get("ruleId")
        if not isinstance(rule_id, str) or not rule_id:
            self.add(f"{where}.ruleId", "missing: GitHub filters and tracks alerts by rule id")
        elif rule_id not in rule_ids:
            self.add(f"{where}.ruleId", f"{rule_id!r} is not declared in tool.driver.rules")
        index = result.get("ruleIndex")
        if index is not None:
            if not isinstance(index, int) or not 0 <= index < len(rule_ids):
                self.add(f"{where}.ruleIndex", f"{index!r} is not an index into the rules")
            elif isinstance(rule_id, str) and rule_ids[index] != rule_id:
                self.add(f"{where}.ruleIndex", f"points at {rule_ids[index]!r}, not {rule_id!r}")
        if "level" in result and result["level"] not in LEVELS:
            self.add(f"{where}.level", f"not one of {sorted(LEVELS)}")
        locations = result.get("locations")
        if not isinstance(locations, list) or not locations:
            self.add(f"{where}.locations", "at least one location is needed to show an alert")
        else:
            if len(locations) > MAX_LOCATIONS_PER_RESULT:
                self.add(f"{where}.locations", f"more than {MAX_LOCATIONS_PER_RESULT}")
            for index_, location in enumerate(locations):
                self.check_location(f"{where}.locations[{index_}]", location)
        related = result.get("relatedLocations")
        if isinstance(related, list):
            for index_, location in enumerate(related):
                self.check_location(f"{where}.relatedLocations[{index_}]", location)
        fingerprints = result.get("partialFingerprints")
        line_hash = fingerprints.get("primaryLocationLineHash") if isinstance(fingerprints, Mapping) else None
        if not isinstance(line_hash, str) or not line_hash:
            self.add(
                f"{where}.partialFingerprints.primaryLocationLineHash",
                "missing: without it alerts are duplicated and never close",
            )

    def check_location(self, where: str, location: Any) -> None:
        physical = location.get("physicalLocation") if isinstance(location, Mapping) else None
        if not isinstance(physical, Mapping):
            self.add(f"{where}.physicalLocation", "required")
            return
        artifact = physical.get("artifactLocation")
        uri = artifact.get("uri") if isinstance(artifact, Mapping) else None
        if not isinstance(uri, str) or not uri:
            self.add(f"{where}.physicalLocation.artifactLocation.uri", "required")
        elif not _is_relative_uri(uri):
            self.add(
                f"{where}.physicalLocation.artifactLocation.uri",
                f"{uri!r} is not relative to the repository root",
            )
        region = physical.get("region")
        start = region.get("startLine") if isinstance(region, Mapping) else None
        if not isinstance(start, int) or isinstance(start, bool) or start < 1:
            self.add(f"{where}.physicalLocation.region.startLine", "required, a line number >= 1")


def check_github_rules(doc: Any) -> list[Problem]:
    """Every way ``doc`` breaks GitHub code scanning's SARIF rules; empty when it uploads cleanly."""
    checker = _Checker()
    checker.check_log(doc)
    return checker.problems
