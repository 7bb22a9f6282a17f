"""The schema of hardening.toml, validated strictly by pydantic; ``catalog`` turns it into specs."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# hardening.catalog.VarValue, spelled again so that the schema imports nothing of the catalog,
# which imports the schema (a test holds the two equal).
VarValue = str | int | bool | list[str]

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
Repository = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
]
Tag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BaseModelSpec(_Strict):
    repository: Repository
    tag: Tag
    suite: Annotated[str, StringConstraints(pattern=r"^[a-z]+$")]
    mirror: str | None = None
    security_mirror: str | None = None
    # The policy files whose `setuid` check decides which setuid/setgid bits the base keeps.
    policies: list[str] = Field(default_factory=list)


class ProjectModel(_Strict):
    output_dir: str = "scans"
    source: str = ""
    default_base: Name | None = None
    gate: str = "policies/gate.yaml"


class VariantModel(_Strict):
    """One concrete image of an ``[[image]]`` entry: what differs between its versions/suites."""

    name: Name | None = None
    base: Name | None = None
    tags: list[Tag] = Field(min_length=1)
    wheelhouse: str | None = None
    variables: dict[str, VarValue] = Field(default_factory=dict)


# An OCI reference as `harden db pull` and Trivy take it: [host[:port]/]path[:tag]; no scheme.
DbRepository = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z0-9\[][A-Za-z0-9._:\[\]-]*(?:/[a-z0-9][a-z0-9._-]*)+(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
    ),
]


class DbSettingsModel(_Strict):
    # Where `harden db pull` looks for Trivy's DB, in order (an internal mirror first).
    repositories: list[DbRepository] = Field(min_length=1)


class ImageModel(_Strict):
    name: Name
    template: str
    base: Name | None = None
    repository: Repository
    tags: list[Tag] | None = Field(default=None, min_length=1)  # or one list per variant
    version: Tag = "0.0.0"
    description: str = ""
    policies: list[str] = Field(default_factory=list)
    wheelhouse: str | None = None
    variables: dict[str, VarValue] = Field(default_factory=dict)
    variant: list[VariantModel] | None = Field(default=None, min_length=1)


class CatalogModel(_Strict):
    project: ProjectModel = ProjectModel()
    db: DbSettingsModel | None = None
    base: dict[Name, BaseModelSpec] = Field(min_length=1)
    image: list[ImageModel] = Field(min_length=1)
