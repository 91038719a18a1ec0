"""Which signature algorithms and public keys we accept, and verification.

An AlgorithmIdentifier is accepted only if its DER is byte-for-byte one of a
short list, as webpki does: that settles parameters (NULL for PKCS#1 v1.5,
RFC 4055 §5; absent for ECDSA, RFC 5758 §3.2, and Ed25519, RFC 8410 §3;
RSASSA-PSS with MGF1 over the same hash and a salt as long as the hash,
RFC 4055 §3.1) without a second parser. MD5, SHA-1, DSA and anything else
are simply not in the list.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from pinata.x509.errors import CertificateRefused, Check

# RSA moduli: at least 2048 bits (the issue; NIST SP 800-131A), a whole number
# of octets (CA/B Forum BR §6.1.5), and at most 8192 bits so a hostile key
# cannot make one verification expensive.
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
CURVES = {"secp256r1", "secp384r1", "secp521r1"}


class Scheme(enum.Enum):
    ecdsa = "ecdsa"
    rsa_pkcs1 = "rsa_pkcs1"
    rsa_pss = "rsa_pss"
    ed25519 = "ed25519"


@dataclass(frozen=True, slots=True)
class SignatureAlgorithm:
    name: str
    scheme: Scheme
    hash: hashes.HashAlgorithm | None
    # Built once: `ec.ECDSA(...)` costs a few µs, a tenth of a validation's
    # own work.
    ecdsa: ec.ECDSA | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        ecdsa = ec.ECDSA(self.hash) if self.scheme is Scheme.ecdsa and self.hash else None
        object.__setattr__(self, "ecdsa", ecdsa)


def _pss(hash_oid_last: str, salt: str) -> bytes:
    hash_algorithm = "300d060960864801650304020" + hash_oid_last + "0500"
    return bytes.fromhex(
        "304106092a864886f70d01010a3034"
        "a00f"
        + hash_algorithm
        + "a11c301a06092a864886f70d010108"
        + hash_algorithm
        + "a203"
        + "0201"
        + salt
    )


ALGORITHMS: dict[bytes, SignatureAlgorithm] = {
    bytes.fromhex("300a06082a8648ce3d040302"): SignatureAlgorithm(
        "ecdsa-with-SHA256", Scheme.ecdsa, hashes.SHA256()
    ),
    bytes.fromhex("300a06082a8648ce3d040303"): SignatureAlgorithm(
        "ecdsa-with-SHA384", Scheme.ecdsa, hashes.SHA384()
    ),
    bytes.fromhex("300a06082a8648ce3d040304"): SignatureAlgorithm(
        "ecdsa-with-SHA512", Scheme.ecdsa, hashes.SHA512()
    ),
    bytes.fromhex("300d06092a864886f70d01010b0500"): SignatureAlgorithm(
        "sha256WithRSAEncryption", Scheme.rsa_pkcs1, hashes.SHA256()
    ),
    bytes.fromhex("300d06092a864886f70d01010c0500"): SignatureAlgorithm(
        "sha384WithRSAEncryption", Scheme.rsa_pkcs1, hashes.SHA384()
    ),
    bytes.fromhex("300d06092a864886f70d01010d0500"): SignatureAlgorithm(
        "sha512WithRSAEncryption", Scheme.rsa_pkcs1, hashes.SHA512()
    ),
    _pss("1", "20"): SignatureAlgorithm("RSASSA-PSS-SHA256", Scheme.rsa_pss, hashes.SHA256()),
    _pss("2", "30"): SignatureAlgorithm("RSASSA-PSS-SHA384", Scheme.rsa_pss, hashes.SHA384()),
    _pss("3", "40"): SignatureAlgorithm("RSASSA-PSS-SHA512", Scheme.rsa_pss, hashes.SHA512()),
    bytes.fromhex("300506032b6570"): SignatureAlgorithm("Ed25519", Scheme.ed25519, None),
}


def signature_algorithm(tbs_signature: bytes, outer_signature: bytes) -> SignatureAlgorithm:
    # RFC 5280 §4.1.1.2 / §4.1.2.3: the two fields MUST be identical.
    if tbs_signature != outer_signature:
        raise CertificateRefused(
            Check.signature_algorithm, "signature algorithm differs inside and outside the TBS"
        )
    algorithm = ALGORITHMS.get(outer_signature)
    if algorithm is None:
        raise CertificateRefused(
            Check.signature_algorithm, "signature algorithm not accepted (MD5, SHA-1, DSA, ...)"
        )
    return algorithm


def check_public_key(key: CertificatePublicKeyTypes) -> None:
    """Refuse keys we would not verify with (or accept a signature from)."""
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        if bits < MIN_RSA_BITS or bits > MAX_RSA_BITS or bits % 8:
            raise CertificateRefused(Check.public_key, f"RSA key of {bits} bits")
        exponent = key.public_numbers().e
        if exponent < 3 or exponent % 2 == 0:
            raise CertificateRefused(Check.public_key, "RSA public exponent not odd and >= 3")
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in CURVES:
            raise CertificateRefused(Check.public_key, f"curve {key.curve.name} not accepted")
        return
    if isinstance(key, ed25519.Ed25519PublicKey):
        return
    raise CertificateRefused(Check.public_key, f"{type(key).__name__} keys not accepted")


def verify(
    key: CertificatePublicKeyTypes,
    key_is_rsassa_pss: bool,
    algorithm: SignatureAlgorithm,
    signature: bytes,
    message: bytes,
) -> bool:
    """Whether `key` signed `message`. The key was accepted when its
    certificate was parsed (by its AlgorithmIdentifier, or `check_public_key`)."""
    try:
        if algorithm.ecdsa is not None and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, algorithm.ecdsa)
            return True
        if isinstance(key, rsa.RSAPublicKey) and algorithm.hash is not None:
            if algorithm.scheme is Scheme.rsa_pss:
                pss = padding.PSS(padding.MGF1(algorithm.hash), algorithm.hash.digest_size)
                key.verify(signature, message, pss, algorithm.hash)
                return True
            # An id-RSASSA-PSS key never signs with PKCS#1 v1.5 (RFC 4055 §1.2).
            if algorithm.scheme is Scheme.rsa_pkcs1 and not key_is_rsassa_pss:
                key.verify(signature, message, padding.PKCS1v15(), algorithm.hash)
                return True
            return False
        if algorithm.scheme is Scheme.ed25519 and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
            return True
    except (InvalidSignature, ValueError, TypeError):
        return False
    return False
