"""The ceremony: the anchor's profile, the piñata's leaves, and a CA key that
never reaches a file, a repr, a pickle or a copy."""

from __future__ import annotations

import contextlib
import copy
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from bait_ca import ca as ca_module
from bait_ca import cli
from bait_ca import keys as key_module
from bait_ca.ca import CertificateAuthority, ceremony, fingerprint
from bait_ca.keys import KeyType, PrivateKey, same_public_key

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.ExtensionType:
    return cert.extensions.get_extension_for_oid(oid).value


def test_anchor_profile() -> None:
    result = ceremony("pinata.example", now=NOW)
    anchor = result.anchor
    constraints = ext(anchor, ExtensionOID.BASIC_CONSTRAINTS)
    assert isinstance(constraints, x509.BasicConstraints)
    assert constraints.ca and constraints.path_length == 0
    assert anchor.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).critical
    usage = ext(anchor, ExtensionOID.KEY_USAGE)
    assert isinstance(usage, x509.KeyUsage)
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert anchor.not_valid_before_utc == NOW
    assert anchor.not_valid_after_utc == NOW + timedelta(days=365)
    anchor.verify_directly_issued_by(anchor)


def test_leaves() -> None:
    result = ceremony("pinata.example", now=NOW)
    expected = {
        "server": (result.server, ExtendedKeyUsageOID.SERVER_AUTH, ["pinata.example"]),
        "client": (result.client, ExtendedKeyUsageOID.CLIENT_AUTH, None),
        "web": (result.web, ExtendedKeyUsageOID.SERVER_AUTH, ["pinata.example"]),
    }
    for leaf, eku, names in expected.values():
        cert = leaf.certificate
        cert.verify_directly_issued_by(result.anchor)
        assert same_public_key(cert.public_key(), leaf.public_key)
        usage = ext(cert, ExtensionOID.EXTENDED_KEY_USAGE)
        assert isinstance(usage, x509.ExtendedKeyUsage) and list(usage) == [eku]
        key_usage = ext(cert, ExtensionOID.KEY_USAGE)
        assert isinstance(key_usage, x509.KeyUsage) and key_usage.digital_signature
        constraints = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
        assert isinstance(constraints, x509.BasicConstraints) and not constraints.ca
        if names is None:
            with pytest.raises(x509.ExtensionNotFound):
                cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        else:
            san = ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
            assert isinstance(san, x509.SubjectAlternativeName)
            assert san.get_values_for_type(x509.DNSName) == names


def test_ip_host_goes_into_an_ip_san() -> None:
    result = ceremony("127.0.0.1", now=NOW)
    san = ext(result.web.certificate, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert isinstance(san, x509.SubjectAlternativeName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_every_ceremony_mints_a_new_anchor() -> None:
    a, b = ceremony("localhost", now=NOW), ceremony("localhost", now=NOW)
    assert not same_public_key(a.anchor.public_key(), b.anchor.public_key())
    assert a.fingerprint != b.fingerprint


@pytest.mark.parametrize(
    ("key_type", "rsa_pss", "kind"),
    [
        ("p384", False, ec.EllipticCurvePublicKey),
        ("ed25519", False, ed25519.Ed25519PublicKey),
        ("rsa2048", False, rsa.RSAPublicKey),
        ("rsa2048", True, rsa.RSAPublicKey),
    ],
)
def test_key_types(key_type: str, rsa_pss: bool, kind: type) -> None:
    result = ceremony("localhost", now=NOW, key_type=key_type, rsa_pss=rsa_pss)  # type: ignore[arg-type]
    assert isinstance(result.anchor.public_key(), kind)
    result.server.certificate.verify_directly_issued_by(result.anchor)
    if rsa_pss:
        assert result.anchor.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSASSA_PSS


def test_refusals() -> None:
    with pytest.raises(ValueError, match="inverted"):
        ceremony("localhost", now=NOW, not_before=NOW, not_after=NOW - timedelta(days=1))
    with pytest.raises(ValueError, match="not a valid DNS name"):
        ceremony("not a name", now=NOW)


def test_authority_issues_while_in_memory_and_guards_its_key() -> None:
    authority = ceremony("localhost", now=NOW).authority
    leaf = authority.issue("client", "researcher", key_type="p256")
    leaf.certificate.verify_directly_issued_by(authority.certificate)
    assert "key=<in memory>" in repr(authority)
    with pytest.raises(TypeError):
        pickle.dumps(authority)
    with pytest.raises(TypeError):
        copy.copy(authority)
    with pytest.raises(TypeError):
        copy.deepcopy(authority)
    public_attributes = [getattr(authority, n) for n in dir(authority) if not n.startswith("_")]
    assert not any(isinstance(a, PrivateKey) for a in public_attributes)


def test_authority_refuses_a_key_that_does_not_match() -> None:
    one, other = ceremony("localhost", now=NOW), ceremony("localhost", now=NOW)
    with pytest.raises(ValueError, match="does not match"):
        CertificateAuthority(one.anchor, other.server.private_key)


def _private_keys_in(data: bytes) -> list[PrivateKey]:
    """Every private key `cryptography` can read from a file, PEM blocks or DER."""
    found: list[object] = []
    candidates = [data]
    marker = b"-----BEGIN "
    for chunk in data.split(marker)[1:]:
        candidates.append(marker + chunk)
    for blob in candidates:
        for load in (serialization.load_pem_private_key, serialization.load_der_private_key):
            with contextlib.suppress(ValueError, TypeError):
                found.append(load(blob, password=None))
    return [k for k in found if isinstance(k, PrivateKey)]


def _scalar_bytes(key: PrivateKey) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.private_numbers().private_value.to_bytes((key.curve.key_size + 7) // 8, "big")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.private_bytes_raw()
    return key.private_numbers().d.to_bytes(key.key_size // 8, "big")


@pytest.mark.parametrize("key_type", ["p256", "ed25519"])
def test_nothing_the_ceremony_writes_holds_the_anchor_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key_type: str
) -> None:
    generated: list[PrivateKey] = []

    def recording_generate(kind: KeyType) -> PrivateKey:
        key = key_module.generate_key(kind)
        generated.append(key)
        return key

    monkeypatch.setattr(ca_module, "generate_key", recording_generate)
    out = tmp_path / "ceremony"
    assert cli.main(["ceremony", "--out", str(out), "--key-type", key_type]) == 0

    anchor = x509.load_pem_x509_certificate((out / "anchor.pem").read_bytes())
    anchor_keys = [k for k in generated if same_public_key(k.public_key(), anchor.public_key())]
    assert len(anchor_keys) == 1  # the recording saw the CA key being made
    secret = _scalar_bytes(anchor_keys[0])

    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert {p.name for p in files} == {
        "anchor.pem", "server.pem", "server.key", "client.pem", "client.key", "web.pem", "web.key"
    }  # fmt: skip
    files_with_keys = 0
    for path in files:
        data = path.read_bytes()
        assert secret not in data, path.name
        keys = _private_keys_in(data)
        files_with_keys += bool(keys)
        for key in keys:
            assert not same_public_key(key.public_key(), anchor.public_key()), path.name
    assert files_with_keys == 3  # the scan does find keys: the three leaves'
    # And nothing was left beside the output directory.
    assert [p.name for p in tmp_path.iterdir()] == ["ceremony"]


def test_fingerprint_format() -> None:
    anchor = ceremony("localhost", now=NOW).anchor
    printed = fingerprint(anchor)
    assert len(printed) == 95 and printed.count(":") == 31 and printed == printed.upper()
