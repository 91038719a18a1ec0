"""CertificateVerify signatures (RFC 8446 §4.2.3, §4.4.3).

Only the schemes TLS 1.3 allows in CertificateVerify are accepted here:
ECDSA on its named curve, Ed25519, and RSASSA-PSS with salt length equal to
the hash length. PKCS#1 v1.5 and SHA-1 schemes are for certificates only
(§4.2.3), so in a CertificateVerify they are `illegal_parameter`.

An RSA key below 2048 bits is refused: ours cannot sign, and a peer's gives
`insufficient_security` (the peer's parameters are weaker than we accept;
RFC 8446 leaves the alert to us, and this is the one that names the cause).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)

from pinata.tls.constants import SignatureScheme, enum_name
from pinata.tls.errors import Cause, LocalProtocolError, ProtocolError

MIN_RSA_BITS = 2048

# §4.4.3: 64 spaces, the context string, a zero byte, then the hash.
_PAD = b"\x20" * 64
_SERVER_CONTEXT = b"TLS 1.3, server CertificateVerify"
_CLIENT_CONTEXT = b"TLS 1.3, client CertificateVerify"

_S = SignatureScheme
# scheme -> (curve name, hash) for ECDSA: §4.2.3 binds each to one curve.
_HashFactory = Callable[[], hashes.HashAlgorithm]
_ECDSA: Mapping[int, tuple[str, _HashFactory]] = MappingProxyType(
    {
        _S.ecdsa_secp256r1_sha256: ("secp256r1", hashes.SHA256),
        _S.ecdsa_secp384r1_sha384: ("secp384r1", hashes.SHA384),
        _S.ecdsa_secp521r1_sha512: ("secp521r1", hashes.SHA512),
    }
)
# scheme -> (hash, whether the key must be id-RSASSA-PSS)
_RSA_PSS: Mapping[int, tuple[_HashFactory, bool]] = MappingProxyType(
    {
        _S.rsa_pss_rsae_sha256: (hashes.SHA256, False),
        _S.rsa_pss_rsae_sha384: (hashes.SHA384, False),
        _S.rsa_pss_rsae_sha512: (hashes.SHA512, False),
        _S.rsa_pss_pss_sha256: (hashes.SHA256, True),
        _S.rsa_pss_pss_sha384: (hashes.SHA384, True),
        _S.rsa_pss_pss_sha512: (hashes.SHA512, True),
    }
)
CERTIFICATE_VERIFY_SCHEMES: frozenset[int] = frozenset((*_ECDSA, *_RSA_PSS, _S.ed25519))
# One signature algorithm object per ECDSA scheme, made at import: they hold
# only the hash's name, and a handshake signs or verifies with one or two.
_ECDSA_ALGORITHM: Mapping[int, ec.ECDSA] = MappingProxyType(
    {scheme: ec.ECDSA(hash_type()) for scheme, (_, hash_type) in _ECDSA.items()}
)

_ECDSA_BY_CURVE: Mapping[str, SignatureScheme] = MappingProxyType(
    {curve: SignatureScheme(scheme) for scheme, (curve, _) in _ECDSA.items()}
)
_RSAE_PREFERENCE = (_S.rsa_pss_rsae_sha256, _S.rsa_pss_rsae_sha384, _S.rsa_pss_rsae_sha512)
_PSS_PREFERENCE = (_S.rsa_pss_pss_sha256, _S.rsa_pss_pss_sha384, _S.rsa_pss_pss_sha512)


def certificate_verify_message(is_server: bool, transcript_hash: bytes) -> bytes:
    """The content a CertificateVerify signs (§4.4.3)."""
    context = _SERVER_CONTEXT if is_server else _CLIENT_CONTEXT
    return b"".join((_PAD, context, b"\x00", transcript_hash))


def _pss(hash_type: _HashFactory) -> tuple[padding.PSS, hashes.HashAlgorithm]:
    algorithm = hash_type()
    # §4.2.3: "The length of the Salt MUST be equal to the length of the
    # output of the digest algorithm." Exact, not AUTO, when verifying too.
    return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size), algorithm


def schemes_for_key(
    private_key: CertificateIssuerPrivateKeyTypes, *, key_is_rsassa_pss: bool = False
) -> tuple[SignatureScheme, ...]:
    """The CertificateVerify schemes this key can sign with, best first."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        scheme = _ECDSA_BY_CURVE.get(private_key.curve.name)
        return () if scheme is None else (scheme,)
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return (_S.ed25519,)
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < MIN_RSA_BITS:
            return ()
        return _PSS_PREFERENCE if key_is_rsassa_pss else _RSAE_PREFERENCE
    return ()


def sign(
    scheme: int,
    private_key: CertificateIssuerPrivateKeyTypes,
    message: bytes,
    *,
    key_is_rsassa_pss: bool = False,
) -> bytes:
    """Sign `message` (see `certificate_verify_message`) with our own key.

    A scheme that does not fit the key is the caller's mistake, so it raises
    `LocalProtocolError`; `Credentials.choose_scheme` picks one that fits.
    """
    if scheme not in schemes_for_key(private_key, key_is_rsassa_pss=key_is_rsassa_pss):
        raise LocalProtocolError(f"key cannot sign with {enum_name(SignatureScheme, scheme)}")
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(message, _ECDSA_ALGORITHM[scheme])
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(message)
    if isinstance(private_key, rsa.RSAPrivateKey):
        pad, algorithm = _pss(_RSA_PSS[scheme][0])
        return private_key.sign(message, pad, algorithm)
    raise LocalProtocolError("unsupported key type")  # pragma: no cover - schemes_for_key is ()


def _wrong_key(detail: str) -> ProtocolError:
    return ProtocolError(Cause.signature_scheme_wrong_key, detail)


def verify(
    scheme: int,
    public_key: CertificatePublicKeyTypes,
    message: bytes,
    signature: bytes,
    *,
    key_is_rsassa_pss: bool = False,
) -> None:
    """Check a peer's CertificateVerify signature; raise `ProtocolError` if wrong.

    `illegal_parameter`: the scheme is not one for CertificateVerify, or does
    not fit the key (§4.4.3: it must be compatible with the certificate's
    key). `insufficient_security`: RSA below 2048 bits. `decrypt_error`:
    the signature does not verify (§4.4.3).
    """
    name = enum_name(SignatureScheme, scheme)
    if scheme not in CERTIFICATE_VERIFY_SCHEMES:
        raise ProtocolError(Cause.signature_scheme_forbidden, name)
    try:
        if scheme in _ECDSA:
            curve, _ = _ECDSA[scheme]
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                raise _wrong_key(f"{name} needs an EC key")
            if public_key.curve.name != curve:
                raise _wrong_key(f"{name} needs a {curve} key, not {public_key.curve.name}")
            public_key.verify(signature, message, _ECDSA_ALGORITHM[scheme])
        elif scheme == _S.ed25519:
            if not isinstance(public_key, ed25519.Ed25519PublicKey):
                raise _wrong_key(f"{name} needs an Ed25519 key")
            public_key.verify(signature, message)
        else:
            hash_type, needs_pss_key = _RSA_PSS[scheme]
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise _wrong_key(f"{name} needs an RSA key")
            # §4.2.3: rsae schemes for rsaEncryption keys, pss schemes for
            # id-RSASSA-PSS keys; neither kind may use the other's.
            if needs_pss_key != key_is_rsassa_pss:
                kind = "an id-RSASSA-PSS" if needs_pss_key else "an rsaEncryption"
                raise _wrong_key(f"{name} needs {kind} key")
            if public_key.key_size < MIN_RSA_BITS:
                raise ProtocolError(
                    Cause.peer_key_too_weak, f"RSA key of {public_key.key_size} bits"
                )
            pad, algorithm = _pss(hash_type)
            public_key.verify(signature, message, pad, algorithm)
    except (InvalidSignature, ValueError):
        # ValueError: a signature too malformed to even parse.
        raise ProtocolError(Cause.bad_signature, name) from None


# ---- TLS 1.2 (RFC 5246 §7.4.1.4.1, §4.7; RFC 8422 §5.10; RFC 8446 §4.2.3) ----

# In TLS 1.2 a SignatureAndHashAlgorithm names a hash and a signature kind,
# not a curve: ecdsa_secp256r1_sha256 is "ECDSA with SHA-256" on any curve
# (RFC 8446 §4.2.3 binds curves only for 1.3). RSA PKCS#1 v1.5 is allowed
# here with SHA-256/384/512; SHA-1, MD5 and SHA-224 never are.
_RSA_PKCS1: Mapping[int, _HashFactory] = MappingProxyType(
    {
        _S.rsa_pkcs1_sha256: hashes.SHA256,
        _S.rsa_pkcs1_sha384: hashes.SHA384,
        _S.rsa_pkcs1_sha512: hashes.SHA512,
    }
)
TLS12_SIGNATURE_SCHEMES: frozenset[int] = frozenset((*CERTIFICATE_VERIFY_SCHEMES, *_RSA_PKCS1))
_PKCS1_PREFERENCE = (_S.rsa_pkcs1_sha256, _S.rsa_pkcs1_sha384, _S.rsa_pkcs1_sha512)


def schemes_for_key_tls12(
    private_key: CertificateIssuerPrivateKeyTypes, *, key_is_rsassa_pss: bool = False
) -> tuple[SignatureScheme, ...]:
    """The TLS 1.2 ServerKeyExchange/CertificateVerify schemes this key can
    sign with, best first: TLS 1.3's, then PKCS#1 v1.5 for an rsaEncryption key."""
    schemes = schemes_for_key(private_key, key_is_rsassa_pss=key_is_rsassa_pss)
    if isinstance(private_key, rsa.RSAPrivateKey) and schemes and not key_is_rsassa_pss:
        return (*schemes, *_PKCS1_PREFERENCE)
    return schemes


def sign_tls12(
    scheme: int,
    private_key: CertificateIssuerPrivateKeyTypes,
    message: bytes,
    *,
    key_is_rsassa_pss: bool = False,
) -> bytes:
    """A TLS 1.2 digitally-signed value over `message` (RFC 5246 §4.7)."""
    if scheme in _RSA_PKCS1 and isinstance(private_key, rsa.RSAPrivateKey):
        if scheme not in schemes_for_key_tls12(private_key, key_is_rsassa_pss=key_is_rsassa_pss):
            raise LocalProtocolError(f"key cannot sign with {enum_name(SignatureScheme, scheme)}")
        return private_key.sign(message, padding.PKCS1v15(), _RSA_PKCS1[scheme]())
    return sign(scheme, private_key, message, key_is_rsassa_pss=key_is_rsassa_pss)


def verify_tls12(
    scheme: int,
    public_key: CertificatePublicKeyTypes,
    message: bytes,
    signature: bytes,
    *,
    key_is_rsassa_pss: bool = False,
) -> None:
    """Check a peer's TLS 1.2 signature (ServerKeyExchange or
    CertificateVerify); the same causes and alerts as `verify`."""
    name = enum_name(SignatureScheme, scheme)
    if scheme not in TLS12_SIGNATURE_SCHEMES:
        raise ProtocolError(Cause.signature_scheme_forbidden, name)
    if scheme in _ECDSA and isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in _ECDSA_BY_CURVE:
            raise _wrong_key(f"{name} with a {public_key.curve.name} key")
        try:
            public_key.verify(signature, message, _ECDSA_ALGORITHM[scheme])
        except (InvalidSignature, ValueError):
            raise ProtocolError(Cause.bad_signature, name) from None
        return
    if scheme not in _RSA_PKCS1:
        verify(scheme, public_key, message, signature, key_is_rsassa_pss=key_is_rsassa_pss)
        return
    if not isinstance(public_key, rsa.RSAPublicKey) or key_is_rsassa_pss:
        raise _wrong_key(f"{name} needs an rsaEncryption key")
    if public_key.key_size < MIN_RSA_BITS:
        raise ProtocolError(Cause.peer_key_too_weak, f"RSA key of {public_key.key_size} bits")
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), _RSA_PKCS1[scheme]())
    except (InvalidSignature, ValueError):
        raise ProtocolError(Cause.bad_signature, name) from None
