"""The catalog (hardening.toml): which images exist, from which template, with which variables."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardening.base import BaseSpec
from hardening.errors import ConfigError, Location
from hardening.sourcemap import SourceMap, toml_source_map
from hardening.userfile import read_user_text

if TYPE_CHECKING:
    from hardening.catalog_schema import CatalogModel

CATALOG_NAME = "hardening.toml"
# The one tag a build writes; release tags are moved to the candidate after the gate passed.
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

    @property
    def context_dir(self) -> Path:
        return self.template.parent

    @property
    def dockerfile(self) -> Path:
        return self.template.parent / "Dockerfile"

    @property
    def candidate_ref(self) -> str:
        """Where a build lands before the gate: release tags move only after it passed."""
        return f"{self.repository}:{CANDIDATE_TAG}"

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
    # The schema (pydantic) is imported only here: modules that import this one for ImageSpec or
    # Catalog, and `harden --help`, do not pay for it.
    from hardening.catalog_schema import CatalogModel
    from hardening.validation import validate

    smap = toml_source_map(text)
    model = validate(CatalogModel, data, path=path, smap=smap)
    return _to_catalog(path, model, smap)


def _to_catalog(path: Path, model: CatalogModel, smap: SourceMap) -> Catalog:
    root = path.resolve().parent
    bases = {
        name: BaseSpec(b.repository, b.tag, b.suite, b.mirror, b.security_mirror)
        for name, b in model.base.items()
    }
    default_base = model.project.default_base
    if default_base is not None and default_base not in bases:
        raise ConfigError(
            f"default_base names {default_base!r}, which is not a [base.*] table",
            location=Location(path, smap.line_of(("project", "default_base")), "project.default_base"),
        )
    seen: dict[str, int] = {}
    images: list[ImageSpec] = []
    for index, image in enumerate(model.image):

        def where(field: str, *, _index: int = index) -> Location:
            return Location(path, smap.line_of(("image", _index, field)), f"image[{_index}].{field}")

        if image.name in seen:
            raise ConfigError(
                f"duplicate image name {image.name!r} (first defined in image[{seen[image.name]}])",
                location=where("name"),
            )
        seen[image.name] = index
        for key, value in image.variables.items():
            try:
                check_variable(image.name, key, value)
            except ValueError as exc:
                raise ConfigError(
                    str(exc),
                    location=Location(
                        path,
                        smap.line_of(("image", index, "variables", key)),
                        f"image[{index}].variables.{key}",
                    ),
                ) from None
            if key == "base_image":
                raise ConfigError(
                    "base_image is set by harden from the base; it cannot be a catalog variable",
                    location=where("variables"),
                )
        template = Path(image.template)
        if template.is_absolute() or ".." in template.parts:
            raise ConfigError("template must be a path inside the repository", location=where("template"))
        if not (root / template).is_file():
            raise ConfigError(f"template {image.template} does not exist", location=where("template"))
        base_name = image.base or default_base or (next(iter(bases)) if len(bases) == 1 else None)
        if base_name is None or base_name not in bases:
            raise ConfigError(
                f"base {image.base!r} is not defined" if image.base else "several bases defined; name one",
                location=where("base"),
                hint=f"defined bases: {', '.join(bases)}",
            )
        policies = []
        for policy in image.policies:
            policy_path = Path(policy)
            if policy_path.is_absolute() or ".." in policy_path.parts or not (root / policy_path).is_file():
                raise ConfigError(
                    f"policy file {policy} does not exist in the repository", location=where("policies")
                )
            policies.append(policy_path)
        wheelhouse = None
        if image.wheelhouse is not None:
            wheelhouse = Path(image.wheelhouse)
            if wheelhouse.is_absolute() or ".." in wheelhouse.parts or not (root / wheelhouse).is_file():
                raise ConfigError(
                    f"lock file {image.wheelhouse} does not exist", location=where("wheelhouse")
                )
        images.append(
            ImageSpec(
                name=image.name,
                template=template,
                base=bases[base_name],
                repository=image.repository,
                tags=tuple(image.tags),
                version=image.version,
                description=image.description,
                policies=tuple(policies),
                wheelhouse=wheelhouse,
                variables=dict(image.variables),
                catalog_line=smap.line_of(("image", index)),
            )
        )
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
    )
