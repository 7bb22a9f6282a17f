"""The SARIF we write is sarif-om's: every log read back into the object model gives itself.

The writer builds plain dicts (an object graph per result cost more than the rest of the
conversion) and encodes them with msgspec. This holds both to the project's model: each object
of the log is loaded strictly into its sarif-om class (an unknown property fails), written back
through sarif-om's attrs metadata the way the writer used to (defaults left out, a result's level
always written), and must come out the same, key order included; and the bytes must be those
``json.dumps`` writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attr
import pytest
import sarif_om as om
from hypothesis import HealthCheck, given, settings

from hardening.findings import Finding, SourceLocation
from hardening.report import github_rules
from hardening.report.sarif import build_sarif, dumps
from hardening.report.sarif.serialise import gzip_size
from tests.unit.test_sarif import (
    ALL_TOOLS,
    DOCKERFILE,
    FIXTURE_REPO,
    TOOLS,
    _findings,
    build,
    golden_findings,
)
from tests.unit.test_sarif_large import findings, from_trivy, trivy_report

# What sarif-om's classes hold, where the log nests objects: (class, attribute) → class, or a
# one-element list / dict of it for arrays and maps of objects. Anything else is a plain value.
NESTED: Mapping[tuple[type, str], Any] = {
    (om.SarifLog, "runs"): [om.Run],
    (om.Run, "tool"): om.Tool,
    (om.Run, "automation_details"): om.RunAutomationDetails,
    (om.Run, "invocations"): [om.Invocation],
    (om.Run, "original_uri_base_ids"): {"": om.ArtifactLocation},
    (om.Run, "results"): [om.Result],
    (om.Tool, "driver"): om.ToolComponent,
    (om.ToolComponent, "rules"): [om.ReportingDescriptor],
    (om.ReportingDescriptor, "default_configuration"): om.ReportingConfiguration,
    (om.ReportingDescriptor, "full_description"): om.MultiformatMessageString,
    (om.ReportingDescriptor, "short_description"): om.MultiformatMessageString,
    (om.ReportingDescriptor, "help"): om.MultiformatMessageString,
    (om.Invocation, "tool_execution_notifications"): [om.Notification],
    (om.Notification, "message"): om.Message,
    (om.Notification, "descriptor"): om.ReportingDescriptorReference,
    (om.ArtifactLocation, "description"): om.Message,
    (om.Result, "message"): om.Message,
    (om.Result, "locations"): [om.Location],
    (om.Result, "related_locations"): [om.Location],
    (om.Result, "suppressions"): [om.Suppression],
    (om.Location, "message"): om.Message,
    (om.Location, "physical_location"): om.PhysicalLocation,
    (om.PhysicalLocation, "artifact_location"): om.ArtifactLocation,
    (om.PhysicalLocation, "region"): om.Region,
}
ALWAYS_WRITTEN = {
    (om.Result, "level"),
    (om.SarifLog, "runs"),
    (om.Run, "results"),
    (om.ToolComponent, "rules"),
}


def load(cls: type, value: Any, where: str) -> Any:
    """``value`` as an instance of sarif-om's ``cls``; fails on a property the class lacks."""
    assert isinstance(value, dict), f"{where}: expected an object for {cls.__name__}"
    fields = {item.metadata["schema_property_name"]: item for item in attr.fields(cls)}
    if cls is om.PropertyBag:
        bag = om.PropertyBag(tags=value.get("tags"))
        for key, item in value.items():
            if key != "tags":
                setattr(bag, key, item)
        return bag
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        assert key in fields, f"{where}.{key}: not a property of sarif-om's {cls.__name__}"
        name = fields[key].name
        nested = NESTED.get((cls, name), om.PropertyBag if name == "properties" else None)
        if isinstance(nested, list):
            kwargs[name] = [load(nested[0], x, f"{where}.{key}[{i}]") for i, x in enumerate(item)]
        elif isinstance(nested, dict):
            kwargs[name] = {k: load(nested[""], v, f"{where}.{key}.{k}") for k, v in item.items()}
        elif nested is not None:
            kwargs[name] = load(nested, item, f"{where}.{key}")
        else:
            kwargs[name] = item
    return cls(**kwargs)


def written(value: Any) -> Any:
    """sarif-om objects as JSON values: JSON names, defaults and empty arrays left out."""
    if attr.has(type(value)):
        out: dict[str, Any] = {}
        declared = attr.fields(type(value))
        for item in declared:
            field_value = getattr(value, item.name)
            if field_value is None:
                continue
            default = item.default.factory() if isinstance(item.default, attr.Factory) else item.default  # type: ignore[arg-type]
            if (type(value), item.name) not in ALWAYS_WRITTEN and (
                (item.default is not attr.NOTHING and field_value == default)
                or (isinstance(field_value, (list, dict)) and not field_value)
            ):
                continue
            out[item.metadata["schema_property_name"]] = written(field_value)
        names = {item.name for item in declared}
        out.update({k: written(v) for k, v in vars(value).items() if k not in names and v is not None})
        return out
    if isinstance(value, dict):
        return {k: written(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [written(v) for v in value]
    return value


def through_sarif_om(doc: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in doc.items() if k not in ("$schema", "version")}
    log = load(om.SarifLog, {**body, "version": doc["version"], "$schema": doc["$schema"]}, "$")
    out = written(log)
    return {"$schema": out.pop("$schema"), "version": out.pop("version"), **out}


def json_dumps(doc: dict[str, Any]) -> str:
    """What the writer wrote with the standard library's encoder."""
    results = sum(len(run["results"]) for run in doc["runs"])
    if results > 1000:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def assert_sarif_om(doc: dict[str, Any]) -> None:
    # same values and the same key order, so the same bytes
    assert json.dumps(through_sarif_om(doc)) == json.dumps(doc)
    assert dumps(doc) == json_dumps(doc)
    limit = github_rules.MAX_GZIP_BYTES
    assert gzip_size(doc, limit=limit) == github_rules.gzip_size(doc, limit=limit)


def test_golden_log_is_sarif_oms() -> None:
    assert_sarif_om(build(golden_findings()))


def test_logs_with_accepted_results_left_out_or_marked_are_sarif_oms() -> None:
    found = golden_findings()
    baseline = frozenset({found[0].key})
    assert_sarif_om(build(found, baseline=baseline, leave_out_accepted=True))
    assert_sarif_om(build(found, baseline=baseline))


@pytest.mark.parametrize("count", [1_500, 6_000])
def test_big_logs_from_trivy_are_sarif_oms(count: int) -> None:
    assert_sarif_om(from_trivy(trivy_report(count, seed=7)))


def test_big_logs_of_located_findings_are_sarif_oms() -> None:
    fallback = SourceLocation(DOCKERFILE, 1)
    doc = build_sarif(
        "demo", findings(2_500, seed=8), tools=TOOLS, fallback_location=fallback, repo_root=FIXTURE_REPO
    )
    assert_sarif_om(doc)


def test_the_loader_refuses_what_sarif_om_lacks() -> None:
    doc = build(golden_findings())
    doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["line"] = 3
    with pytest.raises(AssertionError, match="not a property of sarif-om's PhysicalLocation"):
        through_sarif_om(doc)


def test_a_default_value_written_out_is_noticed() -> None:
    doc = build(golden_findings())
    doc["runs"][0]["results"][0]["kind"] = "fail"
    with pytest.raises(AssertionError):
        assert_sarif_om(doc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(found=_findings)
def test_any_findings_give_sarif_oms_log(found: list[Finding]) -> None:
    assert_sarif_om(
        build_sarif("demo", found, tools=ALL_TOOLS, fallback_location=SourceLocation(DOCKERFILE, 1))
    )
