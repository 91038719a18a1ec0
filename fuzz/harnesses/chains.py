"""Certificate chains for the X.509 harnesses, and mutations that keep
them signed.

Two anchors: the toy anchor (what `make toy` trusts; its key is public, so
the harness can sign whatever it likes under it) and a fixture anchor with
no pathLenConstraint, under which an intermediate and a leaf make a
three-certificate path. Every key is derived from a fixed scalar and every
signature is deterministic (RFC 6979), so a saved input replays exactly.

A mutation changes the to-be-signed bytes of a certificate (byte level or
in its extension list) and signs them again with the issuer's key, so
what is exercised is the profile and path logic, not just the signature
check; `cryptography` then rebuilds the outer SEQUENCE.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fuzz.harnesses.support import Input

TOY_NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
_ECDSA = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
# AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758 §3.2), DER.
_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _sequence(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return b"\x30" + _der_length(len(body)) + body


def sign_tbs(tbs: bytes, issuer_key: ec.EllipticCurvePrivateKey) -> bytes:
    """Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
    signatureValue BIT STRING } (RFC 5280 §4.1), over arbitrary `tbs`."""
    signature = issuer_key.sign(tbs, _ECDSA)
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    return _sequence(tbs, _ECDSA_SHA256, bit_string)


def _key(n: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(0x5EED0000 + n, ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class Chain:
    """A valid chain, leaf first, without the anchor; each certificate's
    issuer key, to re-sign a mutated one."""

    anchor_der: bytes
    certificates: tuple[bytes, ...]
    issuer_keys: tuple[ec.EllipticCurvePrivateKey, ...]


def _build(
    subject: str,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    serial: int,
    *,
    ca: bool,
) -> bytes:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    else:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        ).add_extension(
            # pyca's client verifier requires one (CA/B-style profile).
            x509.SubjectAlternativeName([x509.DNSName("client.pinata.example")]), critical=False
        )
    builder = builder.add_extension(usage, critical=True)
    return builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True).public_bytes(
        serialization.Encoding.DER
    )


@cache
def toy_chain() -> Chain:
    """The toy anchor and a client leaf freshly issued under it."""
    import bait_ca.toy

    toy = bait_ca.toy.load()
    anchor_key = toy.anchor.private_key
    assert isinstance(anchor_key, ec.EllipticCurvePrivateKey)
    leaf = _build("fuzz toy client", toy.anchor.subject, anchor_key, _key(1), 0x7001, ca=False)
    return Chain(toy.anchor.der, (leaf, toy.researcher_client.der), (anchor_key, anchor_key))


@cache
def deep_chain() -> Chain:
    """Fixture anchor (no path length limit) -> intermediate -> leaf."""
    anchor_key, mid_key, leaf_key = _key(10), _key(11), _key(12)
    anchor_name = _name("Pinata Fuzz Deep Anchor")
    anchor = _build("Pinata Fuzz Deep Anchor", anchor_name, anchor_key, anchor_key, 1, ca=True)
    mid = _build("Pinata Fuzz Intermediate", anchor_name, anchor_key, mid_key, 2, ca=True)
    leaf = _build(
        "pinata fuzz deep client", _name("Pinata Fuzz Intermediate"), mid_key, leaf_key, 3, ca=False
    )
    return Chain(anchor, (leaf, mid), (mid_key, anchor_key))


def chain_for(choice: int) -> Chain:
    return deep_chain() if choice & 1 else toy_chain()


def _tbs(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).tbs_certificate_bytes


def mutate_tbs(tbs: bytes, inp: Input) -> bytes:
    op = inp.below(6)
    data = bytearray(tbs)
    pos = inp.below(len(data) + 1)
    if op == 0 and data:
        data[min(pos, len(data) - 1)] ^= inp.u8() | 1
    elif op == 1:
        patch = inp.blob(32)
        data[pos : pos + len(patch)] = patch
    elif op == 2:
        data[pos:pos] = inp.blob(32)
    elif op == 3:
        del data[pos : pos + inp.below(16) + 1]
    elif op == 4 and data:
        # Boundary values of DER lengths and tags.
        data[min(pos, len(data) - 1)] = (0x00, 0x01, 0x7F, 0x80, 0x81, 0xFF, 0x30, 0x04)[
            inp.below(8)
        ]
    elif op == 5:
        # Splice in a chunk of another certificate's TBS.
        other = _tbs(deep_chain().certificates[inp.below(2)])
        start = inp.below(len(other))
        data[pos:pos] = other[start : start + inp.below(64) + 1]
    return bytes(data)


def mutated_chain(inp: Input) -> tuple[Chain, list[bytes]]:
    """A valid chain, each certificate left alone or mutated and re-signed,
    then the list itself maybe reordered, truncated or padded."""
    chain = chain_for(inp.u8())
    certificates = list(chain.certificates)
    for i, der in enumerate(chain.certificates):
        rounds = inp.below(4)
        if not rounds:
            continue
        tbs = _tbs(der)
        for _ in range(rounds):
            tbs = mutate_tbs(tbs, inp)
        certificates[i] = sign_tbs(tbs, chain.issuer_keys[i])
    op = inp.below(6)
    if op == 1 and len(certificates) > 1:
        certificates.reverse()
    elif op == 2:
        certificates.append(chain.anchor_der)
    elif op == 3:
        certificates = certificates[:1]
    elif op == 4:
        certificates.append(certificates[inp.below(len(certificates))])
    return chain, certificates
