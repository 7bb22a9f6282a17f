"""The schema of hardening.toml, validated strictly by ``hardening.strict``; ``catalog`` turns it
into specs. Each table is a frozen dataclass whose fields carry their types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from hardening.strict import BOOLEAN, INTEGER, TEXT, AnyOf, DictOf, ListOf, Nullable, Text, record, typed

# hardening.catalog.VarValue, spelled again so that the schema imports nothing of the catalog,
# which imports the schema (a test holds the two equal).
VarValue = str | int | bool | list[str]
# Each member is named as a problem's key path shows it when a value fits none of them.
VAR_VALUE: Final = AnyOf(
    ("str", TEXT), ("int", INTEGER), ("bool", BOOLEAN), ("list[str]", ListOf(TEXT, as_list=True))
)

NAME: Final = Text(r"^[a-z0-9][a-z0-9._-]{0,62}$")
REPOSITORY: Final = Text(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
TAG: Final = Text(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SUITE: Final = Text(r"^[a-z]+$")
# An OCI reference as `harden db pull` and Trivy take it: [host[:port]/]path[:tag]; no scheme.
DB_REPOSITORY: Final = Text(
    r"^[A-Za-z0-9\[][A-Za-z0-9._:\[\]-]*(?:/[a-z0-9][a-z0-9._-]*)+(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)
OPTIONAL_TEXT: Final = Nullable(TEXT)
OPTIONAL_NAME: Final = Nullable(NAME)


@dataclass(frozen=True, kw_only=True)
class BaseModelSpec:
    repository: str = field(metadata=typed(REPOSITORY))
    tag: str = field(metadata=typed(TAG))
    suite: str = field(metadata=typed(SUITE))
    mirror: str | None = field(default=None, metadata=typed(OPTIONAL_TEXT))
    security_mirror: str | None = field(default=None, metadata=typed(OPTIONAL_TEXT))
    # The policy files whose `setuid` check decides which setuid/setgid bits the base keeps.
    policies: tuple[str, ...] = field(default=(), metadata=typed(ListOf(TEXT)))


@dataclass(frozen=True, kw_only=True)
class ProjectModel:
    output_dir: str = field(default="scans", metadata=typed(TEXT))
    source: str = field(default="", metadata=typed(TEXT))
    default_base: str | None = field(default=None, metadata=typed(OPTIONAL_NAME))
    gate: str = field(default="policies/gate.yaml", metadata=typed(TEXT))


@dataclass(frozen=True, kw_only=True)
class VariantModel:
    """One concrete image of an ``[[image]]`` entry: what differs between its versions/suites."""

    name: str | None = field(default=None, metadata=typed(OPTIONAL_NAME))
    base: str | None = field(default=None, metadata=typed(OPTIONAL_NAME))
    tags: tuple[str, ...] = field(metadata=typed(ListOf(TAG, min_length=1)))
    wheelhouse: str | None = field(default=None, metadata=typed(OPTIONAL_TEXT))
    variables: dict[str, VarValue] = field(default_factory=dict, metadata=typed(DictOf(TEXT, VAR_VALUE)))


@dataclass(frozen=True, kw_only=True)
class DbSettingsModel:
    # Where `harden db pull` looks for Trivy's DB, in order (an internal mirror first).
    repositories: tuple[str, ...] = field(metadata=typed(ListOf(DB_REPOSITORY, min_length=1)))


@dataclass(frozen=True, kw_only=True)
class ImageModel:
    name: str = field(metadata=typed(NAME))
    template: str = field(metadata=typed(TEXT))
    base: str | None = field(default=None, metadata=typed(OPTIONAL_NAME))
    repository: str = field(metadata=typed(REPOSITORY))
    # Or one list per variant.
    tags: tuple[str, ...] | None = field(default=None, metadata=typed(Nullable(ListOf(TAG, min_length=1))))
    version: str = field(default="0.0.0", metadata=typed(TAG))
    description: str = field(default="", metadata=typed(TEXT))
    policies: tuple[str, ...] = field(default=(), metadata=typed(ListOf(TEXT)))
    wheelhouse: str | None = field(default=None, metadata=typed(OPTIONAL_TEXT))
    variables: dict[str, VarValue] = field(default_factory=dict, metadata=typed(DictOf(TEXT, VAR_VALUE)))
    variant: tuple[VariantModel, ...] | None = field(
        default=None, metadata=typed(Nullable(ListOf(record(VariantModel), min_length=1)))
    )


@dataclass(frozen=True, kw_only=True)
class CatalogModel:
    project: ProjectModel = field(default=ProjectModel(), metadata=typed(record(ProjectModel)))
    db: DbSettingsModel | None = field(default=None, metadata=typed(Nullable(record(DbSettingsModel))))
    base: dict[str, BaseModelSpec] = field(metadata=typed(DictOf(NAME, record(BaseModelSpec), min_length=1)))
    image: tuple[ImageModel, ...] = field(metadata=typed(ListOf(record(ImageModel), min_length=1)))
