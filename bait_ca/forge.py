"""Hostile certificates and chains, built the way an attacker would build them.

Test tooling (the validator's and the appliance's tests use it) and a
researcher's kit. `build_certificate` makes any one certificate; the named
builders below make one classic attack each and return a `ForgedChain`: the
certificate list as a peer would send it (DER, leaf first) and the leaf's key,
so the holder can also complete CertificateVerify.

Every named builder takes the CA to attack (`Issued`: certificate and key).
Builders that add intermediates say so: under an anchor with pathLenConstraint
0 (the piñata's) those chains fail for that reason too; pass an anchor from
`make_anchor()` (no path length limit) to test one defect at a time.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from bait_ca.build import (
    AnyExtension,
    IPAddress,
    SignatureHash,
    as_name,
    profile_extensions,
    sign_certificate,
)
from bait_ca.issued import Issued as Issued  # re-exported: one import for forge users
from bait_ca.keys import KeyType, PrivateKey, PublicKey, cached_key
from bait_ca.keys import generate_key as generate_key  # re-exported for tests

Role = Literal["client", "server"]

# A window that covers any day the project's tests run: fixed, so that a
# validator under test can be handed any `now` inside it.
NOT_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)

CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
LOCALHOST_IP = ipaddress.IPv4Address("127.0.0.1")


@dataclass(frozen=True)
class ForgedChain:
    """What a hostile peer sends (DER, leaf first) and the leaf's private key."""

    chain: tuple[bytes, ...]
    private_key: PrivateKey = field(repr=False)
    defect: str

    @property
    def leaf(self) -> bytes:
        return self.chain[0]

    @property
    def pem_chain(self) -> bytes:
        return b"".join(
            x509.load_der_x509_certificate(c).public_bytes(serialization.Encoding.PEM)
            for c in self.chain
        )


def _key_for(key_type: KeyType, label: str) -> PrivateKey:
    # RSA takes long to generate; elliptic-curve keys are fresh every time.
    if key_type.startswith("rsa"):
        return cached_key(key_type, label)
    return generate_key(key_type)


def build_certificate(
    *,
    subject: x509.Name | str,
    issuer: Issued | None = None,
    issuer_name: x509.Name | None = None,
    private_key: PrivateKey | None = None,
    public_key: PublicKey | None = None,
    key_type: KeyType = "p256",
    key_label: str | None = None,
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
    serial: int | None = None,
    ca: bool | None = False,
    path_length: int | None = None,
    key_usage: Collection[str] | None = None,
    extended_key_usage: Sequence[x509.ObjectIdentifier] | None = None,
    san_dns: Sequence[str] = (),
    san_ip: Sequence[IPAddress] = (),
    name_constraints: x509.NameConstraints | None = None,
    key_identifiers: bool = True,
    extra_extensions: Sequence[AnyExtension] = (),
    duplicate_extension: bool = False,
    unknown_critical_extension: bool = False,
    version: int = 3,
    signature_hash: SignatureHash = "default",
    mismatched_signature_algorithm: bool = False,
    rsa_pss: bool = False,
) -> Issued:
    """One certificate, as ordinary or as broken as asked.

    `issuer` None makes it self-signed. `private_key` reuses a key;
    `public_key` certifies someone else's key (the result's `private_key` is
    then a fresh, unrelated key: holding the certified key is the caller's
    business). `issuer_name` overrides the issuer field (for forged issuers).
    `ca` None leaves out basicConstraints; `key_usage` / `extended_key_usage`
    None leave those out.
    """
    name = as_name(subject)
    key = private_key or _key_for(key_type, key_label or name.rfc4514_string())
    certified = public_key or key.public_key()
    signer_key = issuer.private_key if issuer else key
    signer_name = issuer_name or (issuer.certificate.subject if issuer else name)
    extensions = profile_extensions(
        public_key=certified,
        issuer_public_key=signer_key.public_key(),
        ca=ca,
        path_length=path_length,
        key_usage=key_usage,
        extended_key_usage=extended_key_usage,
        san_dns=san_dns,
        san_ip=san_ip,
        name_constraints=name_constraints,
        key_identifiers=key_identifiers,
        unknown_critical_extension=unknown_critical_extension,
        extra_extensions=extra_extensions,
    )
    certificate = sign_certificate(
        subject=name,
        issuer=signer_name,
        issuer_key=signer_key,
        public_key=certified,
        serial=serial if serial is not None else x509.random_serial_number(),
        not_before=not_before,
        not_after=not_after,
        extensions=extensions,
        signature_hash=signature_hash,
        rsa_pss=rsa_pss,
        version=version,
        duplicate_extension=duplicate_extension,
        mismatched_signature_algorithm=mismatched_signature_algorithm,
    )
    return Issued(certificate, key)


# -- well-formed building blocks ---------------------------------------------


def make_anchor(
    name: x509.Name | str = "Pinata Forge Anchor",
    *,
    key_type: KeyType = "p256",
    path_length: int | None = None,
    private_key: PrivateKey | None = None,
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
    rsa_pss: bool = False,
) -> Issued:
    """A self-signed CA: cA=TRUE, keyUsage keyCertSign+cRLSign (RFC 5280 §4.2.1.3, §4.2.1.9)."""
    return build_certificate(
        subject=name,
        private_key=private_key,
        key_type=key_type,
        ca=True,
        path_length=path_length,
        key_usage={"key_cert_sign", "crl_sign"},
        not_before=not_before,
        not_after=not_after,
        rsa_pss=rsa_pss,
    )


def role_profile(role: Role) -> dict[str, Any]:
    """keyUsage, EKU and names of a leaf: TLS 1.3 signs with every leaf key (§4.4.3)."""
    if role == "server":
        return {
            "key_usage": {"digital_signature"},
            "extended_key_usage": [SERVER_AUTH],
            "san_dns": ("localhost",),
            "san_ip": (LOCALHOST_IP,),
        }
    return {"key_usage": {"digital_signature"}, "extended_key_usage": [CLIENT_AUTH]}


def issue_leaf(
    issuer: Issued,
    role: Role = "client",
    /,
    *,
    name: x509.Name | str | None = None,
    **overrides: Any,
) -> Issued:
    """A well-formed end-entity certificate for `role`, any field overridable."""
    options: dict[str, Any] = {"ca": False, **role_profile(role), **overrides}
    return build_certificate(subject=name or f"forged {role}", issuer=issuer, **options)


def issue_intermediate(
    issuer: Issued, name: x509.Name | str = "Forge Intermediate", /, **overrides: Any
) -> Issued:
    """A well-formed intermediate CA (no path length limit unless overridden)."""
    options: dict[str, Any] = {"ca": True, "key_usage": {"key_cert_sign", "crl_sign"}, **overrides}
    return build_certificate(subject=name, issuer=issuer, **options)


def chain_of(*certificates: Issued) -> tuple[bytes, ...]:
    return tuple(c.der for c in certificates)


def good_chain(ca: Issued, role: Role = "client", /, **overrides: Any) -> ForgedChain:
    """The control: a leaf issued directly by `ca`, which must be accepted."""
    leaf = issue_leaf(ca, role, **overrides)
    return ForgedChain(chain_of(leaf), leaf.private_key, "none: a well-formed leaf")


def _leaf(issuer: Issued, role: Role, defect: str, /, **overrides: Any) -> ForgedChain:
    leaf = issue_leaf(issuer, role, **overrides)
    return ForgedChain(chain_of(leaf), leaf.private_key, defect)


def _key_identifier(certificate: x509.Certificate) -> bytes | None:
    try:
        ext = certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    return value.digest if isinstance(value, x509.SubjectKeyIdentifier) else None


# -- the catalogue -----------------------------------------------------------


def rogue_ca_same_subject(anchor: Issued, role: Role = "client") -> ForgedChain:
    """A CA with the anchor's exact subject (and key identifier) but another key."""
    ski = _key_identifier(anchor.certificate)
    copied: list[AnyExtension] = []
    if ski is not None:
        copied.append(
            x509.Extension(
                ExtensionOID.SUBJECT_KEY_IDENTIFIER, False, x509.SubjectKeyIdentifier(ski)
            )
        )
    rogue = build_certificate(
        subject=anchor.subject,
        key_label="rogue-ca",
        ca=True,
        key_usage={"key_cert_sign", "crl_sign"},
        key_identifiers=False,
        extra_extensions=copied,
    )
    leaf = issue_leaf(rogue, role)
    return ForgedChain(
        chain_of(leaf, rogue), leaf.private_key, "issued by a rogue CA named as the anchor"
    )


def anchor_key_under_new_name(anchor: Issued, role: Role = "client") -> ForgedChain:
    """The anchor's own key, self-certified under another name, issuing a leaf:
    only name chaining (RFC 5280 §6.1.3 (a)(4)) tells it from the anchor."""
    impostor = make_anchor("Not The Pinata Anchor", private_key=anchor.private_key)
    leaf = issue_leaf(impostor, role)
    return ForgedChain(chain_of(leaf, impostor), leaf.private_key, "anchor key under another name")


def self_signed_leaf(role: Role = "client") -> ForgedChain:
    leaf = build_certificate(subject=f"self-signed {role}", ca=False, **role_profile(role))
    return ForgedChain(chain_of(leaf), leaf.private_key, "self-signed leaf")


def forged_signature_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    """Names `ca` as issuer, but signed with some other key."""
    stranger = make_anchor("stranger")
    leaf = issue_leaf(stranger, role, issuer_name=ca.subject)
    return ForgedChain(
        chain_of(leaf), leaf.private_key, "signature by a key that is not the issuer's"
    )


def corrupted_signature_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    """A genuine leaf with its last signature byte flipped."""
    leaf = issue_leaf(ca, role)
    raw = bytearray(leaf.der)
    raw[-1] ^= 0x01
    return ForgedChain((bytes(raw),), leaf.private_key, "corrupted signature")


def expired_leaf(ca: Issued, role: Role = "client", *, now: datetime | None = None) -> ForgedChain:
    end = (now - timedelta(days=1)) if now else datetime(2001, 1, 1, tzinfo=UTC)
    return _leaf(ca, role, "expired", not_before=end - timedelta(days=365), not_after=end)


def not_yet_valid_leaf(
    ca: Issued, role: Role = "client", *, now: datetime | None = None
) -> ForgedChain:
    start = (now + timedelta(days=1)) if now else datetime(2098, 1, 1, tzinfo=UTC)
    return _leaf(ca, role, "not yet valid", not_before=start, not_after=NOT_AFTER)


def wrong_eku_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    """A leaf whose only EKU is the other side's (serverAuth for a client, and back)."""
    other = SERVER_AUTH if role == "client" else CLIENT_AUTH
    return _leaf(ca, role, "wrong extendedKeyUsage", extended_key_usage=[other])


def missing_eku_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    """No EKU at all: RFC 5280 §4.2.1.12 allows it; whether to is policy."""
    return _leaf(ca, role, "no extendedKeyUsage", extended_key_usage=None)


def no_digital_signature_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    """keyUsage without digitalSignature: the key may not sign CertificateVerify."""
    return _leaf(ca, role, "keyUsage lacks digitalSignature", key_usage={"key_encipherment"})


def ca_certificate_as_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    """An end-entity slot holding a certificate with cA=TRUE."""
    return _leaf(
        ca,
        role,
        "leaf is a CA certificate",
        ca=True,
        key_usage={"digital_signature", "key_cert_sign"},
    )


def unknown_critical_extension_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    return _leaf(ca, role, "unknown critical extension", unknown_critical_extension=True)


def duplicate_extension_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    """RFC 5280 §4.2: "A certificate MUST NOT include more than one instance"."""
    return _leaf(ca, role, "duplicate extension", duplicate_extension=True)


def sha1_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    return _leaf(ca, role, "SHA-1 signature", signature_hash="sha1")


def md5_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    """MD5 exists only as md5WithRSAEncryption (RFC 3279 §2.2.1): `ca` must hold RSA."""
    if not isinstance(ca.private_key, rsa.RSAPrivateKey):
        raise ValueError("an MD5 signature needs an RSA issuer: make_anchor(key_type='rsa2048')")
    return _leaf(ca, role, "MD5 signature", signature_hash="md5")


def rsa1024_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    return _leaf(ca, role, "1024-bit RSA key", key_type="rsa1024", key_label="rsa1024 leaf")


def v1_with_extensions_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    """Version 1 may not carry extensions (RFC 5280 §4.1.2.1, §4.1.2.9)."""
    return _leaf(ca, role, "version 1 with extensions", version=1)


def mismatched_signature_algorithm_leaf(ca: Issued, role: Role = "client") -> ForgedChain:
    """TBSCertificate.signature differs from Certificate.signatureAlgorithm (§4.1.1.2)."""
    return _leaf(
        ca, role, "inner and outer signature algorithms differ", mismatched_signature_algorithm=True
    )


def ca_false_intermediate_chain(ca: Issued, role: Role = "client") -> ForgedChain:
    """An intermediate with cA=FALSE (but keyCertSign) that issues the leaf."""
    middle = issue_intermediate(ca, "CA:FALSE intermediate", ca=False)
    leaf = issue_leaf(middle, role)
    return ForgedChain(chain_of(leaf, middle), leaf.private_key, "intermediate has cA=FALSE")


def no_basic_constraints_intermediate_chain(ca: Issued, role: Role = "client") -> ForgedChain:
    """An intermediate with no basicConstraints at all (RFC 5280 §6.1.4 (k))."""
    middle = issue_intermediate(ca, "bare intermediate", ca=None)
    leaf = issue_leaf(middle, role)
    return ForgedChain(
        chain_of(leaf, middle), leaf.private_key, "intermediate lacks basicConstraints"
    )


def no_key_cert_sign_intermediate_chain(ca: Issued, role: Role = "client") -> ForgedChain:
    """A CA intermediate whose keyUsage omits keyCertSign (RFC 5280 §6.1.4 (n))."""
    middle = issue_intermediate(ca, "no keyCertSign intermediate", key_usage={"crl_sign"})
    leaf = issue_leaf(middle, role)
    return ForgedChain(chain_of(leaf, middle), leaf.private_key, "intermediate lacks keyCertSign")


def path_len_violation_chain(ca: Issued, role: Role = "client") -> ForgedChain:
    """ca → first (pathLen 0) → second (a CA) → leaf: `first` allows no CA below it."""
    first = issue_intermediate(ca, "pathLen 0 intermediate", path_length=0)
    second = issue_intermediate(first, "forbidden intermediate")
    leaf = issue_leaf(second, role)
    return ForgedChain(
        chain_of(leaf, second, first), leaf.private_key, "pathLenConstraint exceeded"
    )


def v1_intermediate_chain(ca: Issued, role: Role = "client") -> ForgedChain:
    """A version-1 certificate (no basicConstraints possible) acting as a CA."""
    middle = build_certificate(
        subject="v1 intermediate", issuer=ca, ca=None, version=1, key_identifiers=False
    )
    leaf = issue_leaf(middle, role)
    return ForgedChain(chain_of(leaf, middle), leaf.private_key, "version-1 intermediate")


def name_constraints_violation_chain(ca: Issued) -> ForgedChain:
    """An intermediate permitted only example.com issues a server leaf for localhost."""
    constraints = x509.NameConstraints(
        permitted_subtrees=[x509.DNSName("example.com")], excluded_subtrees=None
    )
    middle = issue_intermediate(ca, "example.com only", name_constraints=constraints)
    leaf = issue_leaf(middle, "server")
    return ForgedChain(chain_of(leaf, middle), leaf.private_key, "name constraints violated")


def long_chain(ca: Issued, n: int = 100, role: Role = "client") -> ForgedChain:
    """A leaf under `n` well-formed intermediates: tests the depth bound."""
    issuer = ca
    middles: list[Issued] = []
    for i in range(n):
        issuer = issue_intermediate(issuer, f"intermediate {i + 1} of {n}")
        middles.append(issuer)
    leaf = issue_leaf(issuer, role)
    return ForgedChain(chain_of(leaf, *reversed(middles)), leaf.private_key, f"{n} intermediates")


@functools.lru_cache(maxsize=4)
def _junk_key() -> ec.EllipticCurvePrivateKey:
    key = generate_key("p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def junk_bag(ca: Issued, n: int = 1000, role: Role = "client") -> ForgedChain:
    """A good leaf followed by `n` CA certificates that all bear `ca`'s subject
    but none its key: a path builder that tries every candidate chases them all."""
    leaf = issue_leaf(ca, role)
    junk_key = _junk_key()
    junk = [
        build_certificate(
            subject=ca.subject,
            private_key=junk_key,
            ca=True,
            key_usage={"key_cert_sign"},
            key_identifiers=False,
            serial=i + 1,
        )
        for i in range(n)
    ]
    return ForgedChain(
        chain_of(leaf, *junk), leaf.private_key, f"{n} look-alike CAs after the leaf"
    )


def with_chain(forged: ForgedChain, *extra: bytes) -> ForgedChain:
    """The same forgery with more certificates appended (as a peer may)."""
    return replace(forged, chain=forged.chain + extra)


# Builders taking only the CA, as an attacker would send them to a piñata whose
# anchor is `ca`. Every one must be refused, except `junk_bag`: a good leaf
# drowned in look-alike CAs, which must be accepted, and quickly.
# (md5_leaf needs an RSA CA and is left out.)
HOSTILE: dict[str, Callable[[Issued], ForgedChain]] = {
    "rogue_ca_same_subject": rogue_ca_same_subject,
    "anchor_key_under_new_name": anchor_key_under_new_name,
    "self_signed_leaf": lambda ca: self_signed_leaf(),
    "forged_signature_leaf": forged_signature_leaf,
    "corrupted_signature_leaf": corrupted_signature_leaf,
    "expired_leaf": expired_leaf,
    "not_yet_valid_leaf": not_yet_valid_leaf,
    "wrong_eku_leaf": wrong_eku_leaf,
    "no_digital_signature_leaf": no_digital_signature_leaf,
    "ca_certificate_as_leaf": ca_certificate_as_leaf,
    "unknown_critical_extension_leaf": unknown_critical_extension_leaf,
    "duplicate_extension_leaf": duplicate_extension_leaf,
    "sha1_leaf": sha1_leaf,
    "rsa1024_leaf": rsa1024_leaf,
    "v1_with_extensions_leaf": v1_with_extensions_leaf,
    "mismatched_signature_algorithm_leaf": mismatched_signature_algorithm_leaf,
    "ca_false_intermediate_chain": ca_false_intermediate_chain,
    "no_basic_constraints_intermediate_chain": no_basic_constraints_intermediate_chain,
    "no_key_cert_sign_intermediate_chain": no_key_cert_sign_intermediate_chain,
    "path_len_violation_chain": path_len_violation_chain,
    "v1_intermediate_chain": v1_intermediate_chain,
    "long_chain": lambda ca: long_chain(ca, 20),
    "junk_bag": lambda ca: junk_bag(ca, 50),
}
