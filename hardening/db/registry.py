"""Trivy's DB as an OCI artifact: pulled with fallback over ordered repositories, and pushed.

The registry calls go through ``oras`` (reference parsing, the token handshake registries such as
ghcr ask for, blob uploads), with one change measured to matter: oras wraps every request in a
retry loop that sleeps 3, 5, 11, 29 and 83 s on a server error or an unreachable host, about
two minutes per repository before a fallback could even start. Falling back *is* the retry here,
so requests go out once, with timeouts, and each outcome is classified and named.

A pull verifies what it downloads against the manifest (digest and size), unpacks into a staging
directory, checks the DB there and only then swaps it in (``hardening.db.cache``). It records the
repository and manifest digest in ``db/pull.json``; the next pull of the same digest is a cache
hit: one manifest request, no download.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import oras.container
import oras.provider
import requests
from requests.adapters import HTTPAdapter

from hardening.db import artifact
from hardening.db.cache import db_dir, staged_db
from hardening.db.identity import DbIdentity, PullRecord, read_identity, read_pull_record, write_pull_record
from hardening.db.metadata import DB_NAME, METADATA_NAME, read_metadata
from hardening.errors import (
    DatabaseError,
    DatabaseInvalid,
    DatabasePullError,
    HardeningError,
    Location,
    RegistryError,
    UsageError,
)

DEFAULT_REPOSITORIES = ("mirror.gcr.io/aquasec/trivy-db:2", "ghcr.io/aquasecurity/trivy-db:2")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_ACCEPT = f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"
_MAX_MANIFEST_BYTES = 4 << 20
_TIMEOUT = (10.0, 60.0)  # connect, read (between bytes)
_SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PullResult:
    identity: DbIdentity
    cache_hit: bool
    attempts: tuple[str, ...]


@dataclass(frozen=True)
class PushResult:
    manifest_digest: str
    layer_digest: str
    layer_size: int


class _Failed(Exception):
    """One repository did not serve a valid DB; the next one is tried."""


# --- the registry client --------------------------------------------------------------------


class _TimeoutAdapter(HTTPAdapter):
    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = _TIMEOUT
        return super().send(request, **kwargs)


class _Registry(oras.provider.Registry):  # type: ignore[misc]
    def do_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        # The same request, auth handshake included, without oras's sleeping retry loop.
        response: requests.Response = oras.provider.Registry.do_request.__wrapped__(self, *args, **kwargs)
        return response


def _client(ref: str) -> tuple[_Registry, oras.container.Container]:
    try:
        container = oras.container.Container(ref)
    except ValueError as error:
        raise UsageError(
            f"{ref!r} is not a repository reference", hint="e.g. ghcr.io/org/trivy-db:2"
        ) from error
    registry = _Registry(
        hostname=container.registry, insecure=_is_loopback(container.registry), tls_verify=_tls_verify()
    )
    adapter = _TimeoutAdapter(max_retries=0)
    registry.session.mount("http://", adapter)
    registry.session.mount("https://", adapter)
    with contextlib.suppress(Exception):  # credentials are optional; public DBs need none
        registry.auth.load_configs(container)
    return registry, container


def _is_loopback(host: str) -> bool:
    """Plain HTTP only to this machine, as Trivy's downloader does."""
    if host.startswith("["):  # [IPv6]:port
        name = host[1 : host.find("]")]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _tls_verify() -> str | bool:
    """The machine's CA configuration, as Trivy (Go) uses it, unless the environment names one."""
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(variable):
            return os.environ[variable]
    return str(_SYSTEM_CA_BUNDLE) if _SYSTEM_CA_BUNDLE.is_file() else True


def _request(registry: _Registry, url: str, what: str, **kwargs: Any) -> requests.Response:
    try:
        return registry.do_request(url, **kwargs)
    except requests.exceptions.SSLError as error:
        raise _Failed(f"TLS failure fetching the {what}: {error}") from error
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
        raise _Failed(f"unreachable fetching the {what}: {_reason(error)}") from error
    except (requests.exceptions.RequestException, ValueError) as error:
        raise _Failed(f"request for the {what} failed: {error}") from error


def _reason(error: Exception) -> str:
    """The innermost cause of a connection failure, without urllib3's object reprs."""
    cause: object = error
    while cause is not None and getattr(cause, "reason", None) is not None:
        cause = cause.reason  # type: ignore[attr-defined]
    if cause is error and error.args:
        cause = error.args[0]
        while getattr(cause, "reason", None) is not None:
            cause = cause.reason  # type: ignore[attr-defined]
    return re.sub(r"<[^>]*>: ", "", str(cause)) or type(error).__name__


def _refuse(response: requests.Response, what: str) -> _Failed:
    status = response.status_code
    if status == 429:
        retry = response.headers.get("Retry-After")
        return _Failed(
            f"rate limited (429 Too Many Requests) on the {what}"
            + (f"; retry after {retry}s" if retry else "")
        )
    if status >= 500:
        return _Failed(f"server error {status} on the {what}")
    if status == 404:
        return _Failed(f"the {what} is missing (404)")
    if status in (401, 403):
        return _Failed(f"access denied ({status}) to the {what}; log in with `docker login` if it is private")
    return _Failed(f"unexpected answer {status} for the {what}")


# --- pull -----------------------------------------------------------------------------------


def pull_db(
    cache_dir: Path, repositories: list[str], *, on_line: Callable[[str], None] = lambda _: None
) -> PullResult:
    """Make ``cache_dir/db`` the DB the first healthy repository serves; exit 3 when none does."""
    if not repositories:
        raise UsageError("no repository to pull from")
    attempts: list[str] = []
    for ref in repositories:
        try:
            hit = _pull_one(cache_dir, ref, on_line)
        except _Failed as failure:
            line = f"{ref}: {failure}"
            attempts.append(line)
            on_line(
                f"db pull: {line}; trying the next repository"
                if ref != repositories[-1]
                else f"db pull: {line}"
            )
            continue
        attempts.append(f"{ref}: {'cache hit' if hit else 'pulled'}")
        return PullResult(read_identity(cache_dir), hit, tuple(attempts))
    raise DatabasePullError(
        f"no repository served a valid Trivy DB ({len(repositories)} tried)",
        location=Location(cache_dir),
        details="\n".join(attempts),
        hint=_previous_hint(cache_dir) + "; retry later, or pass --repository for a mirror that holds the DB "
        "(`harden db push` copies one there)",
    )


def _previous_hint(cache_dir: Path) -> str:
    try:
        identity = read_identity(cache_dir)
    except HardeningError:
        return "there is no previous DB in the cache"
    return f"the previous DB is unchanged (data of {identity.updated_at.isoformat()})"


def _pull_one(cache_dir: Path, ref: str, on_line: Callable[[str], None]) -> bool:
    registry, container = _client(ref)
    manifest_url = f"{registry.prefix}://{container.manifest_url()}"
    response = _request(
        registry, manifest_url, "manifest", method="GET", headers={"Accept": _ACCEPT}, stream=True
    )
    with response:
        if response.status_code != 200:
            raise _refuse(response, "manifest")
        body = _read_capped(response, _MAX_MANIFEST_BYTES, "manifest")
    manifest_digest = "sha256:" + hashlib.sha256(body).hexdigest()
    served = response.headers.get("Docker-Content-Digest")
    if served and served != manifest_digest:
        raise _Failed(f"the manifest's digest is {manifest_digest}, the registry says {served}")
    if container.digest and container.digest != manifest_digest:
        raise _Failed(f"the manifest's digest is {manifest_digest}, not the {container.digest} asked for")
    layer = _db_layer(body)
    if _is_current(cache_dir, ref, manifest_digest):
        on_line(f"db pull: {ref}: {manifest_digest} is the DB in the cache; nothing to download")
        return True
    on_line(f"db pull: {ref}: downloading {layer['size']} bytes ({layer['digest']})")
    with _download(registry, container, layer, cache_dir) as blob:
        try:
            with staged_db(cache_dir) as stage:
                artifact.unpack(blob, stage)
                write_pull_record(
                    stage,
                    PullRecord(
                        repository=ref,
                        manifest_digest=manifest_digest,
                        layer_digest=layer["digest"],
                        layer_size=layer["size"],
                        db_size=(stage / DB_NAME).stat().st_size,
                        pulled_at=datetime.now(UTC),
                    ),
                )
        except DatabaseInvalid as invalid:
            raise _Failed(f"not a valid Trivy DB: {invalid}") from invalid
    return False


def _read_capped(response: requests.Response, limit: int, what: str) -> bytes:
    data = bytearray()
    try:
        for chunk in response.iter_content(64 << 10):
            data += chunk
            if len(data) > limit:
                raise _Failed(f"the {what} is larger than {limit} bytes")
    except requests.exceptions.RequestException as error:
        raise _Failed(f"the {what} was cut off: {error}") from error
    return bytes(data)


def _db_layer(body: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(body)
    except ValueError as error:
        raise _Failed(f"the manifest is not JSON: {error}") from error
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        raise _Failed("the manifest lists no layers (an index or another kind of artifact?)")
    found = [
        item
        for item in layers
        if isinstance(item, dict) and item.get("mediaType") == artifact.LAYER_MEDIA_TYPE
    ]
    if len(found) != 1:
        raise _Failed(
            f"the manifest has {len(found)} layers of media type {artifact.LAYER_MEDIA_TYPE}, not 1"
        )
    layer = found[0]
    digest, size = layer.get("digest"), layer.get("size")
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        raise _Failed(f"the DB layer's digest {digest!r} is not a sha256 digest")
    if type(size) is not int or size <= 0:
        raise _Failed(f"the DB layer's size {size!r} is not a positive integer")
    return layer


def _is_current(cache_dir: Path, ref: str, manifest_digest: str) -> bool:
    """The cache already holds this artifact, intact as far as a size check can tell."""
    try:
        record = read_pull_record(db_dir(cache_dir))
        if record is None or record.manifest_digest != manifest_digest:
            return False
        read_metadata(db_dir(cache_dir) / METADATA_NAME)
        return (db_dir(cache_dir) / DB_NAME).stat().st_size == record.db_size
    except (HardeningError, OSError):
        return False


@contextlib.contextmanager
def _download(
    registry: _Registry, container: oras.container.Container, layer: dict[str, Any], cache_dir: Path
) -> Iterator[Path]:
    """The layer blob in a temporary file beside the cache's DB, verified against the manifest."""
    url = f"{registry.prefix}://{container.get_blob_url(layer['digest'])}"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".db-download-", suffix=".tar.gz", dir=cache_dir)
    except OSError as error:
        raise DatabaseError(
            f"cannot create a download file: {error.strerror or error}",
            location=Location(cache_dir),
            hint="check free space and permissions of the cache directory",
        ) from error
    path = Path(name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            _request(registry, url, "DB layer blob", method="GET", stream=True) as response,
        ):
            if response.status_code != 200:
                raise _refuse(response, "DB layer blob")
            _receive(response, out, layer, path)
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def _receive(response: requests.Response, out: Any, layer: dict[str, Any], path: Path) -> None:
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > layer["size"]:
                raise _Failed(f"the DB layer blob is longer than the {layer['size']} bytes the manifest says")
            digest.update(chunk)
            try:
                out.write(chunk)
            except OSError as error:
                raise DatabaseError(
                    f"cannot store the download: {error.strerror or error}",
                    location=Location(path),
                    hint="check free space of the cache directory; the previous DB is unchanged",
                ) from error
    except requests.exceptions.RequestException as error:
        raise _Failed(f"the DB layer download was cut off after {size} bytes: {error}") from error
    if size != layer["size"]:
        raise _Failed(f"the DB layer blob is {size} bytes, the manifest says {layer['size']}")
    got = f"sha256:{digest.hexdigest()}"
    if got != layer["digest"]:
        raise _Failed(f"the DB layer blob's digest is {got}, the manifest says {layer['digest']}")


# --- push -----------------------------------------------------------------------------------


def push_db(cache_dir: Path, ref: str) -> PushResult:
    """Publish ``cache_dir/db`` at ``ref`` as the artifact Trivy downloads."""
    source = db_dir(cache_dir)
    if not (source / DB_NAME).is_file():
        raise DatabaseInvalid(
            f"no vulnerability DB in {cache_dir} to push",
            location=Location(source / DB_NAME),
            hint="run `harden db pull` or `harden db build` with this --cache-dir first",
        )
    with tempfile.TemporaryDirectory(prefix=".db-push-", dir=cache_dir) as scratch:
        packed = artifact.pack(source, Path(scratch) / artifact.LAYER_TITLE)
        return push_layer(ref, packed)


def push_layer(ref: str, packed: artifact.Packed) -> PushResult:
    """Publish one ``db.tar.gz`` layer at ``ref`` as Trivy's DB artifact (as it is: unchecked)."""
    registry, container = _client(ref)
    layer = {
        "mediaType": artifact.LAYER_MEDIA_TYPE,
        "digest": packed.digest,
        "size": packed.size,
        "annotations": {"org.opencontainers.image.title": artifact.LAYER_TITLE},
    }
    config_descriptor = {
        "mediaType": artifact.CONFIG_MEDIA_TYPE,
        "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
        "size": 2,
    }
    with tempfile.TemporaryDirectory(prefix=".db-push-") as scratch:
        config = Path(scratch) / "config.json"
        config.write_bytes(b"{}")
        for path, descriptor in ((packed.path, layer), (config, config_descriptor)):
            _push_call(ref, _uploader(registry, container, path, descriptor), "blob upload")
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor, "layers": [layer]}
    body = json.dumps(manifest, separators=(",", ":")).encode()
    url = f"{registry.prefix}://{container.manifest_url()}"
    _push_call(
        ref,
        lambda: registry.do_request(url, "PUT", data=body, headers={"Content-Type": OCI_MANIFEST}),
        "manifest upload",
    )
    return PushResult("sha256:" + hashlib.sha256(body).hexdigest(), packed.digest, packed.size)


def _uploader(
    registry: _Registry, container: oras.container.Container, path: Path, descriptor: dict[str, Any]
) -> Callable[[], requests.Response]:
    def upload() -> requests.Response:
        response: requests.Response = registry.upload_blob(str(path), container, descriptor)
        return response

    return upload


def _push_call(ref: str, call: Callable[[], requests.Response], what: str) -> None:
    try:
        response = call()
    except (requests.exceptions.RequestException, ValueError, OSError) as error:
        raise RegistryError(
            f"{what} to {ref} failed: {error}", hint="check the registry address and that it runs"
        ) from error
    if response.status_code not in (200, 201, 202):
        raise RegistryError(
            f"{what} to {ref} answered {response.status_code}: {response.text[:300]}",
            hint="check the reference and your push rights (`docker login`)",
        )
