"""Release keys, DSSE envelopes and in-toto statements: the signing primitives."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hardening.cli import main
from hardening.errors import SigningKeyError
from hardening.evidence import dsse
from hardening.evidence.keys import (
    PASSPHRASE_ENV,
    generate,
    load_public_key,
    load_signing_key,
    passphrase_from_env,
)
from hardening.evidence.statements import (
    Attestation,
    attestation_tag,
    parse_statement,
    signature_tag,
    signed_digest,
    simple_signing_payload,
    statement,
)

PASSPHRASE = b"unit-test passphrase, long enough"
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    made = generate(tmp_path_factory.mktemp("keys") / "out", PASSPHRASE)
    return made.private, made.public


def test_generate_writes_an_encrypted_p256_private_key_readable_only_by_its_owner(
    pair: tuple[Path, Path],
) -> None:
    private, public = pair
    assert private.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    key = load_signing_key(private, PASSPHRASE)
    assert isinstance(key.key.curve, ec.SECP256R1)
    assert load_public_key(public).pem() == key.public.pem()
    # Without the passphrase the file is of no use.
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(private.read_bytes(), password=None)


def test_generate_never_overwrites_a_key(pair: tuple[Path, Path]) -> None:
    private, _ = pair
    before = private.read_bytes()
    with pytest.raises(SigningKeyError, match="refusing to overwrite"):
        generate(private.parent, PASSPHRASE)
    assert private.read_bytes() == before


def test_a_short_or_missing_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="shorter than 12"):
        generate(tmp_path / "k", b"short")
    assert not (tmp_path / "k").exists()
    with pytest.raises(SigningKeyError, match=f"\\${PASSPHRASE_ENV} is not set"):
        passphrase_from_env({})
    assert passphrase_from_env({PASSPHRASE_ENV: "x" * 20}) == b"x" * 20


def test_a_wrong_passphrase_says_so_and_never_echoes_it(pair: tuple[Path, Path]) -> None:
    with pytest.raises(SigningKeyError) as info:
        load_signing_key(pair[0], b"the wrong passphrase")
    text = info.value.diagnostics()
    assert "wrong passphrase" in text and str(pair[0]) in text
    assert "the wrong passphrase" not in text
    assert info.value.exit_code == 2


def _pem_private(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, encrypted: bool) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(PASSPHRASE) if encrypted else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no private key here"),
        (b"", "not a PEM private key"),
        (
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "cannot decrypt",
        ),
        (
            _pem_private(ec.generate_private_key(ec.SECP256R1()), encrypted=False),
            "not an encrypted private key",
        ),
        (_pem_private(ec.generate_private_key(ec.SECP384R1()), encrypted=True), "secp384r1, not P-256"),
        (_pem_private(rsa.generate_private_key(65537, 2048), encrypted=True), "not ECDSA P-256"),
    ],
    ids=["missing", "empty", "garbage", "unencrypted", "p384", "rsa"],
)
def test_unusable_private_keys_are_bad_input(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "release.key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SigningKeyError, match=message) as info:
        load_signing_key(path, PASSPHRASE)
    assert info.value.location is not None and info.value.location.path == path


def test_unusable_public_keys_are_bad_input(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    with pytest.raises(SigningKeyError, match="this is a private key"):
        load_public_key(pair[0])
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(SigningKeyError, match="not a PEM public key"):
        load_public_key(garbage)
    rsa_pub = tmp_path / "rsa.pub"
    rsa_pub.write_bytes(
        rsa.generate_private_key(65537, 2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(SigningKeyError, match="not ECDSA P-256"):
        load_public_key(rsa_pub)


def test_keys_generate_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE.decode())
    with pytest.raises(SystemExit) as info:
        main(["keys", "generate", "--out", str(tmp_path / "keys")])
    out, _ = capsys.readouterr()
    assert info.value.code == 0
    assert "release.key" in out and "release.pub" in out and "sha256:" in out
    assert PASSPHRASE.decode() not in out and "PRIVATE KEY-----" not in out
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(SystemExit) as info:
        main(["keys", "generate", "--out", str(tmp_path / "other")])
    _, err = capsys.readouterr()
    assert info.value.code == 2 and f"${PASSPHRASE_ENV} is not set" in err


# --- DSSE ----------------------------------------------------------------------------------------


def test_pae_is_the_dsse_v1_encoding() -> None:
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_an_envelope_verifies_with_its_key_only(pair: tuple[Path, Path], tmp_path: Path) -> None:
    key = load_signing_key(pair[0], PASSPHRASE)
    envelope = dsse.sign(key, dsse.INTOTO_PAYLOAD_TYPE, b'{"a":1}')
    parsed = dsse.parse(envelope.to_json())
    assert parsed == envelope and parsed.verified_by(key.public)
    other = load_public_key(generate(tmp_path / "other", PASSPHRASE).public)
    assert not parsed.verified_by(other)
    tampered = dsse.Envelope(parsed.payload_type, b'{"a":2}', parsed.signatures)
    assert not tampered.verified_by(key.public)
    retyped = dsse.Envelope("text/plain", parsed.payload, parsed.signatures)
    assert not retyped.verified_by(key.public)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"payload": "e30=", "signatures": [{"sig": "AA=="}]}', "payloadType"),
        (b'{"payloadType": "x", "payload": "%%%", "signatures": [{"sig": "AA=="}]}', "payload is not valid"),
        (b'{"payloadType": "x", "payload": "e30=", "signatures": []}', "signatures"),
    ],
)
def test_malformed_envelopes_are_named(data: bytes, message: str) -> None:
    with pytest.raises(dsse.EnvelopeError, match=message):
        dsse.parse(data)


# --- statements and the simple-signing payload ---------------------------------------------------


def test_every_attestation_kind_has_its_own_predicate_type_and_cosign_type() -> None:
    kinds = list(Attestation)
    assert len({k.predicate_type for k in kinds}) == len({k.cosign_type for k in kinds}) == len(kinds) == 4
    for kind in kinds:
        assert Attestation.by_predicate_type(kind.predicate_type) is kind
    assert Attestation.VEX.predicate_type == "https://openvex.dev/ns"  # what `--type openvex` selects
    assert Attestation.by_predicate_type("https://example.invalid/x") is None


def test_a_statement_names_the_digest_and_reads_back() -> None:
    payload = statement("127.0.0.1:5000/a/b", DIGEST, Attestation.GATE, {"passed": True})
    doc = json.loads(payload)
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["subject"] == [{"name": "127.0.0.1:5000/a/b", "digest": {"sha256": "ab" * 32}}]
    parsed = parse_statement(payload)
    assert parsed.subject_digests == (DIGEST,) and parsed.predicate == {"passed": True}
    for broken in (
        b"{}",
        b'{"_type": "https://in-toto.io/Statement/v1", "predicateType": "x", "predicate": {}}',
    ):
        with pytest.raises(ValueError):
            parse_statement(broken)


def test_the_simple_signing_payload_claims_the_digest() -> None:
    payload = simple_signing_payload("127.0.0.1:5000/a/b", DIGEST)
    assert signed_digest(payload) == DIGEST
    assert json.loads(payload)["critical"]["type"] == "cosign container image signature"
    with pytest.raises(ValueError, match="not a cosign image signature"):
        signed_digest(b"{}")
    with pytest.raises(ValueError, match="not a sha256 digest"):
        simple_signing_payload("x/y", "sha512:00")
    assert signature_tag(DIGEST) == f"sha256-{'ab' * 32}.sig"
    assert attestation_tag(OTHER) == f"sha256-{'cd' * 32}.att"
