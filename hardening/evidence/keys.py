"""Release keys: ECDSA P-256 in PEM, the private half always encrypted with a passphrase.

The public key is a PEM "PUBLIC KEY" (SubjectPublicKeyInfo), which is what `cosign verify --key`
reads. The private key is PKCS#8, encrypted with the passphrase from ``HARDENING_KEY_PASSPHRASE``;
the passphrase never comes from the command line (it would land in shell history and `ps`), and
neither it nor the key is ever printed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hardening.atomic import write_bytes_atomic
from hardening.errors import Location, OutputError, SigningKeyError

PASSPHRASE_ENV = "HARDENING_KEY_PASSPHRASE"  # noqa: S105 # nosec B105 - a variable name
PRIVATE_NAME = "release.key"
PUBLIC_NAME = "release.pub"
MIN_PASSPHRASE = 12

_CURVE = ec.SECP256R1
_GENERATE_HINT = "create a key pair with `harden keys generate --out DIR`"


@dataclass(frozen=True)
class PublicKey:
    """A P-256 public key that checks ECDSA-SHA256 signatures (ASN.1 DER, as cosign writes them)."""

    key: ec.EllipticCurvePublicKey

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self.key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def pem(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def fingerprint(self) -> str:
        """sha256 of the DER public key: short enough to print, enough to tell keys apart."""
        der = self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return "sha256:" + hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    key: ec.EllipticCurvePrivateKey

    def sign(self, data: bytes) -> bytes:
        # Deterministic ECDSA (RFC 6979): releasing the same run again stores byte-identical
        # evidence, so a repeated release changes nothing in the registry. Verifiers cannot tell.
        return self.key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key.public_key())


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    fingerprint: str


def passphrase_from_env(environ: Mapping[str, str] | None = None) -> bytes:
    value = (os.environ if environ is None else environ).get(PASSPHRASE_ENV, "")
    if not value:
        raise SigningKeyError(
            f"${PASSPHRASE_ENV} is not set",
            hint=f"export {PASSPHRASE_ENV} with the key's passphrase (in CI, from the environment's secrets)",
        )
    return value.encode("utf-8")


def generate(out_dir: Path, passphrase: bytes) -> KeyPair:
    """Write ``release.key`` (0600) and ``release.pub`` into ``out_dir``; never overwrite a key."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise SigningKeyError(
            f"the passphrase in ${PASSPHRASE_ENV} is shorter than {MIN_PASSPHRASE} characters",
            hint="use a long random passphrase, e.g. `openssl rand -base64 32`",
        )
    private_path, public_path = out_dir / PRIVATE_NAME, out_dir / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise SigningKeyError(
                "already exists; refusing to overwrite a key",
                location=Location(path),
                hint="choose another --out directory, or move the old pair away first",
            )
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    private = ec.generate_private_key(_CURVE())
    encrypted = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    public = PublicKey(private.public_key())
    write_bytes_atomic(private_path, encrypted, mode=0o600)
    write_bytes_atomic(public_path, public.pem(), mode=0o644)
    return KeyPair(private_path, public_path, public.fingerprint)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"no {what} here", location=Location(path), hint=_GENERATE_HINT) from None
    except IsADirectoryError:
        raise SigningKeyError(f"is a directory, not a {what}", location=Location(path)) from None
    except OSError as exc:
        raise SigningKeyError(
            f"cannot read the {what}: {exc.strerror or exc}", location=Location(path)
        ) from None


def _p256(key: object, path: Path, what: str) -> None:
    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        raise SigningKeyError(
            f"the {what} is {type(key).__name__.lstrip('_')}, not ECDSA P-256",
            location=Location(path),
            hint=_GENERATE_HINT,
        )
    if not isinstance(key.curve, _CURVE):
        raise SigningKeyError(
            f"the {what} is on curve {key.curve.name}, not P-256 (secp256r1)",
            location=Location(path),
            hint=_GENERATE_HINT,
        )


def load_signing_key(path: Path, passphrase: bytes) -> SigningKey:
    data = _read(path, "private key")
    if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" not in data:
        plain = b"PRIVATE KEY-----" in data
        raise SigningKeyError(
            "not an encrypted private key" if plain else "not a PEM private key",
            location=Location(path),
            details="release keys are kept encrypted; an unencrypted key is refused" if plain else None,
            hint=_GENERATE_HINT,
        )
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except ValueError:
        # The file says it is encrypted; a key that does not decrypt means the wrong passphrase
        # (or, rarely, a damaged file: it cannot be told apart without the right passphrase).
        raise SigningKeyError(
            f"cannot decrypt the private key: wrong passphrase in ${PASSPHRASE_ENV} (or a damaged key file)",
            location=Location(path),
            hint=f"export the passphrase the key was generated with as {PASSPHRASE_ENV}",
        ) from None
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"unusable private key: {exc}", location=Location(path)) from None
    _p256(key, path, "private key")
    if not isinstance(key, ec.EllipticCurvePrivateKey):  # narrowed by _p256; for the type checker
        raise SigningKeyError("not an ECDSA private key", location=Location(path))
    return SigningKey(key)


def load_public_key(path: Path) -> PublicKey:
    data = _read(path, "public key")
    if b"PRIVATE KEY" in data:
        raise SigningKeyError(
            "this is a private key; verify with the public one (release.pub)",
            location=Location(path),
        )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError(
            'not a PEM public key ("-----BEGIN PUBLIC KEY-----")',
            location=Location(path),
            hint="pass the release.pub that `harden keys generate` wrote (or the one the project publishes)",
        ) from None
    _p256(key, path, "public key")
    if not isinstance(key, ec.EllipticCurvePublicKey):  # narrowed by _p256; for the type checker
        raise SigningKeyError("not an ECDSA public key", location=Location(path))
    return PublicKey(key)
