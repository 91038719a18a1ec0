"""Deterministic credentials and configurations for the engine harnesses.

Every key is Ed25519 from a fixed seed and every certificate is built with
fixed serials and dates, so the DER, the signatures (RFC 8032 signing is
deterministic) and, with `counter_random`, whole handshakes are the same in
every process: a saved input replays exactly.

The engine harnesses authenticate peers with one signature check against
the fixture CA, or, when a configuration's TOY bit is set, exactly as the
appliance does: the toy piñata's own credentials (`bait_ca/toy/`), and the
peer's chain validated by `pinata.x509` against the toy anchor. The toy keys
are ECDSA, whose signatures are randomised, so a recorded raw stream under
the TOY bit replays up to the peer's chain, not to a completed handshake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from functools import cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bait_ca import toy as bait_ca_toy
from pinata.tls.config import (
    ClientConfig,
    Credentials,
    PeerAuthenticator,
    PeerRejected,
    ServerConfig,
    VerifiedPeer,
)
from pinata.tls.constants import TLS12, CipherSuite, NamedGroup
from pinata.tls.errors import AlertDescription
from pinata.x509 import Purpose, TrustAnchor, authenticator

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
_NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_NOT_AFTER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _key(label: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@cache
def ca() -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey]:
    key = _key("fuzz ca")
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Pinata Fuzz CA"))
        .issuer_name(_name("Pinata Fuzz CA"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, None)
    )
    return cert, key


@cache
def credentials(role: str) -> Credentials:
    """Leaf credentials for "server" or "client", issued by the fixture CA."""
    ca_cert, ca_key = ca()
    key = _key(f"fuzz {role}")
    eku = ExtendedKeyUsageOID.SERVER_AUTH if role == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"pinata fuzz {role}"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(2 if role == "server" else 3)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .sign(ca_key, None)
    )
    return Credentials(chain=(cert.public_bytes(serialization.Encoding.DER),), private_key=key)


def pinned_authenticator() -> PeerAuthenticator:
    """Accepts a chain whose first certificate the fixture CA signed."""
    ca_cert, ca_key = ca()
    ca_public = ca_key.public_key()
    ca_der = ca_cert.public_bytes(serialization.Encoding.DER)

    def authenticate(
        certificates: Sequence[bytes], now: dt.datetime
    ) -> VerifiedPeer | PeerRejected:
        if not certificates:
            return PeerRejected(AlertDescription.certificate_required, "no certificate")
        try:
            cert = x509.load_der_x509_certificate(certificates[0])
            ca_public.verify(cert.signature, cert.tbs_certificate_bytes)
            leaf_key = cert.public_key()
        except (ValueError, InvalidSignature, UnsupportedAlgorithm, x509.InvalidVersion) as error:
            return PeerRejected(AlertDescription.bad_certificate, type(error).__name__)
        return VerifiedPeer(
            chain=(bytes(certificates[0]), ca_der),
            leaf_public_key=leaf_key,
            subjects=("fuzz leaf", "fuzz ca"),
        )

    return authenticate


# The configuration bit that puts the toy's credentials and the real
# validator (against the toy anchor) in place of the fixture CA.
TOY = 32


@cache
def toy() -> bait_ca_toy.ToyCredentials:
    """The published toy credentials, read once."""
    return bait_ca_toy.load()


@cache
def toy_authenticator(purpose: Purpose) -> PeerAuthenticator:
    """`pinata.x509` against the toy anchor, as the appliance runs it."""
    return authenticator(TrustAnchor.from_der(toy().anchor.der), purpose)


def _toy_credentials(role: str) -> Credentials:
    issued = toy().server if role == "server" else toy().researcher_client
    return Credentials((issued.der,), issued.private_key)


# Configurations a harness picks from with one input byte: what the
# appliance runs (client auth on port 10000, none for HTTPS) and variants
# that reach the HelloRetryRequest and the other suites.
_SUITE_CHOICES: tuple[tuple[CipherSuite, ...], ...] = (
    (CipherSuite.TLS_AES_128_GCM_SHA256, CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
     CipherSuite.TLS_AES_256_GCM_SHA384),
    (CipherSuite.TLS_AES_256_GCM_SHA384,),
    (CipherSuite.TLS_CHACHA20_POLY1305_SHA256,),
)
# The same three choices in TLS 1.2. The fixture keys are Ed25519 and the
# toy's ECDSA: both sign ServerKeyExchange under ECDHE_ECDSA (RFC 8422 §2).
_SUITE_CHOICES_TLS12: tuple[tuple[CipherSuite, ...], ...] = (
    (CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
     CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
     CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    (CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,),
    (CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,),
)
# The configuration bit that limits a side to TLS 1.2: a client offering
# only 1.2 builds 1.2 flights (a server's default is 1.3 and 1.2 both, so a
# 1.2 client reaches its 1.2 states either way); a 1.2-only server answers a
# 1.3 client's hello as 1.2.
TLS12_ONLY = 64


def server_config(choice: int) -> ServerConfig:
    """Client authentication unless bit 0 is set; bits 1-2 pick the suites,
    bit 3 prefers secp256r1 (so an x25519-only client gets an HRR), bit 5
    (TOY) the toy's credentials and `pinata.x509` against the toy anchor,
    bit 6 (TLS12_ONLY) TLS 1.2 alone (else 1.3 and 1.2)."""
    groups: tuple[NamedGroup, ...] = (NamedGroup.x25519, NamedGroup.secp256r1)
    if choice & 8:
        groups = (NamedGroup.secp256r1,)
    if choice & TOY:
        own, judge = _toy_credentials("server"), toy_authenticator(Purpose.CLIENT_AUTH)
        anchor_name = toy().anchor.subject.public_bytes()
    else:
        own, judge = credentials("server"), pinned_authenticator()
        anchor_name = ca()[0].subject.public_bytes()
    return ServerConfig(
        credentials=own,
        authenticate_client=None if choice & 1 else judge,
        certificate_authorities=(anchor_name,),
        cipher_suites=_SUITE_CHOICES[(choice >> 1) % 3],
        groups=groups,
        versions=(TLS12,) if choice & TLS12_ONLY else ServerConfig.versions,
        cipher_suites_tls12=_SUITE_CHOICES_TLS12[(choice >> 1) % 3],
    )


def client_config(choice: int) -> ClientConfig:
    """With credentials unless bit 0 is set; bits 1-2 pick the suites; bit 3
    offers a secp256r1 share instead of x25519; bit 5 (TOY) the toy's
    credentials and `pinata.x509` against the toy anchor; bit 6 (TLS12_ONLY)
    offers TLS 1.2 alone (else 1.3 and 1.2)."""
    key_share_groups = (NamedGroup.secp256r1,) if choice & 8 else (NamedGroup.x25519,)
    toy_mode = bool(choice & TOY)
    return ClientConfig(
        authenticate_server=(toy_authenticator(Purpose.SERVER_AUTH) if toy_mode
                             else pinned_authenticator()),
        credentials=None if choice & 1 else (_toy_credentials("client") if toy_mode
                                             else credentials("client")),
        server_name="pinata.example" if choice & 16 else None,
        cipher_suites=_SUITE_CHOICES[(choice >> 1) % 3],
        groups=(NamedGroup.x25519, NamedGroup.secp256r1),
        key_share_groups=key_share_groups,
        versions=(TLS12,) if choice & TLS12_ONLY else ClientConfig.versions,
        cipher_suites_tls12=_SUITE_CHOICES_TLS12[(choice >> 1) % 3],
    )


def counter_random(seed: int) -> Callable[[int], bytes]:
    """Deterministic randomness (SHA-256 in counter mode over the seed)."""
    counter = 0

    def random(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            counter += 1
            out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        return out[:n]

    return random
