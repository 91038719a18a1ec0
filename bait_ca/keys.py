"""Key types the CA offers, how each is made, and how each signs a certificate.

ECDSA P-256 is the default: the fastest handshake for the piñata. P-384,
Ed25519 and RSA (2048/3072/4096, PKCS#1 v1.5 or PSS) are there by flag; the
forge also uses RSA-1024, which no one should accept.
"""

from __future__ import annotations

import functools
from typing import Literal, get_args

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KeyType = Literal["p256", "p384", "ed25519", "rsa1024", "rsa2048", "rsa3072", "rsa4096"]
KEY_TYPES: tuple[str, ...] = get_args(KeyType)
# What a researcher may ask the CLI for; RSA-1024 is only for the forge.
CLI_KEY_TYPES: tuple[str, ...] = tuple(k for k in KEY_TYPES if k != "rsa1024")

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

_CURVES: dict[str, ec.EllipticCurve] = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}
# SEC 2 §2.4.2, §2.5.1: the group orders of P-256 and P-384.
_ORDERS: dict[str, int] = {
    "p256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "p384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}


def parse_key_type(name: str) -> KeyType:
    for known in get_args(KeyType):
        if name == known:
            return known  # type: ignore[no-any-return]
    raise ValueError(f"unknown key type {name!r}; choose one of {', '.join(KEY_TYPES)}")


def generate_key(key_type: KeyType) -> PrivateKey:
    """A fresh key from the operating system's randomness."""
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type])
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))


@functools.lru_cache(maxsize=64)
def cached_key(key_type: KeyType, label: str) -> PrivateKey:
    """A key generated once per process per (type, label): RSA is slow to make.

    For test tooling only; the ceremony always calls `generate_key`.
    """
    return generate_key(key_type)


def _expand(seed: bytes, label: str, size: int) -> bytes:
    # RFC 5869 HKDF-SHA256: the seed is the input keying material, the label
    # separates one key from another.
    return HKDF(
        algorithm=hashes.SHA256(), length=size, salt=b"bait_ca seed v1", info=label.encode()
    ).derive(seed)


def derive_scalar(seed: bytes, label: str, order: int) -> int:
    """A scalar in [1, order-1], drawn from 64 extra bits so the bias is negligible
    (FIPS 186-5 §A.2.1, "extra random bits")."""
    size = (order.bit_length() + 64 + 7) // 8
    return int.from_bytes(_expand(seed, label, size), "big") % (order - 1) + 1


def derive_key(seed: bytes, label: str, key_type: KeyType) -> PrivateKey:
    """A key that is a pure function of (seed, label): for the published toy CA only."""
    if key_type in _CURVES:
        scalar = derive_scalar(seed, label, _ORDERS[key_type])
        return ec.derive_private_key(scalar, _CURVES[key_type])
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(_expand(seed, label, 32))
    raise ValueError("only elliptic-curve keys can be derived from a seed")


def default_hash(key: PrivateKey | PublicKey) -> hashes.HashAlgorithm | None:
    """The hash a certificate signature uses with this key (None: Ed25519 hashes itself)."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
    return hashes.SHA256()


def same_public_key(a: PublicKeyTypes, b: PublicKeyTypes) -> bool:
    """Whether two public keys are the same key (compared by their SPKI encoding)."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(*spki) == b.public_bytes(*spki)


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8, unencrypted: the form every TLS stack loads."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
