"""CertificateVerify signing and verification (RFC 8446 §4.2.3, §4.4.3)."""

from __future__ import annotations

import functools

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from hypothesis import given, settings
from hypothesis import strategies as st

from pinata.tls.constants import SignatureScheme as S
from pinata.tls.errors import AlertDescription, LocalProtocolError, ProtocolError
from pinata.tls.signatures import (
    CERTIFICATE_VERIFY_SCHEMES,
    certificate_verify_message,
    schemes_for_key,
    sign,
    verify,
)


@functools.cache
def key(kind: str) -> CertificateIssuerPrivateKeyTypes:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ed448":
        return ed448.Ed448PrivateKey.generate()
    if kind == "rsa2048":
        return rsa.generate_private_key(65537, 2048)
    if kind == "rsa1024":
        return rsa.generate_private_key(65537, 1024)
    raise AssertionError(kind)


# (key kind, schemes it signs with in preference order)
OURS = {
    "p256": (S.ecdsa_secp256r1_sha256,),
    "p384": (S.ecdsa_secp384r1_sha384,),
    "p521": (S.ecdsa_secp521r1_sha512,),
    "ed25519": (S.ed25519,),
    "rsa2048": (S.rsa_pss_rsae_sha256, S.rsa_pss_rsae_sha384, S.rsa_pss_rsae_sha512),
    "rsa1024": (),
    "ed448": (),
}


def alert(call: object, *args: object, **kwargs: object) -> AlertDescription:
    with pytest.raises(ProtocolError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value.alert


def test_certificate_verify_message() -> None:
    th = bytes(range(32))
    server = certificate_verify_message(True, th)
    client = certificate_verify_message(False, th)
    assert server == b" " * 64 + b"TLS 1.3, server CertificateVerify\x00" + th
    assert client == b" " * 64 + b"TLS 1.3, client CertificateVerify\x00" + th


@pytest.mark.parametrize("kind", list(OURS))
def test_schemes_for_key(kind: str) -> None:
    assert schemes_for_key(key(kind)) == OURS[kind]


def test_pss_key_schemes() -> None:
    assert schemes_for_key(key("rsa2048"), key_is_rsassa_pss=True) == (
        S.rsa_pss_pss_sha256,
        S.rsa_pss_pss_sha384,
        S.rsa_pss_pss_sha512,
    )


SIGNING = [(kind, scheme) for kind, schemes in OURS.items() for scheme in schemes]


@pytest.mark.parametrize(("kind", "scheme"), SIGNING)
def test_sign_verify_round_trip(kind: str, scheme: S) -> None:
    private = key(kind)
    message = certificate_verify_message(True, bytes(48))
    signature = sign(scheme, private, message)
    verify(scheme, private.public_key(), message, signature)
    # The other side's context string makes a different message (§4.4.3).
    other = certificate_verify_message(False, bytes(48))
    assert alert(verify, scheme, private.public_key(), other, signature) == (
        AlertDescription.decrypt_error
    )


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(SIGNING),
    st.sampled_from(["flip", "random", "empty", "extend"]),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=1, max_value=255),
    st.binary(max_size=600),
)
def test_any_corruption_is_decrypt_error(
    case: tuple[str, S], how: str, index: int, mask: int, junk: bytes
) -> None:
    kind, scheme = case
    private = key(kind)
    message = certificate_verify_message(False, bytes(32))
    # ECDSA signatures are randomized, so the index is taken modulo the length.
    signature = bytearray(sign(scheme, private, message))
    if how == "flip":
        signature[index % len(signature)] ^= mask
    elif how == "random":
        signature = bytearray(junk)
    elif how == "empty":
        signature = bytearray()
    else:
        signature += b"\x00"
    assert alert(verify, scheme, private.public_key(), message, bytes(signature)) == (
        AlertDescription.decrypt_error
    )


def test_pss_salt_length_must_equal_hash_length() -> None:
    private = key("rsa2048")
    assert isinstance(private, rsa.RSAPrivateKey)
    message = certificate_verify_message(True, bytes(32))
    short_salt = private.sign(
        message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=0), hashes.SHA256()
    )
    assert alert(verify, S.rsa_pss_rsae_sha256, private.public_key(), message, short_salt) == (
        AlertDescription.decrypt_error
    )
    pkcs1 = private.sign(message, padding.PKCS1v15(), hashes.SHA256())
    assert alert(verify, S.rsa_pss_rsae_sha256, private.public_key(), message, pkcs1) == (
        AlertDescription.decrypt_error
    )


@pytest.mark.parametrize(
    ("scheme", "kind"),
    [
        (S.ecdsa_secp256r1_sha256, "p384"),  # §4.2.3: the curve is part of the scheme
        (S.ecdsa_secp384r1_sha384, "p256"),
        (S.ecdsa_secp521r1_sha512, "p256"),
        (S.ecdsa_secp256r1_sha256, "rsa2048"),
        (S.ed25519, "p256"),
        (S.rsa_pss_rsae_sha256, "ed25519"),
        (S.rsa_pss_rsae_sha256, "p256"),
        (S.rsa_pss_pss_sha256, "rsa2048"),  # an rsaEncryption key may not use pss_pss
    ],
)
def test_scheme_must_fit_the_key(scheme: S, kind: str) -> None:
    public = key(kind).public_key()
    assert alert(verify, scheme, public, b"m", b"s" * 64) == AlertDescription.illegal_parameter


def test_rsassa_pss_key_uses_only_pss_schemes() -> None:
    private = key("rsa2048")
    message = certificate_verify_message(True, bytes(32))
    signature = sign(S.rsa_pss_pss_sha256, private, message, key_is_rsassa_pss=True)
    verify(S.rsa_pss_pss_sha256, private.public_key(), message, signature, key_is_rsassa_pss=True)
    rsae = sign(S.rsa_pss_rsae_sha256, private, message)
    assert alert(
        verify, S.rsa_pss_rsae_sha256, private.public_key(), message, rsae, key_is_rsassa_pss=True
    ) == (AlertDescription.illegal_parameter)


@pytest.mark.parametrize(
    "scheme",
    [
        S.rsa_pkcs1_sha256,
        S.rsa_pkcs1_sha384,
        S.rsa_pkcs1_sha512,
        S.rsa_pkcs1_sha1,
        S.ecdsa_sha1,
        S.ed448,
        0x0000,
        0xFFFF,
    ],
)
def test_schemes_not_for_certificate_verify(scheme: int) -> None:
    assert scheme not in CERTIFICATE_VERIFY_SCHEMES
    public = key("rsa2048").public_key()
    assert alert(verify, scheme, public, b"m", b"s") == AlertDescription.illegal_parameter


def test_weak_rsa_refused() -> None:
    weak = key("rsa1024")
    assert isinstance(weak, rsa.RSAPrivateKey)
    message = certificate_verify_message(True, bytes(32))
    signature = weak.sign(
        message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()
    )
    assert alert(verify, S.rsa_pss_rsae_sha256, weak.public_key(), message, signature) == (
        AlertDescription.insufficient_security
    )
    with pytest.raises(LocalProtocolError):
        sign(S.rsa_pss_rsae_sha256, weak, message)


def test_sign_with_a_scheme_that_does_not_fit_is_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        sign(S.ecdsa_secp384r1_sha384, key("p256"), b"m")
    with pytest.raises(LocalProtocolError):
        sign(S.rsa_pss_pss_sha256, key("rsa2048"), b"m")
    with pytest.raises(LocalProtocolError):
        sign(S.rsa_pkcs1_sha256, key("rsa2048"), b"m")
