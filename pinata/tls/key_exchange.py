"""Key exchange for the key_share extension (RFC 8446 §4.2.8, §7.4).

Groups: x25519 (RFC 7748), secp256r1 and secp384r1 (uncompressed points only,
§4.2.8.2), and the hybrid X25519MLKEM768 of draft-ietf-tls-ecdhe-mlkem, whose
shares and secret are the ML-KEM-768 part followed by the X25519 part.

Private keys come from the caller's `random`, so a test can replay a handshake.
One exception: `cryptography` offers no way to pass ML-KEM's encapsulation
randomness, so the server half of X25519MLKEM768 draws it from OpenSSL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pinata.tls.constants import NamedGroup, enum_name
from pinata.tls.errors import Cause, LocalProtocolError, ProtocolError

Random = Callable[[int], bytes]

SUPPORTED_GROUPS: frozenset[int] = frozenset(
    (NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1, NamedGroup.X25519MLKEM768)
)

X25519_LEN = 32
MLKEM768_ENCAPSULATION_KEY_LEN = 1184
MLKEM768_CIPHERTEXT_LEN = 1088
MLKEM768_SEED_LEN = 64  # FIPS 203 (d, z)

# Group orders (SEC 2 v2 §2.4.2, §2.5.1), to turn random bytes into a scalar.
_EC_CURVES: Mapping[int, tuple[ec.EllipticCurve, int, int]] = MappingProxyType(
    {
        NamedGroup.secp256r1: (
            ec.SECP256R1(),
            0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
            32,
        ),
        NamedGroup.secp384r1: (
            ec.SECP384R1(),
            0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
            48,
        ),
    }
)


def _illegal(reason: str) -> ProtocolError:
    return ProtocolError(Cause.invalid_key_share, reason)


def _random_bytes(random: Random, n: int) -> bytes:
    data = random(n)
    if len(data) != n:
        raise LocalProtocolError(f"random({n}) returned {len(data)} bytes")
    return data


# -- X25519 (RFC 7748; RFC 8446 §7.4.2) -----------------------------------


def _x25519_private(random: Random) -> X25519PrivateKey:
    # RFC 7748 §5: any 32 bytes are a private key; clamping happens inside.
    return X25519PrivateKey.from_private_bytes(_random_bytes(random, X25519_LEN))


def _x25519_public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def _x25519_shared(key: X25519PrivateKey, peer: bytes) -> bytes:
    if len(peer) != X25519_LEN:
        raise _illegal(f"X25519 share of {len(peer)} bytes")
    try:
        # §7.4.2: an all-zero result (a small-order point) must be refused;
        # OpenSSL refuses it with ValueError.
        shared = key.exchange(X25519PublicKey.from_public_bytes(peer))
    except ValueError:
        raise _illegal("X25519 share gives an all-zero secret") from None
    if not any(shared):  # belt and braces: never let a zero secret through
        raise _illegal("X25519 share gives an all-zero secret")
    return shared


# -- NIST curves (RFC 8446 §4.2.8.2, §7.4.1) --------------------------------


def _ec_private(group: int, random: Random) -> ec.EllipticCurvePrivateKey:
    curve, order, size = _EC_CURVES[group]
    # 64 extra bits make the bias of the reduction negligible (FIPS 186-5
    # A.2.1); mapping into [1, n-1] avoids the zero scalar without a loop.
    raw = int.from_bytes(_random_bytes(random, size + 8), "big")
    return ec.derive_private_key(raw % (order - 1) + 1, curve)


def _ec_public_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _ec_public(group: int, data: bytes) -> ec.EllipticCurvePublicKey:
    curve, _, size = _EC_CURVES[group]
    # §4.2.8.2: UncompressedPointRepresentation only: 0x04 || X || Y.
    if len(data) != 1 + 2 * size or data[0] != 4:
        raise _illegal(f"{NamedGroup(group).name} share is not an uncompressed point")
    try:
        # Checks that the point is on the curve and not the identity.
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, data)
    except ValueError:
        raise _illegal(f"{NamedGroup(group).name} share is not a curve point") from None


def _ec_shared(key: ec.EllipticCurvePrivateKey, group: int, peer: bytes) -> bytes:
    try:
        # §7.4.1: the shared secret is the x-coordinate, as ECDH gives it.
        return key.exchange(ec.ECDH(), _ec_public(group, peer))
    except ValueError:
        raise _illegal("ECDH failed") from None


# -- X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem) ----------------------------


def _mlkem_public(data: bytes) -> MLKEM768PublicKey:
    try:
        # FIPS 203 §7.2 input checks (length, coefficients below q).
        return MLKEM768PublicKey.from_public_bytes(data)
    except ValueError:
        raise _illegal("ML-KEM-768 encapsulation key is malformed") from None


# -- The two sides -------------------------------------------------------------


class ClientKeyShare:
    """A client's KeyShareEntry for one group, and the private key behind it."""

    __slots__ = ("_ec", "_mlkem", "_x25519", "group", "key_exchange")

    def __init__(
        self,
        group: int,
        key_exchange: bytes,
        *,
        x25519: X25519PrivateKey | None = None,
        ec_key: ec.EllipticCurvePrivateKey | None = None,
        mlkem: MLKEM768PrivateKey | None = None,
    ) -> None:
        self.group = group
        self.key_exchange = key_exchange
        self._x25519 = x25519
        self._ec = ec_key
        self._mlkem = mlkem

    def __repr__(self) -> str:  # never print a private key
        return f"ClientKeyShare({_group_name(self.group)}, {len(self.key_exchange)} bytes)"

    @classmethod
    def generate(cls, group: int, random: Random) -> ClientKeyShare:
        if group == NamedGroup.x25519:
            x = _x25519_private(random)
            return cls(group, _x25519_public_bytes(x), x25519=x)
        if group in _EC_CURVES:
            key = _ec_private(group, random)
            return cls(group, _ec_public_bytes(key), ec_key=key)
        if group == NamedGroup.X25519MLKEM768:
            mlkem = MLKEM768PrivateKey.from_seed_bytes(_random_bytes(random, MLKEM768_SEED_LEN))
            x = _x25519_private(random)
            share = mlkem.public_key().public_bytes_raw() + _x25519_public_bytes(x)
            return cls(group, share, x25519=x, mlkem=mlkem)
        raise LocalProtocolError(f"unsupported group {_group_name(group)}")

    def shared_secret(self, server_key_exchange: bytes) -> bytes:
        """The (EC)DHE or hybrid secret from the server's share (§7.4)."""
        peer = bytes(server_key_exchange)
        if self._mlkem is not None and self._x25519 is not None:
            if len(peer) != MLKEM768_CIPHERTEXT_LEN + X25519_LEN:
                raise _illegal(f"X25519MLKEM768 server share of {len(peer)} bytes")
            ciphertext = peer[:MLKEM768_CIPHERTEXT_LEN]
            try:
                # FIPS 203 decapsulation rejects implicitly: a bad ciphertext
                # yields a pseudorandom secret and the Finished check fails.
                mlkem_secret = self._mlkem.decapsulate(ciphertext)
            except ValueError:
                raise _illegal("ML-KEM-768 ciphertext is malformed") from None
            return mlkem_secret + _x25519_shared(self._x25519, peer[MLKEM768_CIPHERTEXT_LEN:])
        if self._x25519 is not None:
            return _x25519_shared(self._x25519, peer)
        if self._ec is not None:
            return _ec_shared(self._ec, self.group, peer)
        raise LocalProtocolError("key share without a private key")  # pragma: no cover


def server_key_exchange(
    group: int, client_key_exchange: bytes, random: Random
) -> tuple[bytes, bytes]:
    """(server key_exchange, shared secret) answering a client's share (§4.2.8)."""
    peer = bytes(client_key_exchange)
    if group == NamedGroup.x25519:
        if len(peer) != X25519_LEN:
            raise _illegal(f"X25519 share of {len(peer)} bytes")
        x = _x25519_private(random)
        return _x25519_public_bytes(x), _x25519_shared(x, peer)
    if group in _EC_CURVES:
        public = _ec_public(group, peer)  # validate before spending a key
        key = _ec_private(group, random)
        try:
            shared = key.exchange(ec.ECDH(), public)
        except ValueError:
            raise _illegal("ECDH failed") from None
        return _ec_public_bytes(key), shared
    if group == NamedGroup.X25519MLKEM768:
        if len(peer) != MLKEM768_ENCAPSULATION_KEY_LEN + X25519_LEN:
            raise _illegal(f"X25519MLKEM768 client share of {len(peer)} bytes")
        encapsulation_key = _mlkem_public(peer[:MLKEM768_ENCAPSULATION_KEY_LEN])
        x = _x25519_private(random)
        x_shared = _x25519_shared(x, peer[MLKEM768_ENCAPSULATION_KEY_LEN:])
        mlkem_secret, ciphertext = encapsulation_key.encapsulate()
        return ciphertext + _x25519_public_bytes(x), mlkem_secret + x_shared
    raise LocalProtocolError(f"unsupported group {_group_name(group)}")


def _group_name(group: int) -> str:
    return enum_name(NamedGroup, group)
