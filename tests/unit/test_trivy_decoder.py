"""The msgspec schema of Trivy's report accepts what the pydantic one did, and reads the same.

Trivy's report used to be validated by strict pydantic models; those models are kept here as the
reference. Random damage to a real report (a value replaced by one of another type, a key
removed) must be refused by both or accepted by both with equal values, and the fast decoder of
the JSON text must agree with the field-by-field check of the decoded JSON.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hardening.errors import ScannerError
from hardening.scan.trivy import parse_report
from hardening.scan.trivy.report import TrivyReport

DATA = Path(__file__).resolve().parents[1] / "data" / "trivy"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class TrivyLayer(_Model):
    DiffID: str | None = None


class TrivyCvss(_Model):
    V3Score: float | None = None


class TrivyDataSource(_Model):
    ID: str | None = None


class TrivyVulnerability(_Model):
    VulnerabilityID: str = Field(min_length=1)
    VendorIDs: list[str] = []
    PkgName: str = Field(min_length=1)
    PkgPath: str | None = None
    InstalledVersion: str
    FixedVersion: str | None = None
    Status: str | None = None
    Layer: TrivyLayer | None = None
    SeveritySource: str | None = None
    PrimaryURL: str | None = None
    DataSource: TrivyDataSource | None = None
    Title: str = ""
    Description: str = ""
    Severity: str
    CVSS: dict[str, TrivyCvss] = {}
    References: list[str] = []


class TrivySecret(_Model):
    RuleID: str = Field(min_length=1)
    Category: str | None = None
    Severity: str
    Title: str = ""
    StartLine: int | None = None
    EndLine: int | None = None
    Layer: TrivyLayer | None = None


class TrivyCause(_Model):
    StartLine: int | None = None
    EndLine: int | None = None


class TrivyMisconfiguration(_Model):
    ID: str = Field(min_length=1)
    Type: str | None = None
    Title: str = ""
    Description: str = ""
    Message: str = ""
    Resolution: str = ""
    Severity: str
    PrimaryURL: str | None = None
    References: list[str] = []
    Status: str
    Layer: TrivyLayer | None = None
    CauseMetadata: TrivyCause | None = None


class TrivyPackage(_Model):
    Name: str


class TrivyResult(_Model):
    Target: str
    Class: str
    Type: str | None = None
    Packages: list[TrivyPackage] = []
    Vulnerabilities: list[TrivyVulnerability] = []
    Secrets: list[TrivySecret] = []
    Misconfigurations: list[TrivyMisconfiguration] = []


class TrivyOs(_Model):
    Family: str
    Name: str = ""


class TrivyMetadata(_Model):
    ImageID: str | None = None
    OS: TrivyOs | None = None


class TrivyVersionInfo(_Model):
    Version: str


class ReferenceReport(_Model):
    SchemaVersion: int
    ArtifactName: str
    ArtifactType: str | None = None
    Trivy: TrivyVersionInfo | None = None
    Metadata: TrivyMetadata | None = None
    Results: list[TrivyResult]


REPORT_TEXT = (DATA / "image-report.json").read_text()


def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REPORT_TEXT)
    return data


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value that holds something."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found.append((*prefix, key))
        found.extend(paths(item, (*prefix, key)))
    return found


PATHS = paths(report())
REPLACEMENTS: list[Any] = [None, "", "x", 0, 7, 1.5, True, [], ["x"], [1], {}, {"a": 1}, {"V3Score": 2}]
DELETE = object()


def damaged(changes: list[tuple[int, int]]) -> dict[str, Any]:
    data = report()
    for path_index, replacement in changes:
        path = PATHS[path_index % len(PATHS)]
        target: Any = data
        try:
            for key in path[:-1]:
                target = target[key]
            if replacement == len(REPLACEMENTS):
                del target[path[-1]]
            else:
                # a copy: a later change of the same example may write into the replacement,
                # and the shared {} would carry that (or itself) into every later example
                target[path[-1]] = copy.deepcopy(REPLACEMENTS[replacement])
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the place
    return data


def reference(data: Any) -> dict[str, Any] | None:
    try:
        return ReferenceReport.model_validate(data).model_dump()
    except ValidationError:
        return None


def ours(data: Any) -> dict[str, Any] | None:
    try:
        converted = msgspec.convert(data, TrivyReport, strict=True)
    except msgspec.ValidationError:
        converted = None
    try:
        decoded = msgspec.json.decode(json.dumps(data).encode(), type=TrivyReport)
    except msgspec.ValidationError:
        decoded = None
    assert converted == decoded, "the fast decoder and the field-by-field check disagree"
    # as JSON values (arrays as lists), the form the pydantic models dump to
    return None if converted is None else msgspec.json.decode(msgspec.json.encode(converted))


_change = st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(0, len(REPLACEMENTS)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(_change, min_size=1, max_size=3))
def test_damaged_reports_are_judged_as_the_pydantic_schema_did(changes: list[tuple[int, int]]) -> None:
    data = damaged(changes)
    assert ours(data) == reference(data)


def test_every_place_in_the_report_is_judged_as_the_pydantic_schema_did() -> None:
    for index in range(len(PATHS)):
        for replacement in range(len(REPLACEMENTS) + 1):
            data = damaged([(index, replacement)])
            assert ours(data) == reference(data), (PATHS[index], replacement)


def test_the_undamaged_report_reads_the_same() -> None:
    assert ours(report()) is not None
    assert ours(report()) == reference(report())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # inputs Python's reader takes and a strict JSON decoder does not
        (b"\xef\xbb\xbf" + json.dumps(report()).encode(), 7),
        (json.dumps(report()).encode("utf-16"), 7),
        (json.dumps(report()).replace('"V3Score": 8.8', '"V3Score": NaN').encode(), 7),
        (json.dumps(report()).replace('"Title": "', '"Title": "\\udcff', 1).encode(), 7),
    ],
    ids=["byte-order-mark", "utf-16", "nan", "lone-surrogate"],
)
def test_reports_only_pythons_reader_takes_are_still_read(raw: bytes, expected: int) -> None:
    parsed = parse_report(raw, image="demo", artifact_name=None, image_id=None, scanners=("vuln",))
    assert len(parsed.findings) == expected


def test_a_shape_error_names_the_vendor_of_a_bad_score() -> None:
    data = report()
    data["Results"][1]["Vulnerabilities"][0]["CVSS"]["ghsa"]["V3Score"] = "high"
    with pytest.raises(ScannerError) as caught:
        parse_report(json.dumps(data).encode(), image="demo", artifact_name=None, image_id=None)
    assert "Results.1.Vulnerabilities.0.CVSS.ghsa.V3Score: Input should be a valid number" in str(
        caught.value
    )
