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
# The public exponent: exactly 65537 (F4). CA/B BR §6.1.6 allows any odd
# e >= 3 and recommends 2^16+1 <= e < 2^256; every web PKI and bait_ca key
# uses F4, and fixing it makes a verification's cost a function of the
# modulus alone (what `verification_cost` counts), with nothing left for a
# hostile key to inflate.
RSA_EXPONENT = 65537
CURVES = {"secp256r1", "secp384r1", "secp521r1"}
# Estimated cost of one verification, in units of one RSA-2048 PKCS#1 v1.5
# verification (about 21 µs here with OpenSSL 3.0; measured: P-256 71 µs,
# P-384 516 µs, P-521 500 µs, Ed25519 107 µs, RSA-4096 68 µs, RSA-8192
# 254 µs), rounded up. RSA grows with the square of the modulus (e fixed).
_CURVE_COST = {"secp256r1": 4, "secp384r1": 25, "secp521r1": 25}
_ED25519_COST = 6


class Scheme(enum.Enum):
    ecdsa = "ecdsa"
    rsa_pkcs1 = "rsa_pkcs1"
    rsa_pss = "rsa_pss"
    ed25519 = "ed25519"


@dataclass(frozen=True, slots=True)
class SignatureAlgorithm:
    name: str
    oid: str
    scheme: Scheme
    hash: hashes.HashAlgorithm | None
    # Built once: `ec.ECDSA(...)` costs a few µs, a tenth of a validation's
    # own work.
    ecdsa: ec.ECDSA | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        ecdsa = ec.ECDSA(self.hash) if self.scheme is Scheme.ecdsa and self.hash else None
        object.__setattr__(self, "ecdsa", ecdsa)


_PSS_OID = "1.2.840.113549.1.1.10"


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
        "ecdsa-with-SHA256", "1.2.840.10045.4.3.2", Scheme.ecdsa, hashes.SHA256()
    ),
    bytes.fromhex("300a06082a8648ce3d040303"): SignatureAlgorithm(
        "ecdsa-with-SHA384", "1.2.840.10045.4.3.3", Scheme.ecdsa, hashes.SHA384()
    ),
    bytes.fromhex("300a06082a8648ce3d040304"): SignatureAlgorithm(
        "ecdsa-with-SHA512", "1.2.840.10045.4.3.4", Scheme.ecdsa, hashes.SHA512()
    ),
    bytes.fromhex("300d06092a864886f70d01010b0500"): SignatureAlgorithm(
        "sha256WithRSAEncryption", "1.2.840.113549.1.1.11", Scheme.rsa_pkcs1, hashes.SHA256()
    ),
    bytes.fromhex("300d06092a864886f70d01010c0500"): SignatureAlgorithm(
        "sha384WithRSAEncryption", "1.2.840.113549.1.1.12", Scheme.rsa_pkcs1, hashes.SHA384()
    ),
    bytes.fromhex("300d06092a864886f70d01010d0500"): SignatureAlgorithm(
        "sha512WithRSAEncryption", "1.2.840.113549.1.1.13", Scheme.rsa_pkcs1, hashes.SHA512()
    ),
    _pss("1", "20"): SignatureAlgorithm(
        "RSASSA-PSS-SHA256", _PSS_OID, Scheme.rsa_pss, hashes.SHA256()
    ),
    _pss("2", "30"): SignatureAlgorithm(
        "RSASSA-PSS-SHA384", _PSS_OID, Scheme.rsa_pss, hashes.SHA384()
    ),
    _pss("3", "40"): SignatureAlgorithm(
        "RSASSA-PSS-SHA512", _PSS_OID, Scheme.rsa_pss, hashes.SHA512()
    ),
    bytes.fromhex("300506032b6570"): SignatureAlgorithm(
        "Ed25519", "1.3.101.112", Scheme.ed25519, None
    ),
}


_BY_OID: dict[str, tuple[bytes, ...]] = {}
for _identifier, _algorithm in ALGORITHMS.items():
    _BY_OID[_algorithm.oid] = (*_BY_OID.get(_algorithm.oid, ()), _identifier)


def accepted_identifiers(oid: str) -> tuple[bytes, ...]:
    """The AlgorithmIdentifier encodings we accept for a signature OID
    (none for MD5, SHA-1, DSA, ...; three for id-RSASSA-PSS)."""
    return _BY_OID.get(oid, ())


def check_public_key(key: CertificatePublicKeyTypes) -> None:
    """Refuse keys we would not verify with (or accept a signature from)."""
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        if bits < MIN_RSA_BITS or bits > MAX_RSA_BITS or bits % 8:
            raise CertificateRefused(Check.public_key, f"RSA key of {bits} bits")
        if key.public_numbers().e != RSA_EXPONENT:
            raise CertificateRefused(Check.public_key, "RSA public exponent other than 65537")
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        # Named curves only: `cryptography` refuses explicit parameters, and
        # OpenSSL refuses a point that is not on the curve, as it loads it.
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


def verification_cost(key: CertificatePublicKeyTypes) -> int:
    """The estimated work of one verification with `key`, in RSA-2048 units
    (see _CURVE_COST); path building budgets the sum, not the count."""
    if isinstance(key, rsa.RSAPublicKey):
        return -(-(key.key_size**2) // (MIN_RSA_BITS**2))
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _CURVE_COST.get(key.curve.name, max(_CURVE_COST.values()))
    return _ED25519_COST
