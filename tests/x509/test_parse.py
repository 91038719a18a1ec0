"""Totality: any bytes in, a record or a typed refusal out, never another exception."""

from __future__ import annotations

import contextlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given, settings
from hypothesis import strategies as st

from bait_ca import forge
from pinata.x509 import Purpose, TrustAnchor, ValidatedChain, ValidationFailure, validate
from pinata.x509.errors import CertificateRefused
from pinata.x509.parse import parse_certificate
from pinata.x509.signature import ALGORITHMS

from .conftest import NOW

_CA = forge.make_anchor("parse anchor")
_MIDDLE = forge.issue_intermediate(_CA)
_LEAF = forge.issue_leaf(_MIDDLE, "server")
_ANCHOR = TrustAnchor.from_der(_CA.der)


@given(st.binary(max_size=600))
def test_parse_is_total(data: bytes) -> None:
    with contextlib.suppress(CertificateRefused):
        parse_certificate(data)


@given(st.integers(min_value=0), st.binary(max_size=64))
def test_parse_is_total_on_truncated_certificates(cut: int, tail: bytes) -> None:
    data = _LEAF.der[: cut % len(_LEAF.der)] + tail
    with contextlib.suppress(CertificateRefused):
        parse_certificate(data)


def _mutate(data: bytes, position: int, value: int, cut: int) -> bytes:
    position %= len(data)
    mutated = bytearray(data)
    mutated[position] = value
    return bytes(mutated[: len(mutated) - cut])


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0),
    st.integers(min_value=0, max_value=255),
    st.integers(min_value=0, max_value=3),
    st.booleans(),
)
def test_mutated_chains_never_raise(position: int, value: int, cut: int, leaf: bool) -> None:
    chain = [_LEAF.der, _MIDDLE.der]
    index = 0 if leaf else 1
    chain[index] = _mutate(chain[index], position, value, cut)
    result = validate(_ANCHOR, chain, NOW, Purpose.SERVER_AUTH)
    assert isinstance(result, ValidatedChain | ValidationFailure)
    if isinstance(result, ValidatedChain):
        # Only a change the signature does not cover may pass: the outer
        # signature's encoding did not change what was signed.
        assert (
            parse_certificate(chain[index]).tbs
            == parse_certificate((_LEAF.der, _MIDDLE.der)[index]).tbs
        )


@pytest.mark.parametrize("hash_algorithm", [hashes.SHA256(), hashes.SHA384(), hashes.SHA512()])
def test_pss_identifiers_match_cryptography(hash_algorithm: hashes.HashAlgorithm) -> None:
    """Our byte-exact RSASSA-PSS AlgorithmIdentifiers are the ones pyca writes."""
    issuer = forge.make_anchor("pss check", key_type="rsa2048")
    key = issuer.private_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(issuer.subject)
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(forge.NOT_BEFORE)
        .not_valid_after(forge.NOT_AFTER)
    )
    pss = padding.PSS(padding.MGF1(hash_algorithm), padding.PSS.DIGEST_LENGTH)
    certificate = builder.sign(key, hash_algorithm, rsa_padding=pss)  # type: ignore[arg-type]
    der = certificate.public_bytes(serialization.Encoding.DER)
    algorithm = parse_certificate(der, anchor=True).algorithm
    assert algorithm in ALGORITHMS.values()
    assert algorithm.hash is not None and algorithm.hash.name == hash_algorithm.name
