"""The registry as the evidence code sees it: manifests and blobs by repository, nothing more.

``OrasRegistry`` is the only implementation that talks to a registry; it uses the ORAS Python
client (``oras``) for requests, registry authentication (the credentials `docker login` stored)
and URLs. Two things are ours: every request has a timeout, and transient failures (connection
refused or reset, 429, 5xx) are retried a bounded number of times — ORAS's own retry waits up to
two minutes on a registry that is simply down. Every other failure is a ``RegistryError``
(exit 3) naming the request.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import oras.container
import oras.provider
import requests

from hardening.errors import RegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPES = (
    OCI_MANIFEST,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_HINT = "check that the registry runs and accepts the request; `harden release` can be run again"

T = TypeVar("T")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    data: bytes
    digest: str  # sha256 of ``data``, computed here, never taken from the registry's word
    media_type: str


class Registry(Protocol):
    """What signing, attaching and verifying need from a registry."""

    host: str

    def manifest(self, repository: str, reference: str) -> Manifest | None: ...

    def blob(self, repository: str, digest: str) -> bytes | None: ...

    def put_blob(self, repository: str, data: bytes) -> str: ...

    def put_manifest(self, repository: str, tag: str, data: bytes, media_type: str) -> str: ...

    def delete_manifest(self, repository: str, digest: str) -> None: ...


class Transient(Exception):
    """A failure worth another try: the registry may answer next time."""


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# ORAS decorates do_request with a retry of its own (five tries, sleeping up to 83 s between them);
# we retry around whole operations instead, since a blob upload session cannot be resumed.
_BARE_DO_REQUEST = oras.provider.Registry.do_request.__wrapped__


class _OneTry(oras.provider.Registry):  # type: ignore[misc]
    """ORAS's client with one try per request."""

    def do_request(self, *args: object, **kwargs: object) -> requests.Response:
        response: requests.Response = _BARE_DO_REQUEST(self, *args, **kwargs)
        return response


class OrasRegistry:
    """One registry host. Plain HTTP only on loopback, as the Docker engine does by default."""

    def __init__(self, host: str, *, timeout: float = 30.0, attempts: int = 3, backoff: float = 0.5) -> None:
        self.host = host
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._client = _OneTry(hostname=host, insecure=is_loopback(host))
        session = self._client.session
        # requests has no default timeout; a registry that accepts and never answers must not hang us.
        session.request = functools.partial(session.request, timeout=timeout)
        self._configs_loaded = False

    # -- plumbing --------------------------------------------------------------------------------

    def _container(self, repository: str, reference: str | None = None) -> oras.container.Container:
        name = f"{self.host}/{repository}"
        if reference:
            name += f"@{reference}" if reference.startswith("sha256:") else f":{reference}"
        container = oras.container.Container(name)
        if not self._configs_loaded:
            self._client.auth.load_configs(container)  # credentials `docker login` stored
            self._configs_loaded = True
        return container

    def _url(self, path: str) -> str:
        return f"{self._client.prefix}://{path}"

    def _request(self, what: str, url: str, method: str, **kwargs: object) -> requests.Response:
        try:
            response: requests.Response = self._client.do_request(url, method, **kwargs)
        except requests.RequestException as exc:
            raise Transient(f"{what}: {exc}") from exc
        except ValueError as exc:  # ORAS: "Cannot respond to request for authentication."
            raise RegistryError(
                f"{what}: the registry {self.host} refused our credentials ({exc})",
                hint=f"log in first: `docker login {self.host}`",
            ) from exc
        if response.status_code in TRANSIENT_STATUS:
            raise Transient(f"{what}: the registry answered {response.status_code} {response.reason}")
        if response.status_code in (401, 403):
            raise RegistryError(
                f"{what}: the registry {self.host} answered {response.status_code} {response.reason}",
                hint=f"log in with an account that may push and pull there: `docker login {self.host}`",
            )
        return response

    def _retrying(self, what: str, operation: Callable[[], T]) -> T:
        last: Transient | None = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return operation()
            except Transient as exc:
                last = exc
        raise RegistryError(
            f"{last} (tried {self.attempts} times)",
            hint=_HINT,
        )

    @staticmethod
    def _refused(what: str, response: requests.Response) -> RegistryError:
        body = response.text[:500].strip()
        return RegistryError(
            f"{what}: the registry answered {response.status_code} {response.reason}",
            details=body or None,
            hint=_HINT,
        )

    # -- reading ---------------------------------------------------------------------------------

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        what = f"GET manifest {self.host}/{repository}:{reference}"
        container = self._container(repository)
        url = self._url(container.manifest_url(reference))

        def get() -> Manifest | None:
            response = self._request(what, url, "GET", headers={"Accept": ", ".join(MANIFEST_TYPES)})
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise self._refused(what, response)
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            return Manifest(response.content, sha256_digest(response.content), media_type)

        return self._retrying(what, get)

    def blob(self, repository: str, digest: str) -> bytes | None:
        what = f"GET blob {self.host}/{repository}@{digest}"
        url = self._url(self._container(repository).get_blob_url(digest))

        def get() -> bytes | None:
            response = self._request(what, url, "GET")
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise self._refused(what, response)
            return response.content

        return self._retrying(what, get)

    # -- writing ---------------------------------------------------------------------------------

    def put_blob(self, repository: str, data: bytes) -> str:
        digest = sha256_digest(data)
        what = f"upload blob {digest} to {self.host}/{repository}"
        container = self._container(repository)
        layer = {"digest": digest, "size": len(data)}
        with tempfile.TemporaryDirectory(prefix="hardening-blob-") as tmp:
            path = Path(tmp) / "blob"
            path.write_bytes(data)

            def upload() -> str:
                try:
                    response = self._client.upload_blob(str(path), container, layer)
                except requests.RequestException as exc:
                    raise Transient(f"{what}: {exc}") from exc
                except ValueError as exc:  # ORAS: no upload session URL in the answer
                    raise RegistryError(f"{what}: {exc}", hint=_HINT) from exc
                if response.status_code in TRANSIENT_STATUS:
                    raise Transient(f"{what}: the registry answered {response.status_code} {response.reason}")
                if response.status_code not in (200, 201, 202):
                    raise self._refused(what, response)
                return digest

            return self._retrying(what, upload)

    def put_manifest(self, repository: str, tag: str, data: bytes, media_type: str) -> str:
        what = f"PUT manifest {self.host}/{repository}:{tag}"
        url = self._url(self._container(repository).manifest_url(tag))

        def put() -> str:
            response = self._request(what, url, "PUT", data=data, headers={"Content-Type": media_type})
            if response.status_code not in (200, 201):
                raise self._refused(what, response)
            return sha256_digest(data)

        return self._retrying(what, put)

    def delete_manifest(self, repository: str, digest: str) -> None:
        what = f"DELETE manifest {self.host}/{repository}@{digest}"
        url = self._url(self._container(repository).manifest_url(digest))

        def delete() -> None:
            response = self._request(what, url, "DELETE")
            if response.status_code not in (200, 202, 404):
                raise self._refused(what, response)

        self._retrying(what, delete)
