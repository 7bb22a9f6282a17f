"""The catalog (hardening.toml): which images exist, from which template, with which variables."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardening.basespec import BaseSpec
from hardening.errors import ConfigError, Location
from hardening.sourcemap import SourceMap, toml_source_map
from hardening.userfile import read_user_text

if TYPE_CHECKING:
    from hardening.catalog_schema import BaseModelSpec, CatalogModel, ImageModel, VariantModel

CATALOG_NAME = "hardening.toml"
# project.output_dir when the catalog does not set it, relative to the catalog's directory (the
# schema's default; a test holds the two equal). Without a catalog, relative to the working directory.
DEFAULT_OUTPUT_DIR = "scans"
# The one tag a build writes (a variant: candidate-<first tag>); release tags are moved to the
# candidate after the gate passed.
CANDIDATE_TAG = "candidate"

# A catalog value is interpolated into Dockerfile instructions and shell commands. Only characters
# that can neither end an instruction (newline, CR, backslash continuation) nor start a shell
# construct (&&, ;, |, $, quotes, backticks, redirections, spaces) are allowed.
SAFE_VALUE = re.compile(r"[A-Za-z0-9._:/@+=,~%^-]{1,256}")
SAFE_CHARS = "letters, digits and . _ : / @ + = , ~ % ^ -"

VarValue = str | int | bool | list[str]


def describe_unsafe(value: str) -> str:
    for char, name in (("\n", "a newline"), ("\r", "a carriage return"), ("\\", "a backslash")):
        if char in value:
            return name
    bad = sorted({c for c in value if not SAFE_VALUE.fullmatch(c)})
    if not value:
        return "nothing (empty)"
    if len(value) > 256:
        return "more than 256 characters"
    return "the character(s) " + " ".join(repr(c) for c in bad)


def check_variable(image: str, name: str, value: object) -> None:
    """Raise ValueError when a variable could inject Dockerfile or shell syntax."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
        raise ValueError(f"image {image}: variable name {name!r} is not an identifier")
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, bool | int):
            continue
        if not isinstance(item, str):
            raise ValueError(
                f"image {image}: variable {name} must be a string, integer, boolean or list of strings"
            )
        if not SAFE_VALUE.fullmatch(item):
            raise ValueError(
                f"image {image}: variable {name} = {item!r} contains {describe_unsafe(item)}; "
                f"values may hold only {SAFE_CHARS}"
            )


@dataclass(frozen=True)
class ImageSpec:
    name: str
    template: Path  # relative to the repository root
    base: BaseSpec
    repository: str
    tags: tuple[str, ...]
    version: str
    description: str
    policies: tuple[Path, ...]
    wheelhouse: Path | None
    variables: Mapping[str, VarValue]
    catalog_line: int | None = None
    # Which variant of its catalog entry this is: "" for an entry's only image (and for the
    # variant named like its entry), else the variant's first tag. It keeps the renderings and
    # the candidate tags of images that share a template and a repository apart.
    variant: str = ""

    @property
    def context_dir(self) -> Path:
        return self.template.parent

    @property
    def dockerfile(self) -> Path:
        name = f"Dockerfile.{self.variant}" if self.variant else "Dockerfile"
        return self.template.parent / name

    @property
    def candidate_tag(self) -> str:
        return f"{CANDIDATE_TAG}-{self.variant}" if self.variant else CANDIDATE_TAG

    @property
    def candidate_ref(self) -> str:
        """Where a build lands before the gate: release tags move only after it passed."""
        return f"{self.repository}:{self.candidate_tag}"

    @property
    def release_refs(self) -> tuple[str, ...]:
        return tuple(f"{self.repository}:{tag}" for tag in self.tags)


@dataclass(frozen=True)
class Catalog:
    path: Path
    root: Path
    output_dir: Path
    source: str
    bases: Mapping[str, BaseSpec]
    images: tuple[ImageSpec, ...]
    gate: Path = Path("policies/gate.yaml")  # the gate policy (project.gate), read by load_gate
    # [db] repositories: where `harden db pull` looks for Trivy's DB, in order; empty: the defaults.
    db_repositories: tuple[str, ...] = ()

    def select(self, names: tuple[str, ...] | list[str]) -> tuple[ImageSpec, ...]:
        if not names:
            return self.images
        known = {image.name: image for image in self.images}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(
                f"no image named {', '.join(unknown)} in the catalog",
                location=Location(self.path),
                hint=f"known images: {', '.join(known) or '(none)'}",
            )
        return tuple(known[n] for n in names)

    def select_bases(self, names: tuple[str, ...] | list[str]) -> tuple[BaseSpec, ...]:
        """The named ``[base.*]`` tables (all without names); an unknown name is a ConfigError."""
        if not names:
            return tuple(self.bases.values())
        unknown = [n for n in names if n not in self.bases]
        if unknown:
            raise ConfigError(
                f"no base named {', '.join(unknown)} in the catalog",
                location=Location(self.path),
                hint=f"known bases: {', '.join(self.bases) or '(none)'}",
            )
        return tuple(self.bases[n] for n in names)


def load_catalog(path: Path) -> Catalog:
    """Parse and validate the catalog; every problem names the file, the key and the line."""
    text = read_user_text(
        path,
        error=ConfigError,
        what="the catalog",
        missing="catalog not found",
        missing_hint="run harden from the repository root or pass --catalog",
    )
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        if line is None:
            found = re.search(r"at line (\d+)", str(exc))
            line = int(found.group(1)) if found else None
        raise ConfigError(f"not valid TOML: {exc}", location=Location(path, line)) from None
    # The schema is imported only here: modules that import this one for ImageSpec or Catalog,
    # and `harden --help`, do not pay for it.
    from hardening.catalog_schema import CatalogModel
    from hardening.strict import record
    from hardening.validation import parse

    smap = toml_source_map(text)
    model = parse(record(CatalogModel), data, path=path, smap=smap)
    return _to_catalog(path, model, smap)


def _to_catalog(path: Path, model: CatalogModel, smap: SourceMap) -> Catalog:
    root = path.resolve().parent
    bases = {name: _base_spec(path, root, name, b, smap) for name, b in model.base.items()}
    default_base = model.project.default_base
    if default_base is not None and default_base not in bases:
        raise ConfigError(
            f"default_base names {default_base!r}, which is not a [base.*] table",
            location=Location(path, smap.line_of(("project", "default_base")), "project.default_base"),
        )
    images: list[ImageSpec] = []
    seen: dict[str, str] = {}
    for index, image in enumerate(model.image):
        images.extend(_image_specs(path, root, index, image, bases, default_base, smap, seen))
    _check_unique(path, images)
    output_dir = Path(model.project.output_dir)
    gate = Path(model.project.gate)
    if gate.is_absolute() or ".." in gate.parts:
        raise ConfigError(
            "gate must be a path inside the repository",
            location=Location(path, smap.line_of(("project", "gate")), "project.gate"),
        )
    return Catalog(
        path=path,
        root=root,
        output_dir=output_dir if output_dir.is_absolute() else root / output_dir,
        source=model.project.source,
        bases=bases,
        images=tuple(images),
        gate=root / gate,
        db_repositories=tuple(model.db.repositories) if model.db is not None else (),
    )


def _inside(root: Path, value: str) -> Path | None:
    """``value`` as a path relative to the repository, or None when it leaves it or is missing."""
    relative = Path(value)
    if relative.is_absolute() or ".." in relative.parts or not (root / relative).is_file():
        return None
    return relative


def _base_spec(path: Path, root: Path, name: str, model: BaseModelSpec, smap: SourceMap) -> BaseSpec:
    policies = []
    for policy in model.policies:
        found = _inside(root, policy)
        if found is None:
            raise ConfigError(
                f"policy file {policy} does not exist in the repository",
                location=Location(path, smap.line_of(("base", name, "policies")), f"base.{name}.policies"),
            )
        policies.append(root / found)
    return BaseSpec(
        model.repository, model.tag, model.suite, model.mirror, model.security_mirror, tuple(policies)
    )


def _image_specs(
    path: Path,
    root: Path,
    index: int,
    image: ImageModel,
    bases: Mapping[str, BaseSpec],
    default_base: str | None,
    smap: SourceMap,
    seen: dict[str, str],
) -> list[ImageSpec]:
    """The concrete images of one ``[[image]]`` entry: itself, or one per ``[[image.variant]]``."""

    from hardening.catalog_schema import VariantModel
    from hardening.validation import dotted

    def where(field: str, variant: int | None = None) -> Location:
        key: tuple[str | int, ...] = ("image", index)
        if variant is not None:
            key = (*key, "variant", variant)
        return Location(path, smap.line_of((*key, *field.split("."))), dotted((*key, *field.split("."))))

    if image.variant is not None and image.tags is not None:
        raise ConfigError(
            "an entry with [[image.variant]] tables has no tags of its own; each variant names its tags",
            location=where("tags"),
        )
    variants: list[tuple[int | None, VariantModel]]
    if image.variant is None:
        if image.tags is None:
            raise ConfigError("required key is missing", location=where("tags"))
        variants = [(None, VariantModel(name=image.name, tags=image.tags))]
    else:
        variants = list(enumerate(image.variant))
    _check_variables(image.name, image.variables, lambda key: where(f"variables.{key}"))
    template = Path(image.template)
    if template.is_absolute() or ".." in template.parts:
        raise ConfigError("template must be a path inside the repository", location=where("template"))
    if not (root / template).is_file():
        raise ConfigError(f"template {image.template} does not exist", location=where("template"))
    policies = []
    for policy in image.policies:
        found = _inside(root, policy)
        if found is None:
            raise ConfigError(
                f"policy file {policy} does not exist in the repository", location=where("policies")
            )
        policies.append(found)

    specs = []
    for number, variant in variants:
        name = variant.name or f"{image.name}-{variant.tags[0]}"
        named_at = where("name" if number is None or variant.name else "tags", number)
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", name):
            raise ConfigError(
                f"the variant's image name {name!r} (the entry's name, '-' and its first tag) is not a "
                "valid image name",
                location=named_at,
                hint="give the variant a `name` of lowercase letters, digits, '.', '_' and '-'",
            )
        if name in seen:
            raise ConfigError(
                f"duplicate image name {name!r} (first defined in {seen[name]})", location=named_at
            )
        seen[name] = f"image[{index}]" if number is None else f"image[{index}].variant[{number}]"
        _check_variables(name, variant.variables, partial(_variable_at, where, number))
        base_name = (
            variant.base or image.base or default_base or (next(iter(bases)) if len(bases) == 1 else None)
        )
        if base_name is None or base_name not in bases:
            named = variant.base or image.base
            raise ConfigError(
                f"base {named!r} is not defined" if named else "several bases defined; name one",
                location=where("base", number if variant.base else None),
                hint=f"defined bases: {', '.join(bases)}",
            )
        wheelhouse = None
        lock = variant.wheelhouse or image.wheelhouse
        if lock is not None:
            wheelhouse = _inside(root, lock)
            if wheelhouse is None:
                raise ConfigError(
                    f"lock file {lock} does not exist",
                    location=where("wheelhouse", number if variant.wheelhouse else None),
                )
        line_key: tuple[str | int, ...] = (
            ("image", index) if number is None else ("image", index, "variant", number)
        )
        specs.append(
            ImageSpec(
                name=name,
                template=template,
                base=bases[base_name],
                repository=image.repository,
                tags=tuple(variant.tags),
                version=image.version,
                description=image.description,
                policies=tuple(policies),
                wheelhouse=wheelhouse,
                variables={**image.variables, **variant.variables},
                catalog_line=smap.line_of(line_key),
                variant="" if number is None or name == image.name else variant.tags[0],
            )
        )
    return specs


def _variable_at(where: Callable[[str, int | None], Location], variant: int | None, key: str) -> Location:
    return where(f"variables.{key}", variant)


def _check_variables(image: str, variables: Mapping[str, VarValue], where: Callable[[str], Location]) -> None:
    for key, value in variables.items():
        try:
            check_variable(image, key, value)
        except ValueError as exc:
            raise ConfigError(str(exc), location=where(key)) from None
        if key == "base_image":
            raise ConfigError(
                "base_image is set by harden from the base; it cannot be a catalog variable",
                location=where(key),
            )


def _check_unique(path: Path, images: list[ImageSpec]) -> None:
    """Renderings and tags may not collide: one image would silently overwrite the other's."""
    renderings: dict[Path, ImageSpec] = {}
    refs: dict[str, ImageSpec] = {}
    for spec in images:
        where = Location(path, spec.catalog_line)
        if spec.dockerfile in renderings:
            other = renderings[spec.dockerfile]
            raise ConfigError(
                f"image {spec.name} would render to {spec.dockerfile}, like image {other.name} "
                f"(line {other.catalog_line})",
                location=where,
                hint="images from one template are variants of one [[image]] entry ([[image.variant]])",
            )
        renderings[spec.dockerfile] = spec
        for tag in (spec.candidate_tag, *spec.tags):
            ref = f"{spec.repository}:{tag}"
            if ref in refs:
                other = refs[ref]
                raise ConfigError(
                    f"image {spec.name} would tag {ref}, which image {other.name} (line "
                    f"{other.catalog_line}) tags too",
                    location=where,
                    hint="tags within one repository must be unique; candidate tags are reserved",
                )
            refs[ref] = spec
