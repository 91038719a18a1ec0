"""Certificate assembly: the extension profile, and signing by `cryptography`'s
builder or, for what it refuses to make, by hand.

The issuer's private key is only ever *used* here (to sign); nothing in this
module serialises a private key. The ceremony relies on that.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from bait_ca import der
from bait_ca.keys import PrivateKey, PublicKey, default_hash
from bait_ca.names import IPAddress as IPAddress

SignatureHash = Literal["default", "md5", "sha1", "sha256", "sha384", "sha512"]
AnyExtension = x509.Extension[x509.ExtensionType]

KEY_USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)

# A private-enterprise arc no one has registered for this, so no validator
# can know it: RFC 5280 §4.2 says to reject a certificate carrying it as critical.
UNKNOWN_CRITICAL_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.424242.1")

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "md5": hashes.MD5,
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# RFC 3279 §2.2, RFC 4055 §5, RFC 5758 §3.2, RFC 8410 §3.
_RSA_PKCS1_OIDS = {
    "md5": "1.2.840.113549.1.1.4",
    "sha1": "1.2.840.113549.1.1.5",
    "sha256": "1.2.840.113549.1.1.11",
    "sha384": "1.2.840.113549.1.1.12",
    "sha512": "1.2.840.113549.1.1.13",
}
_ECDSA_OIDS = {
    "sha1": "1.2.840.10045.4.1",
    "sha256": "1.2.840.10045.4.3.2",
    "sha384": "1.2.840.10045.4.3.3",
    "sha512": "1.2.840.10045.4.3.4",
}
_HASH_OIDS = {
    "sha1": "1.3.14.3.2.26",
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}
_RSASSA_PSS = "1.2.840.113549.1.1.10"
_MGF1 = "1.2.840.113549.1.1.8"
_ED25519 = "1.3.101.112"


def common_name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def as_name(name: x509.Name | str) -> x509.Name:
    return name if isinstance(name, x509.Name) else common_name(name)


def spki_der(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def profile_extensions(
    *,
    public_key: PublicKey,
    issuer_public_key: PublicKey | None,
    ca: bool | None,
    path_length: int | None = None,
    key_usage: Collection[str] | None = None,
    extended_key_usage: Sequence[x509.ObjectIdentifier] | None = None,
    san_dns: Sequence[str] = (),
    san_ip: Sequence[IPAddress] = (),
    name_constraints: x509.NameConstraints | None = None,
    key_identifiers: bool = True,
    unknown_critical_extension: bool = False,
    extra_extensions: Sequence[AnyExtension] = (),
) -> list[AnyExtension]:
    """The extensions of one certificate, with RFC 5280's criticality rules."""
    exts: list[AnyExtension] = []
    if ca is not None:
        # §4.2.1.9: critical in CA certificates; we mark it so in leaves too.
        exts.append(
            x509.Extension(
                ExtensionOID.BASIC_CONSTRAINTS,
                True,
                x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
            )
        )
    if key_usage is not None:
        unknown = set(key_usage) - set(KEY_USAGE_FLAGS)
        if unknown:
            raise ValueError(f"unknown keyUsage flags: {sorted(unknown)}")
        flags = {flag: flag in key_usage for flag in KEY_USAGE_FLAGS}
        # §4.2.1.3: "SHOULD mark this extension critical".
        exts.append(x509.Extension(ExtensionOID.KEY_USAGE, True, x509.KeyUsage(**flags)))
    if extended_key_usage is not None:
        exts.append(
            x509.Extension(
                ExtensionOID.EXTENDED_KEY_USAGE,
                False,
                x509.ExtendedKeyUsage(list(extended_key_usage)),
            )
        )
    if san_dns or san_ip:
        general: list[x509.GeneralName] = [x509.DNSName(d) for d in san_dns]
        general += [x509.IPAddress(ip) for ip in san_ip]
        exts.append(
            x509.Extension(
                ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
                False,
                x509.SubjectAlternativeName(general),
            )
        )
    if name_constraints is not None:
        # §4.2.1.10: "Conforming CAs MUST mark this extension as critical".
        exts.append(x509.Extension(ExtensionOID.NAME_CONSTRAINTS, True, name_constraints))
    if key_identifiers:
        exts.append(
            x509.Extension(
                ExtensionOID.SUBJECT_KEY_IDENTIFIER,
                False,
                x509.SubjectKeyIdentifier.from_public_key(public_key),
            )
        )
        if issuer_public_key is not None:
            exts.append(
                x509.Extension(
                    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
                    False,
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),
                )
            )
    if unknown_critical_extension:
        exts.append(
            x509.Extension(
                UNKNOWN_CRITICAL_OID,
                True,
                x509.UnrecognizedExtension(UNKNOWN_CRITICAL_OID, der.null()),
            )
        )
    exts.extend(extra_extensions)
    return exts


def _hash_name(issuer_key: PrivateKey, signature_hash: SignatureHash) -> str | None:
    if signature_hash != "default":
        if isinstance(issuer_key, ed25519.Ed25519PrivateKey):
            raise ValueError("Ed25519 signatures take no separate hash (RFC 8410 §3)")
        return signature_hash
    chosen = default_hash(issuer_key)
    return None if chosen is None else chosen.name


def _pss_parameters(hash_name: str) -> bytes:
    # RFC 4055 §3.1: hash, MGF1 over the same hash, salt as long as the hash.
    hash_id = der.sequence(der.object_identifier(_HASH_OIDS[hash_name]), der.null())
    salt = _HASHES[hash_name]().digest_size
    return der.sequence(
        der.explicit(0, hash_id),
        der.explicit(1, der.sequence(der.object_identifier(_MGF1), hash_id)),
        der.explicit(2, der.integer(salt)),
    )


def signature_algorithm_der(issuer_key: PrivateKey, hash_name: str | None, rsa_pss: bool) -> bytes:
    """The AlgorithmIdentifier for a signature by `issuer_key` over `hash_name`."""
    if isinstance(issuer_key, ed25519.Ed25519PrivateKey):
        return der.sequence(der.object_identifier(_ED25519))
    if hash_name is None:
        raise ValueError("a hash is needed")
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        if hash_name not in _ECDSA_OIDS:
            raise ValueError(f"ECDSA has no standard identifier with {hash_name}")
        # RFC 5758 §3.2: the parameters field MUST be absent.
        return der.sequence(der.object_identifier(_ECDSA_OIDS[hash_name]))
    if rsa_pss:
        if hash_name not in _HASH_OIDS or hash_name == "sha1":
            raise ValueError(f"RSASSA-PSS with {hash_name} is not offered")
        return der.sequence(der.object_identifier(_RSASSA_PSS), _pss_parameters(hash_name))
    # RFC 3279 §2.2.1, RFC 4055 §5: the parameters MUST be NULL.
    return der.sequence(der.object_identifier(_RSA_PKCS1_OIDS[hash_name]), der.null())


def sign_bytes(issuer_key: PrivateKey, data: bytes, hash_name: str | None, rsa_pss: bool) -> bytes:
    if isinstance(issuer_key, ed25519.Ed25519PrivateKey):
        return issuer_key.sign(data)
    if hash_name is None:
        raise ValueError("a hash is needed")
    algorithm = _HASHES[hash_name]()
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        # RFC 6979: deterministic ECDSA, so the toy CA can be rebuilt byte for byte.
        return issuer_key.sign(data, ec.ECDSA(algorithm, deterministic_signing=True))
    if rsa_pss:
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
        return issuer_key.sign(data, pss, algorithm)
    return issuer_key.sign(data, padding.PKCS1v15(), algorithm)


def _extension_der(ext: AnyExtension) -> bytes:
    parts = [der.object_identifier(ext.oid.dotted_string)]
    if ext.critical:  # DER leaves out a BOOLEAN equal to its DEFAULT FALSE.
        parts.append(der.boolean(True))
    parts.append(der.octet_string(ext.value.public_bytes()))
    return der.sequence(*parts)


def _other_algorithm(issuer_key: PrivateKey, outer: bytes) -> bytes:
    """A well-formed signature AlgorithmIdentifier that is not `outer`."""
    candidates = [
        der.sequence(der.object_identifier(_ECDSA_OIDS["sha384"])),
        der.sequence(der.object_identifier(_ECDSA_OIDS["sha256"])),
        der.sequence(der.object_identifier(_RSA_PKCS1_OIDS["sha512"]), der.null()),
    ]
    if isinstance(issuer_key, rsa.RSAPrivateKey):
        candidates.reverse()
    return next(c for c in candidates if c != outer)


def sign_certificate(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    public_key: PublicKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    extensions: Sequence[AnyExtension],
    signature_hash: SignatureHash = "default",
    rsa_pss: bool = False,
    version: int = 3,
    duplicate_extension: bool = False,
    mismatched_signature_algorithm: bool = False,
) -> x509.Certificate:
    """Sign a certificate; by hand when what is asked is something `cryptography` refuses."""
    hash_name = _hash_name(issuer_key, signature_hash)
    if rsa_pss and not isinstance(issuer_key, rsa.RSAPrivateKey):
        raise ValueError("RSA-PSS needs an RSA issuer key")
    by_hand = (
        hash_name in ("md5", "sha1")
        or version != 3
        or duplicate_extension
        or mismatched_signature_algorithm
    )
    if not by_hand:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
        )
        for ext in extensions:
            builder = builder.add_extension(ext.value, ext.critical)
        algorithm = None if hash_name is None else _HASHES[hash_name]()
        if isinstance(issuer_key, rsa.RSAPrivateKey):
            pad: padding.PSS | padding.PKCS1v15 = (
                padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
                if rsa_pss and algorithm is not None
                else padding.PKCS1v15()
            )
            return builder.sign(issuer_key, algorithm, rsa_padding=pad)  # type: ignore[arg-type]
        if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
            return builder.sign(issuer_key, algorithm, ecdsa_deterministic=True)  # type: ignore[arg-type]
        return builder.sign(issuer_key, None)

    if version not in (1, 3):
        # `cryptography` will not load a v2 certificate, so none is offered.
        raise ValueError("the forge builds X.509 versions 1 and 3")
    if duplicate_extension and not extensions:
        raise ValueError("a duplicate extension needs at least one extension")
    outer = signature_algorithm_der(issuer_key, hash_name, rsa_pss)
    inner = _other_algorithm(issuer_key, outer) if mismatched_signature_algorithm else outer
    ext_list = list(extensions)
    if duplicate_extension:
        ext_list.append(ext_list[0])
    fields: list[bytes] = []
    if version != 1:  # RFC 5280 §4.1: version DEFAULT v1, so DER omits v1.
        fields.append(der.explicit(0, der.integer(version - 1)))
    fields += [
        der.integer(serial),
        inner,
        issuer.public_bytes(),
        der.sequence(der.time(not_before), der.time(not_after)),
        subject.public_bytes(),
        spki_der(public_key),
    ]
    if ext_list:
        fields.append(der.explicit(3, der.sequence(*(_extension_der(e) for e in ext_list))))
    tbs = der.sequence(*fields)
    signature = sign_bytes(issuer_key, tbs, hash_name, rsa_pss)
    return x509.load_der_x509_certificate(der.sequence(tbs, outer, der.bit_string(signature)))
