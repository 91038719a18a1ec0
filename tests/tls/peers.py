"""Credentials and a pinned authenticator for engine tests.

The engine's tests need certificates but not path validation (that is
pinata/x509's job): the authenticator here accepts exactly the chains whose
leaf was issued by the test CA, checked with one signature verification.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pinata.tls.config import Credentials, PeerAuthenticator, PeerRejected, VerifiedPeer
from pinata.tls.errors import AlertDescription

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
_NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_NOT_AFTER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _new_key(kind: str):  # type: ignore[no-untyped-def]
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(kind)


@dataclass(frozen=True)
class TestCA:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def test_ca(label: str = "Pinata Test CA") -> TestCA:
    return _test_ca(label)


@cache
def _test_ca(label: str) -> TestCA:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(label))
        .issuer_name(_name(label))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return TestCA(cert, key)


@cache
def leaf(
    role: str, kind: str = "p256", ca_label: str = "Pinata Test CA"
) -> tuple[Credentials, x509.Certificate]:
    """A leaf for `role` ("server" or "client") issued by the test CA."""
    ca = test_ca(ca_label)
    key = _new_key(kind)
    eku = ExtendedKeyUsageOID.SERVER_AUTH if role == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(f"pinata test {role} {kind}"))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    )
    cert = builder.sign(ca.key, hashes.SHA256())
    der = cert.public_bytes(serialization.Encoding.DER)
    return Credentials(chain=(der,), private_key=key), cert


def key_pem(credentials: Credentials) -> bytes:
    return credentials.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(credentials: Credentials) -> bytes:
    return b"".join(
        x509.load_der_x509_certificate(d).public_bytes(serialization.Encoding.PEM)
        for d in credentials.chain
    )


def pinned_authenticator(ca: TestCA | None = None) -> PeerAuthenticator:
    """Accepts a chain whose first certificate the CA's key signed."""
    ca = ca or test_ca()

    def authenticate(
        certificates: Sequence[bytes], now: dt.datetime
    ) -> VerifiedPeer | PeerRejected:
        if not certificates:
            return PeerRejected(AlertDescription.certificate_required, "no certificate")
        try:
            cert = x509.load_der_x509_certificate(certificates[0])
            pub = ca.key.public_key()
            pub.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                ec.ECDSA(cert.signature_hash_algorithm),  # type: ignore[arg-type]
            )
        except Exception as error:
            return PeerRejected(AlertDescription.unknown_ca, str(error))
        return VerifiedPeer(
            chain=(certificates[0], ca.der),
            leaf_public_key=cert.public_key(),
            subjects=(cert.subject.rfc4514_string(), ca.certificate.subject.rfc4514_string()),
        )

    return authenticate


__all__ = ["NOW", "cert_pem", "key_pem", "leaf", "pinned_authenticator", "test_ca"]
