"""The only module that talks to the Docker engine through the docker SDK.

Everything else in the tool sees ``Engine``: a small, typed surface whose failures are
``EngineError`` (engine down, API errors) or ``BuildError`` — never a raw SDK exception.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from hardening.errors import BuildError, DockerfileError, EngineError, RegistryError

ENGINE_HINT = "start one with `harden engine up` (installs and starts Debian's docker.io as root)"

# Labels put on every container and image this tool creates, so that cleanup can find them.
OWNER_LABEL = "org.hardening.owner"


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    size: int
    layers: int
    user: str
    created: str
    repo_digests: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildOutput:
    image_id: str
    log: tuple[str, ...]


_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
# How the engine says a pulled tag does not exist ("manifest for R:T not found: manifest unknown").
_NOT_FOUND = re.compile(r"manifest unknown|not found", re.IGNORECASE)


def _api_error(action: str, exc: Exception) -> EngineError:
    return EngineError(f"{action}: {exc}", hint=ENGINE_HINT)


class Engine:
    """A connected Docker engine."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client

    @classmethod
    def connect(cls, *, timeout: float = 120.0) -> Engine:
        try:
            client = docker.from_env(timeout=int(timeout))
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            raise EngineError(
                f"no Docker engine answers at {host}", hint=ENGINE_HINT, details=str(exc)
            ) from exc
        return cls(client)

    @staticmethod
    def answers(timeout: float = 5.0) -> bool:
        try:
            client = docker.from_env(timeout=int(max(timeout, 1)))
            client.ping()
            client.close()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False
        return True

    def version(self) -> str:
        try:
            return str(self._client.version().get("Version", "unknown"))
        except docker.errors.DockerException as exc:
            raise _api_error("cannot read the engine version", exc) from exc

    # -- images -------------------------------------------------------------------------

    def image(self, ref: str) -> ImageInfo | None:
        try:
            attrs: dict[str, Any] = self._client.api.inspect_image(ref)  # type: ignore[no-untyped-call]
        except docker.errors.ImageNotFound:
            return None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise _api_error(f"cannot inspect image {ref}", exc) from exc
        config = attrs.get("Config") or {}
        return ImageInfo(
            id=str(attrs["Id"]),
            tags=tuple(attrs.get("RepoTags") or ()),
            labels=dict(config.get("Labels") or {}),
            size=int(attrs.get("Size") or 0),
            layers=len((attrs.get("RootFS") or {}).get("Layers") or ()),
            user=str(config.get("User") or ""),
            created=str(attrs.get("Created") or ""),
            repo_digests=tuple(attrs.get("RepoDigests") or ()),
        )

    def import_rootfs(self, tar_path: Path, repository: str, tag: str, changes: Sequence[str]) -> str:
        try:
            out = self._client.api.import_image_from_file(
                str(tar_path), repository=repository, tag=tag, changes=list(changes)
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise _api_error(f"cannot import {tar_path} as {repository}:{tag}", exc) from exc
        text = out if isinstance(out, str) else json.dumps(out)
        if "error" in text.lower() and "status" not in text.lower():
            raise EngineError(f"import of {repository}:{tag} failed: {text.strip()}")
        info = self.image(f"{repository}:{tag}")
        if info is None:
            raise EngineError(f"import of {repository}:{tag} left no image", details=text)
        return info.id

    def build(
        self,
        *,
        context: Path,
        dockerfile: str,
        tag: str | None,
        labels: Mapping[str, str],
        buildargs: Mapping[str, str] | None = None,
        on_line: Callable[[str], None] | None = None,
        timeout: float = 3600.0,
        nocache: bool = False,
    ) -> BuildOutput:
        """Build with the classic builder, streaming the log line by line to ``on_line``.

        ``nocache`` runs every step again, as an engine with an empty build cache would. Without
        ``tag`` the image is left untagged (its id is returned).
        """
        log: list[str] = []
        image_id: str | None = None
        try:
            stream: Iterator[dict[str, Any]] = self._client.api.build(
                path=str(context),
                dockerfile=dockerfile,
                tag=tag,
                labels=dict(labels),
                buildargs=dict(buildargs or {}),
                rm=True,
                forcerm=True,  # no stopped build containers left behind, even on failure
                nocache=nocache,
                decode=True,
                timeout=int(timeout),
            )
            for chunk in stream:
                if "error" in chunk:
                    message = str(chunk.get("error") or "").strip()
                    raise _build_failure(message, log)
                if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
                text = chunk.get("stream")
                if isinstance(text, str):
                    for line in text.splitlines():
                        if line.strip():
                            log.append(line)
                            if on_line:
                                on_line(line)
        except docker.errors.APIError as exc:
            explanation = str(exc.explanation or exc)
            raise _build_failure(explanation, log, malformed=exc.status_code == 400) from exc
        # A streamed answer cut off mid-way (the engine died) surfaces from urllib3 unwrapped.
        except (
            docker.errors.DockerException,
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
        ) as exc:
            raise EngineError(
                f"the engine failed during the build of {tag or dockerfile}",
                hint=ENGINE_HINT,
                details="\n".join([*log[-15:], str(exc)]),
            ) from exc
        if image_id is None:
            info = self.image(tag) if tag else None
            if info is None:
                raise _build_failure("the build produced no image", log)
            image_id = info.id
        return BuildOutput(image_id=image_id, log=tuple(log))

    def tag(self, image: str, repository: str, tag: str) -> None:
        try:
            self._client.api.tag(image, repository, tag, force=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise _api_error(f"cannot tag {image} as {repository}:{tag}", exc) from exc

    def remove_image(self, ref: str, *, missing_ok: bool = True, noprune: bool = False) -> None:
        try:
            self._client.api.remove_image(ref, noprune=noprune)
        except docker.errors.ImageNotFound:
            if not missing_ok:
                raise
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise _api_error(f"cannot remove image {ref}", exc) from exc

    def save(self, ref: str, out: IO[bytes], *, chunk_size: int = 1 << 20) -> None:
        try:
            for chunk in self._client.api.get_image(ref, chunk_size=chunk_size):
                out.write(chunk)
        except (
            docker.errors.DockerException,
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,  # the stream cut off mid-way
        ) as exc:
            raise _api_error(f"cannot save image {ref}", exc) from exc

    def load(self, tar_path: Path) -> None:
        """``docker load`` of the archive at ``tar_path`` (its manifest names the tags to set)."""
        try:
            with tar_path.open("rb") as handle:
                for chunk in self._client.api.load_image(handle, quiet=True):  # type: ignore[no-untyped-call]
                    if isinstance(chunk, dict) and chunk.get("error"):
                        raise EngineError(
                            f"the engine refused to load {tar_path.name}: {str(chunk['error']).strip()}"
                        )
        except OSError as exc:
            raise EngineError(f"cannot read {tar_path}: {exc.strerror or exc}") from exc
        except (
            docker.errors.DockerException,
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
        ) as exc:
            raise _api_error(f"cannot load {tar_path.name}", exc) from exc

    def push(self, repository: str, tag: str) -> str:
        """Push and return the manifest digest the registry reported."""
        digest = ""
        try:
            for chunk in self._client.api.push(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    raise RegistryError(
                        f"push of {repository}:{tag} failed: {str(chunk['error']).strip()}",
                        hint="check that the registry runs and accepts pushes",
                    )
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "Digest" in aux:
                    digest = str(aux["Digest"])
        except (
            docker.errors.DockerException,
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,  # the stream cut off mid-way
        ) as exc:
            raise RegistryError(
                f"push of {repository}:{tag} failed: {exc}",
                hint="check that the registry runs and accepts pushes",
            ) from exc
        if not digest:
            raise RegistryError(f"push of {repository}:{tag} reported no digest")
        return digest

    def pull(self, repository: str, tag: str) -> str | None:
        """Pull ``repository:tag`` (credentials of `docker login`) and return the image id; None
        when the registry answers that the tag does not exist."""
        try:
            for chunk in self._client.api.pull(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    if _NOT_FOUND.search(str(chunk["error"])):
                        return None
                    raise RegistryError(
                        f"pull of {repository}:{tag} failed: {str(chunk['error']).strip()}",
                        hint="check the reference, that the registry runs, and `docker login` for it",
                    )
        except docker.errors.NotFound as exc:
            if _NOT_FOUND.search(str(exc)):
                return None
            raise RegistryError(f"pull of {repository}:{tag} failed: {exc}") from exc
        except (
            docker.errors.DockerException,
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,  # the stream cut off mid-way
        ) as exc:
            raise RegistryError(
                f"pull of {repository}:{tag} failed: {exc}",
                hint="check the reference, that the registry runs, and `docker login` for it",
            ) from exc
        info = self.image(f"{repository}:{tag}")
        if info is None:
            raise RegistryError(f"pull of {repository}:{tag} reported success, but the image is not there")
        return info.id

    # -- containers ---------------------------------------------------------------------

    def run(
        self,
        image: str,
        command: Sequence[str],
        *,
        user: str | None = None,
        timeout: float = 120.0,
        entrypoint: Sequence[str] | None = None,
    ) -> tuple[int, str]:
        """Run a short-lived container to completion; return (exit code, combined output)."""
        container = None
        try:
            container = self._client.containers.create(
                image,
                command=list(command),
                user=user or "",
                entrypoint=list(entrypoint) if entrypoint is not None else None,
                labels={OWNER_LABEL: "hardening"},
                network_disabled=True,
            )
            container.start()
            status = container.wait(timeout=int(timeout))
            output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            return int(status.get("StatusCode", -1)), output
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise _api_error(f"cannot run a container from {image}", exc) from exc
        finally:
            if container is not None:
                with contextlib.suppress(docker.errors.DockerException):
                    container.remove(force=True)

    def remove_running_containers(self) -> int:
        try:
            containers = self._client.containers.list()
            for container in containers:
                container.remove(force=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise _api_error("cannot remove running containers", exc) from exc
        return len(containers)

    def close(self) -> None:
        self._client.close()


def _build_failure(
    message: str, log: Sequence[str], *, malformed: bool = False
) -> BuildError | DockerfileError:
    step = ""
    for line in reversed(log):
        match = _STEP_RE.match(line)
        if match:
            step = f"step {match.group(1)}/{match.group(2)} `{match.group(3)}`"
            break
    tail = "\n".join(log[-20:])
    lowered = message.lower()
    if malformed or "dockerfile parse error" in lowered or "unknown instruction" in lowered:
        return DockerfileError(
            f"the engine rejected the Dockerfile: {message}",
            details=tail or None,
            hint="fix the template, then `harden render` and build again",
        )
    where = f" at {step}" if step else ""
    return BuildError(
        f"build failed{where}: {message}",
        details=tail or None,
        hint="read the log lines above; the candidate tag was not created",
    )
