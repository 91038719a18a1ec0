"""Key shares (RFC 8446 §4.2.8, §7.4) and X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from pinata.tls.constants import NamedGroup
from pinata.tls.errors import AlertDescription, LocalProtocolError, ProtocolError
from pinata.tls.key_exchange import (
    MLKEM768_CIPHERTEXT_LEN,
    MLKEM768_ENCAPSULATION_KEY_LEN,
    SUPPORTED_GROUPS,
    ClientKeyShare,
    server_key_exchange,
)

# RFC 7748 §6.1.
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIVATE = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED_K = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

# SEC 2 group orders, checked independently of the module's copy below.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P384_ORDER = int(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
    16,
)

SHARE_LEN = {
    NamedGroup.x25519: (32, 32),
    NamedGroup.secp256r1: (65, 65),
    NamedGroup.secp384r1: (97, 97),
    NamedGroup.X25519MLKEM768: (1184 + 32, 1088 + 32),
}
SECRET_LEN = {
    NamedGroup.x25519: 32,
    NamedGroup.secp256r1: 32,
    NamedGroup.secp384r1: 48,
    NamedGroup.X25519MLKEM768: 64,
}


def fixed(*chunks: bytes) -> Callable[[int], bytes]:
    queue = list(chunks)

    def random(n: int) -> bytes:
        chunk = queue.pop(0)
        assert len(chunk) == n
        return chunk

    return random


def illegal(call: Callable[..., object], *args: object) -> None:
    with pytest.raises(ProtocolError) as info:
        call(*args)
    assert info.value.alert == AlertDescription.illegal_parameter


def test_supported_groups() -> None:
    assert set(SHARE_LEN) == SUPPORTED_GROUPS


@pytest.mark.parametrize("group", sorted(SUPPORTED_GROUPS))
def test_round_trip(group: int) -> None:
    client = ClientKeyShare.generate(group, os.urandom)
    assert client.group == group
    client_len, server_len = SHARE_LEN[NamedGroup(group)]
    assert len(client.key_exchange) == client_len
    server_share, server_secret = server_key_exchange(group, client.key_exchange, os.urandom)
    assert len(server_share) == server_len
    assert len(server_secret) == SECRET_LEN[NamedGroup(group)]
    assert client.shared_secret(server_share) == server_secret
    # A different server key gives a different secret.
    other_share, other_secret = server_key_exchange(group, client.key_exchange, os.urandom)
    assert other_secret != server_secret and client.shared_secret(other_share) == other_secret


def test_x25519_rfc7748() -> None:
    client = ClientKeyShare.generate(NamedGroup.x25519, fixed(ALICE_PRIVATE))
    assert client.key_exchange == ALICE_PUBLIC
    share, secret = server_key_exchange(NamedGroup.x25519, ALICE_PUBLIC, fixed(BOB_PRIVATE))
    assert (share, secret) == (BOB_PUBLIC, SHARED_K)
    assert client.shared_secret(BOB_PUBLIC) == SHARED_K


def test_hybrid_x25519_part_rfc7748() -> None:
    seed = bytes(range(64))
    client = ClientKeyShare.generate(NamedGroup.X25519MLKEM768, fixed(seed, ALICE_PRIVATE))
    # draft-ietf-tls-ecdhe-mlkem: ML-KEM encapsulation key first, then X25519.
    assert client.key_exchange[MLKEM768_ENCAPSULATION_KEY_LEN:] == ALICE_PUBLIC
    share, secret = server_key_exchange(
        NamedGroup.X25519MLKEM768, client.key_exchange, fixed(BOB_PRIVATE)
    )
    assert share[MLKEM768_CIPHERTEXT_LEN:] == BOB_PUBLIC
    assert secret[32:] == SHARED_K
    # The ML-KEM half is what the seed's private key decapsulates.
    mlkem = MLKEM768PrivateKey.from_seed_bytes(seed)
    assert secret[:32] == mlkem.decapsulate(share[:MLKEM768_CIPHERTEXT_LEN])
    assert client.shared_secret(share) == secret


def test_mlkem_from_seed_is_deterministic() -> None:
    seed = bytes(range(100, 164))
    first = ClientKeyShare.generate(NamedGroup.X25519MLKEM768, fixed(seed, ALICE_PRIVATE))
    second = ClientKeyShare.generate(NamedGroup.X25519MLKEM768, fixed(seed, BOB_PRIVATE))
    ek = MLKEM768PrivateKey.from_seed_bytes(seed).public_key().public_bytes_raw()
    assert first.key_exchange[:MLKEM768_ENCAPSULATION_KEY_LEN] == ek
    assert second.key_exchange[:MLKEM768_ENCAPSULATION_KEY_LEN] == ek
    third = ClientKeyShare.generate(NamedGroup.X25519MLKEM768, fixed(bytes(64), ALICE_PRIVATE))
    assert third.key_exchange[:MLKEM768_ENCAPSULATION_KEY_LEN] != ek


@pytest.mark.parametrize(
    ("group", "curve", "order", "size"),
    [
        (NamedGroup.secp256r1, ec.SECP256R1(), P256_ORDER, 40),
        (NamedGroup.secp384r1, ec.SECP384R1(), P384_ORDER, 56),
    ],
)
def test_ec_private_key_from_random(
    group: NamedGroup, curve: ec.EllipticCurve, order: int, size: int
) -> None:
    # The orders are right: OpenSSL takes n - 1 as a scalar and refuses n.
    ec.derive_private_key(order - 1, curve)
    with pytest.raises(ValueError):
        ec.derive_private_key(order, curve)
    raw = bytes(range(size))
    client = ClientKeyShare.generate(group, fixed(raw))
    scalar = int.from_bytes(raw, "big") % (order - 1) + 1
    expected = ec.derive_private_key(scalar, curve).public_key()
    assert client.key_exchange == expected.public_bytes(
        Encoding.X962, PublicFormat.UncompressedPoint
    )


def test_ec_scalar_never_zero() -> None:
    # All-zero and all-one randomness still give valid, non-zero scalars.
    for filler in (0x00, 0xFF):
        for group, size in ((NamedGroup.secp256r1, 40), (NamedGroup.secp384r1, 56)):
            share = ClientKeyShare.generate(group, fixed(bytes([filler]) * size))
            assert share.key_exchange[0] == 4


@pytest.mark.parametrize("group", sorted(SUPPORTED_GROUPS))
def test_wrong_length_shares(group: int) -> None:
    client = ClientKeyShare.generate(group, os.urandom)
    client_len, server_len = SHARE_LEN[NamedGroup(group)]
    for n in (0, 1, client_len - 1, client_len + 1):
        illegal(server_key_exchange, group, bytes(n), os.urandom)
    for n in (0, 1, server_len - 1, server_len + 1):
        illegal(client.shared_secret, bytes(n))


def p256_point(x: int, y: int) -> bytes:
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def test_nist_points_must_be_uncompressed_and_on_the_curve() -> None:
    client = ClientKeyShare.generate(NamedGroup.secp256r1, os.urandom)
    good = ClientKeyShare.generate(NamedGroup.secp256r1, os.urandom).key_exchange
    x, y = int.from_bytes(good[1:33], "big"), int.from_bytes(good[33:], "big")
    off_curve = p256_point(x, y ^ 1)
    illegal(server_key_exchange, NamedGroup.secp256r1, off_curve, os.urandom)
    illegal(client.shared_secret, off_curve)
    # The identity has no affine encoding; all zeros is off the curve.
    illegal(client.shared_secret, p256_point(0, 0))
    # §4.2.8.2: compressed (0x02/0x03) and hybrid (0x06/0x07) forms are refused.
    compressed = bytes((2 + (y & 1),)) + good[1:33]
    illegal(server_key_exchange, NamedGroup.secp256r1, compressed, os.urandom)
    illegal(client.shared_secret, bytes((6 + (y & 1),)) + good[1:])
    # A P-384 share is not a P-256 share.
    p384 = ClientKeyShare.generate(NamedGroup.secp384r1, os.urandom).key_exchange
    illegal(client.shared_secret, p384)
    assert len(client.shared_secret(good)) == 32


@pytest.mark.parametrize(
    "low_order",
    [
        bytes(32),
        (1).to_bytes(32, "little"),
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    ],
)
def test_x25519_all_zero_secret_refused(low_order: bytes) -> None:
    client = ClientKeyShare.generate(NamedGroup.x25519, os.urandom)
    illegal(client.shared_secret, low_order)
    illegal(server_key_exchange, NamedGroup.x25519, low_order, os.urandom)
    hybrid = ClientKeyShare.generate(NamedGroup.X25519MLKEM768, os.urandom)
    share, _ = server_key_exchange(NamedGroup.X25519MLKEM768, hybrid.key_exchange, os.urandom)
    illegal(hybrid.shared_secret, share[:MLKEM768_CIPHERTEXT_LEN] + low_order)
    illegal(
        server_key_exchange,
        NamedGroup.X25519MLKEM768,
        hybrid.key_exchange[:MLKEM768_ENCAPSULATION_KEY_LEN] + low_order,
        os.urandom,
    )


def test_malformed_mlkem_encapsulation_key_refused() -> None:
    # FIPS 203 §7.2: coefficients must be below q = 3329; 0xFF.. encodes 4095.
    bad = b"\xff" * MLKEM768_ENCAPSULATION_KEY_LEN + ALICE_PUBLIC
    illegal(server_key_exchange, NamedGroup.X25519MLKEM768, bad, os.urandom)


def test_misuse_is_local() -> None:
    with pytest.raises(LocalProtocolError):
        ClientKeyShare.generate(NamedGroup.secp521r1, os.urandom)
    with pytest.raises(LocalProtocolError):
        server_key_exchange(0x1234, bytes(32), os.urandom)
    with pytest.raises(LocalProtocolError):
        ClientKeyShare.generate(NamedGroup.x25519, lambda n: bytes(n - 1))


def test_repr_hides_private_key() -> None:
    share = ClientKeyShare.generate(NamedGroup.x25519, fixed(ALICE_PRIVATE))
    assert ALICE_PRIVATE.hex() not in repr(share) and "x25519" in repr(share)


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(sorted(SUPPORTED_GROUPS)), st.binary(max_size=1300), st.booleans())
def test_arbitrary_peer_shares_raise_only_protocol_error(
    group: int, data: bytes, pad_to_length: bool
) -> None:
    if pad_to_length:  # reach the parsers behind the length checks too
        client_len, _ = SHARE_LEN[NamedGroup(group)]
        data = (data * (client_len // max(1, len(data)) + 1))[:client_len] if data else data
    try:
        server_key_exchange(group, data, os.urandom)
    except ProtocolError as error:
        assert error.alert == AlertDescription.illegal_parameter
    client = ClientKeyShare.generate(group, os.urandom)
    try:
        client.shared_secret(data)
    except ProtocolError as error:
        assert error.alert == AlertDescription.illegal_parameter
