"""The per-certificate steps of RFC 5280 §6.1, one function each.

Each takes plain values and raises `CertificateRefused` naming the check.
`path.py` calls them as it grows a candidate path from the leaf upward, so
every step is applied to every certificate of the path that is returned.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime

from pinata.x509 import names
from pinata.x509.errors import CertificateRefused, Check
from pinata.x509.parse import ANY_EXTENDED_KEY_USAGE, ParsedCertificate


class Purpose(enum.Enum):
    """What the leaf must be good for: its extendedKeyUsage OID (RFC 5280 §4.2.1.12)."""

    CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
    SERVER_AUTH = "1.3.6.1.5.5.7.3.1"


def check_validity(certificate: ParsedCertificate, now: datetime) -> None:
    """§6.1.3 (a)(2); §4.1.2.5: both bounds are inclusive."""
    if now < certificate.not_before:
        raise CertificateRefused(Check.not_yet_valid, f"not valid before {certificate.not_before}")
    if now > certificate.not_after:
        raise CertificateRefused(Check.expired, f"expired at {certificate.not_after}")


def check_extended_key_usage(
    certificate: ParsedCertificate, purpose: Purpose, *, is_leaf: bool
) -> None:
    """§4.2.1.12, applied to every certificate that carries it (as pyca and
    the browsers do for CAs): the purpose must be listed. In a CA,
    anyExtendedKeyUsage allows it (it restricts nothing); in a leaf it does
    not count (CA/B BR §7.1.2.7.10 forbids it there; see `check_leaf`)."""
    usages = certificate.extended_key_usage
    if usages is None or purpose.value in usages:
        return
    if not is_leaf and ANY_EXTENDED_KEY_USAGE in usages:
        return
    listed = "anyExtendedKeyUsage only" if usages == {ANY_EXTENDED_KEY_USAGE} else "not listed"
    raise CertificateRefused(Check.eku, f"{purpose.name} {listed} in extendedKeyUsage")


# CA/B BR §7.1.2.7.10: purposes that MUST NOT appear in a subscriber
# certificate: anyExtendedKeyUsage, codeSigning, emailProtection,
# timeStamping, OCSPSigning, and the CT precertificate signer (RFC 6962 §3.1).
FORBIDDEN_LEAF_PURPOSES = {
    ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "1.3.6.1.4.1.11129.2.4.4": "precertificate signing",
}


def check_leaf(certificate: ParsedCertificate, purpose: Purpose) -> None:
    """The end entity: not a CA, able to sign the handshake, for this
    purpose, with the key identifier RFC 5280 demands of it."""
    # CA/B BR §7.1.2.7.8: a subscriber certificate is not a CA (RFC 5280
    # would allow it; an issuer key in leaf position is how the bounty is won
    # by someone who compromised a CA key's certificate but not ours).
    if certificate.is_ca:
        raise CertificateRefused(Check.basic_constraints, "leaf is a CA certificate (cA=TRUE)")
    # §4.2.1.1: keyIdentifier "MUST be included in all certificates generated
    # by conforming CAs" but a self-signed one, which a leaf never is here.
    if certificate.authority_key_identifier is None:
        raise CertificateRefused(Check.extension, "leaf without authorityKeyIdentifier")
    # §4.2.1.3: TLS 1.3 authenticates with CertificateVerify, a signature.
    usage = certificate.key_usage
    if usage is not None and "digital_signature" not in usage:
        raise CertificateRefused(Check.key_usage, "leaf keyUsage lacks digitalSignature")
    # CA/B BR §7.1.2.7.6: a subscriber's extKeyUsage MUST be present and not
    # critical; §7.1.2.7.10: it lists the purpose and none of the forbidden.
    if certificate.extended_key_usage is None:
        raise CertificateRefused(Check.eku, "leaf without extendedKeyUsage")
    check_extended_key_usage(certificate, purpose, is_leaf=True)
    if certificate.extended_key_usage_critical:
        raise CertificateRefused(Check.eku, "leaf extendedKeyUsage marked critical")
    for oid, name in FORBIDDEN_LEAF_PURPOSES.items():
        if oid in certificate.extended_key_usage:
            raise CertificateRefused(Check.eku, f"leaf extendedKeyUsage lists {name}")
    if purpose is Purpose.SERVER_AUTH:
        # CA/B BR §7.1.2.7.12: a server certificate names its hosts in a
        # subjectAltName (a client certificate may go without: RFC 5280
        # §4.2.1.6 with a non-empty subject).
        if not certificate.has_subject_alt_name:
            raise CertificateRefused(Check.name, "server leaf without subjectAltName")
        check_common_names(certificate)


def check_common_names(certificate: ParsedCertificate) -> None:
    """The one commonName rule (CA/B BR §7.1.4.3), for every kind of name:
    a server certificate's CN that names a host (names.names_a_host: an IP
    address in any spelling, or a domain name of two or more labels, A-label
    or U-label) is exactly one value, a canonical copy of one of its
    subjectAltNames. A dNSName is copied character for character (no case
    change; "P-Labels MUST NOT be converted to their Unicode
    representation"); an iPAddress is written in RFC 3986 §3.2.2 dotted
    decimal or RFC 5952 §4 text, as `ipaddress` prints it. A CN that names
    no host ("BTC Pinata server") is a label and is left alone. We never
    match a peer name against the CN (RFC 9525 §6.1): the rule exists so that
    no reader of the subject is shown a host the certificate does not vouch for."""
    hosts = [cn for cn in certificate.common_names if names.names_a_host(cn)]
    if not hosts:
        return
    if len(certificate.common_names) > 1:
        raise CertificateRefused(Check.common_name, "more than one commonName")
    written = hosts[0]
    if written in certificate.dns_names_as_written:
        return
    if any(written == str(address) for address in certificate.ip_addresses):
        return
    raise CertificateRefused(
        Check.common_name, "commonName is not a canonical copy of a subjectAltName"
    )


def check_issuer(certificate: ParsedCertificate, *, is_anchor: bool) -> None:
    """§6.1.4 (k): an issuer is a CA; (n): its keyUsage has keyCertSign."""
    if not certificate.is_ca:
        raise CertificateRefused(Check.basic_constraints, "issuer is not a CA (cA not TRUE)")
    # §4.2.1.3: a CA "MUST include" keyUsage, and keyCertSign to sign certificates.
    usage = certificate.key_usage
    if usage is None:
        raise CertificateRefused(Check.key_usage, "issuer without keyUsage")
    if "key_cert_sign" not in usage:
        raise CertificateRefused(Check.key_usage, "issuer keyUsage lacks keyCertSign")
    # §4.2.1.2: CA certificates MUST carry a subjectKeyIdentifier, the
    # anchor included (rfc5280::ski::root-missing-ski).
    if certificate.subject_key_identifier is None:
        kind = "anchor" if is_anchor else "intermediate"
        raise CertificateRefused(Check.extension, f"{kind} without subjectKeyIdentifier")
    if is_anchor:
        # CA/B BR §7.1.2.1.2: a root carries no extKeyUsage.
        if certificate.extended_key_usage is not None:
            raise CertificateRefused(Check.eku, "anchor carries extendedKeyUsage")
        # §4.2.1.1: only a self-signed certificate may omit the AKI.
        if not certificate.self_issued and certificate.authority_key_identifier is None:
            raise CertificateRefused(Check.extension, "cross-signed anchor without AKI")
        # CA/B BR §7.1.2.1.3: a root's AKI, if any, is its own key identifier.
        if certificate.authority_key_identifier_has_issuer:
            raise CertificateRefused(
                Check.extension, "anchor authorityKeyIdentifier names an issuer or serial"
            )
        aki = certificate.authority_key_identifier
        ski = certificate.subject_key_identifier
        if certificate.self_issued and aki is not None and aki != ski:
            raise CertificateRefused(
                Check.extension, "anchor authorityKeyIdentifier differs from SKI"
            )
    else:
        # §4.2.1.1: unless self-signed, an authorityKeyIdentifier.
        if certificate.authority_key_identifier is None:
            raise CertificateRefused(Check.extension, "intermediate without authorityKeyIdentifier")


def check_path_length(issuer: ParsedCertificate, below: Sequence[ParsedCertificate]) -> None:
    """§6.1.4 (l)(m): `below` is the path under `issuer`, leaf first. The
    leaf (§4.2.1.9 note) and self-issued certificates are not counted."""
    if issuer.path_length is None or len(below) < 2:  # no intermediate follows
        return
    intermediates = sum(1 for certificate in below[1:] if not certificate.self_issued)
    if intermediates > issuer.path_length:
        raise CertificateRefused(
            Check.path_length,
            f"pathLenConstraint {issuer.path_length} but {intermediates} intermediates follow",
        )


def check_name_constraints(issuer: ParsedCertificate, below: Sequence[ParsedCertificate]) -> None:
    """§6.1.3 (b)(c) with §6.1.4 (g): the issuer's subtrees bind every
    certificate under it, except self-issued ones that are not the leaf."""
    constraints = issuer.name_constraints
    if constraints is None:
        return
    for position, certificate in enumerate(below):
        if position > 0 and certificate.self_issued:
            continue
        reason = names.violation(certificate.constrained_names, constraints)
        if reason is not None:
            raise CertificateRefused(Check.name_constraints, reason)


def check_peer_name(certificate: ParsedCertificate, peer_name: str | names.IPAddress) -> None:
    """RFC 9525 §6.3: the reference identity among the subjectAltNames."""
    if names.matches_peer_name(peer_name, certificate.dns_names, certificate.ip_addresses):
        return
    if isinstance(peer_name, str):
        _, _, parent = peer_name.lower().rstrip(".").partition(".")
        if f"*.{parent}" in certificate.dns_names and "." not in parent:
            # `*.tld` would have matched: we never let it (no wildcard over
            # a single label, our stand-in for a Public Suffix List).
            raise CertificateRefused(
                Check.peer_name, f"{peer_name} matches only a wildcard over one label"
            )
    raise CertificateRefused(Check.peer_name, f"{peer_name} not among the subjectAltNames")
