"""DER in, a small frozen record of what the checks need out.

`cryptography` decodes; this module lifts the result into plain values and
applies the checks that depend on the certificate alone (its profile, RFC
5280 §4), so that path building never looks at a certificate twice. Any
failure, whether `cryptography` cannot decode something or the profile is
broken, is raised as `CertificateRefused`; no other exception escapes.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from pinata.x509 import der, names
from pinata.x509.errors import CertificateRefused, Check
from pinata.x509.signature import SignatureAlgorithm, check_public_key, signature_algorithm

# A certificate larger than this is not one we were sent in good faith.
MAX_CERTIFICATE_SIZE = 32 * 1024
# Name-constraint work is (subtrees x names) per pair of certificates; these
# keep it small however the 32 KiB are spent (limbo's nc-dos cases).
MAX_SUBJECT_ALT_NAMES = 256
MAX_SUBTREES = 64

# SubjectPublicKeyInfo algorithms, by exact DER (RFC 3279 §2.3.1 rsaEncryption
# with NULL; RFC 5480 §2.1.1 namedCurve only, so explicit curves are refused;
# RFC 8410 §3 Ed25519). id-RSASSA-PSS keys are matched by OID (RFC 4055 §3.1).
_KEY_ALGORITHMS = {
    bytes.fromhex("300d06092a864886f70d0101010500"),
    bytes.fromhex("301306072a8648ce3d020106082a8648ce3d030107"),
    bytes.fromhex("301006072a8648ce3d020106052b81040022"),
    bytes.fromhex("301006072a8648ce3d020106052b81040023"),
    bytes.fromhex("300506032b6570"),
}
_RSASSA_PSS_OID = bytes.fromhex("06092a864886f70d01010a")

# Extensions we process, and may therefore be critical (RFC 5280 §4.2: "MUST
# recognize"). certificatePolicies, policyMappings and inhibitAnyPolicy are
# recognised without building a policy tree: with initial-explicit-policy
# unset and no policyConstraints (which we refuse), the tree can never make
# a path fail (§6.1.5 (a): explicit_policy stays above 0), so skipping it
# changes no outcome.
_MAY_BE_CRITICAL = {
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.NAME_CONSTRAINTS,
    ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.POLICY_MAPPINGS,
    ExtensionOID.INHIBIT_ANY_POLICY,
}
# RFC 5280 §4.2.1.1, §4.2.1.2, §4.2.2.1: conforming CAs MUST mark these non-critical.
_MUST_BE_NON_CRITICAL = {
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
}

EMAIL_ADDRESS = NameOID.EMAIL_ADDRESS.dotted_string
COMMON_NAME = NameOID.COMMON_NAME.dotted_string
ANY_EXTENDED_KEY_USAGE = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string


@dataclass(frozen=True, slots=True)
class ParsedCertificate:
    der: bytes
    tbs: bytes
    signature: bytes
    algorithm: SignatureAlgorithm
    subject_name: x509.Name
    subject: names.NormalizedName
    issuer: names.NormalizedName
    # Exact subjectPublicKeyInfo bytes: "the same key" means these are equal.
    spki: bytes
    subject_der: bytes
    public_key: CertificatePublicKeyTypes
    key_is_rsassa_pss: bool
    not_before: datetime
    not_after: datetime
    is_ca: bool
    path_length: int | None
    # keyUsage bits we look at; None when the extension is absent.
    key_usage: frozenset[str] | None
    # extendedKeyUsage as dotted OIDs; None when absent.
    extended_key_usage: frozenset[str] | None
    extended_key_usage_critical: bool
    dns_names: tuple[str, ...]  # lower-cased
    dns_names_as_written: tuple[str, ...]
    ip_addresses: tuple[names.IPAddress, ...]
    has_subject_alt_name: bool
    common_names: tuple[str, ...]
    constrained_names: names.ConstrainedNames
    name_constraints: names.NameConstraints | None
    subject_key_identifier: bytes | None
    authority_key_identifier: bytes | None
    authority_key_identifier_has_issuer: bool

    @property
    def self_issued(self) -> bool:
        """RFC 5280 §6.1: subject and issuer match (§7.1 comparison)."""
        return self.subject == self.issuer


def normalize_name(name: x509.Name) -> names.NormalizedName:
    return tuple(
        frozenset(
            (attribute.oid.dotted_string, names.normalize_value(attribute.value))
            for attribute in rdn
        )
        for rdn in name.rdns
    )


def parse_certificate(data: bytes, *, anchor: bool = False) -> ParsedCertificate:
    """`anchor` skips the serial-number check: RFC 5280 §6.1.1 (d) makes an
    anchor a name and a key, and old roots with serial 0 exist."""
    if len(data) > MAX_CERTIFICATE_SIZE:
        raise CertificateRefused(Check.too_large, f"certificate of {len(data)} bytes")
    try:
        frame = der.certificate_frame(data)
        key_algorithm = der.algorithm_identifier(frame.subject_public_key_info)
    except der.DerError as error:
        raise CertificateRefused(Check.malformed, f"not a DER certificate: {error}") from None
    algorithm = signature_algorithm(frame.tbs_signature, frame.signature_algorithm)
    try:
        certificate = x509.load_der_x509_certificate(data)
        return _lift(data, frame, certificate, algorithm, key_algorithm, anchor)
    except CertificateRefused as refused:
        with contextlib.suppress(Exception):
            refused.subject = normalize_name(certificate.subject)
        raise
    # The one place `cryptography`'s decoding exceptions are caught: each
    # becomes a refusal of this certificate (ValueError, TypeError,
    # DuplicateExtension, UnsupportedGeneralNameType, UnsupportedAlgorithm...).
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"[:200]
        if isinstance(error, x509.DuplicateExtension):
            # RFC 5280 §4.2: "MUST NOT include more than one instance".
            raise CertificateRefused(Check.extension, reason) from None
        raise CertificateRefused(Check.malformed, reason) from None


def _lift(
    data: bytes,
    frame: der.CertificateFrame,
    certificate: x509.Certificate,
    algorithm: SignatureAlgorithm,
    key_algorithm: bytes,
    anchor: bool,
) -> ParsedCertificate:
    # CA/B Forum BR §7.1.1 and the issue: version 3 only (a v1 certificate
    # cannot carry basicConstraints, so could only ever be a leaf).
    if certificate.version is not x509.Version.v3:
        raise CertificateRefused(Check.version, "not an X.509 version 3 certificate")
    serial = certificate.serial_number
    # RFC 5280 §4.1.2.2: a positive integer of at most 20 octets.
    if not anchor and (serial <= 0 or serial.bit_length() // 8 + 1 > 20):
        raise CertificateRefused(Check.serial, "serial number not positive or over 20 octets")

    if key_algorithm in _KEY_ALGORITHMS:
        key_is_rsassa_pss = False
    elif key_algorithm[2 : 2 + len(_RSASSA_PSS_OID)] == _RSASSA_PSS_OID:
        key_is_rsassa_pss = True
    else:
        raise CertificateRefused(Check.public_key, "public key algorithm or curve not accepted")
    public_key = certificate.public_key()
    check_public_key(public_key)

    subject, common_names, subject_emails = _subject_attributes(certificate.subject)
    issuer = normalize_name(certificate.issuer)
    # RFC 5280 §4.1.2.4: the issuer field MUST contain a non-empty DN.
    if not issuer:
        raise CertificateRefused(Check.name, "empty issuer name")

    is_ca = False
    path_length: int | None = None
    key_usage: frozenset[str] | None = None
    eku: frozenset[str] | None = None
    eku_critical = False
    san: x509.SubjectAlternativeName | None = None
    san_critical = False
    name_constraints: names.NameConstraints | None = None
    ski: bytes | None = None
    aki: bytes | None = None
    aki_has_issuer = False
    for extension in certificate.extensions:
        oid = extension.oid
        if extension.critical and oid not in _MAY_BE_CRITICAL:
            if oid in _MUST_BE_NON_CRITICAL:
                raise CertificateRefused(Check.extension, f"{oid.dotted_string} marked critical")
            raise CertificateRefused(
                Check.unknown_critical_extension, f"unknown critical extension {oid.dotted_string}"
            )
        value = extension.value
        kind = type(value)
        if kind is x509.BasicConstraints:
            is_ca = value.ca
            path_length = value.path_length
        elif kind is x509.KeyUsage:
            key_usage = frozenset(
                bit
                for bit, on in (
                    ("digital_signature", value.digital_signature),
                    ("key_cert_sign", value.key_cert_sign),
                )
                if on
            )
        elif kind is x509.ExtendedKeyUsage:
            eku = frozenset(usage.dotted_string for usage in value)
            eku_critical = extension.critical
        elif kind is x509.SubjectAlternativeName:
            san = value
            san_critical = extension.critical
        elif kind is x509.NameConstraints:
            # RFC 5280 §4.2.1.10: "Conforming CAs MUST mark this extension as
            # critical"; we refuse rather than guess what a non-critical one means.
            if not extension.critical:
                raise CertificateRefused(Check.name_constraints, "nameConstraints not critical")
            name_constraints = _name_constraints(value)
        elif kind is x509.SubjectKeyIdentifier:
            ski = value.digest
        elif kind is x509.AuthorityKeyIdentifier:
            # RFC 5280 §4.2.1.1: keyIdentifier MUST be present.
            if value.key_identifier is None:
                raise CertificateRefused(
                    Check.extension, "authorityKeyIdentifier without keyIdentifier"
                )
            aki = value.key_identifier
            aki_has_issuer = (
                value.authority_cert_issuer is not None
                or value.authority_cert_serial_number is not None
            )
        elif kind is x509.PolicyConstraints:
            # We build no policy tree, so cannot honour requireExplicitPolicy.
            raise CertificateRefused(Check.unsupported_extension, "policyConstraints not processed")

    # RFC 5280 §4.2.1.3: keyCertSign only with cA; §4.2.1.10: nameConstraints
    # only in CA certificates; §4.1.2.6: a CA's subject is non-empty.
    if key_usage is not None and "key_cert_sign" in key_usage and not is_ca:
        raise CertificateRefused(Check.key_usage, "keyCertSign without basicConstraints cA")
    if name_constraints is not None and not is_ca:
        raise CertificateRefused(Check.name_constraints, "nameConstraints in a non-CA certificate")
    if is_ca and not subject:
        raise CertificateRefused(Check.name, "CA certificate with an empty subject")
    # RFC 5280 §4.2.1.6: critical only when the subject is empty (CA/B BR
    # §7.1.2.7.12 makes the SHOULD a MUST).
    if san_critical and subject:
        raise CertificateRefused(
            Check.extension, "critical subjectAltName with a non-empty subject"
        )

    dns_names, ip_addresses, constrained = _subject_names(subject, subject_emails, san)
    return ParsedCertificate(
        der=data,
        tbs=certificate.tbs_certificate_bytes,
        signature=certificate.signature,
        algorithm=algorithm,
        subject_name=certificate.subject,
        subject=subject,
        issuer=issuer,
        spki=frame.subject_public_key_info,
        subject_der=frame.subject,
        public_key=public_key,
        key_is_rsassa_pss=key_is_rsassa_pss,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        is_ca=is_ca,
        path_length=path_length,
        key_usage=key_usage,
        extended_key_usage=eku,
        extended_key_usage_critical=eku_critical,
        dns_names=dns_names,
        dns_names_as_written=tuple(g.value for g in san or () if type(g) is x509.DNSName),
        ip_addresses=ip_addresses,
        has_subject_alt_name=san is not None,
        common_names=tuple(common_names),
        constrained_names=constrained,
        name_constraints=name_constraints,
        subject_key_identifier=ski,
        authority_key_identifier=aki,
        authority_key_identifier_has_issuer=aki_has_issuer,
    )


def _subject_attributes(name: x509.Name) -> tuple[names.NormalizedName, list[str], list[str]]:
    """One pass over the subject: its normalized form, CNs and emailAddresses."""
    rdns = []
    common_names: list[str] = []
    emails: list[str] = []
    for rdn in name.rdns:
        attributes = []
        for attribute in rdn:
            oid = attribute.oid.dotted_string
            value = attribute.value
            attributes.append((oid, names.normalize_value(value)))
            if oid == COMMON_NAME:
                common_names.append(str(value))
            elif oid == EMAIL_ADDRESS:
                emails.append(str(value))
        rdns.append(frozenset(attributes))
    return tuple(rdns), common_names, emails


def _subject_names(
    subject: names.NormalizedName,
    emails: list[str],
    san: x509.SubjectAlternativeName | None,
) -> tuple[tuple[str, ...], tuple[names.IPAddress, ...], names.ConstrainedNames]:
    dns: list[str] = []
    ips: list[names.IPAddress] = []
    directories = [subject] if subject else []
    other: set[str] = set()
    if san is not None and len(san) > MAX_SUBJECT_ALT_NAMES:
        raise CertificateRefused(Check.name, f"more than {MAX_SUBJECT_ALT_NAMES} subjectAltNames")
    for general_name in san or ():
        if type(general_name) is x509.DNSName:
            # RFC 5280 §4.2.1.6: preferred name syntax, ASCII (IDNs as A-labels).
            value = general_name.value.lower()
            if not names.is_dns_name(value, wildcard=True):
                raise CertificateRefused(Check.name, "subjectAltName dNSName not a valid name")
            dns.append(value)
        elif type(general_name) is x509.IPAddress:
            address = general_name.value
            # RFC 5280 §4.2.1.6: 4 or 16 octets, an address (not a network).
            if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
                raise CertificateRefused(Check.name, "subjectAltName iPAddress is not an address")
            ips.append(address)
        elif type(general_name) is x509.RFC822Name:
            if not names.is_email(general_name.value):
                raise CertificateRefused(Check.name, "subjectAltName rfc822Name not a mailbox")
            emails.append(general_name.value)
        elif type(general_name) is x509.DirectoryName:
            directories.append(normalize_name(general_name.value))
        else:
            other.add(type(general_name).__name__)
    for email in emails:
        if not names.is_email(email):
            raise CertificateRefused(Check.name, "emailAddress attribute not a mailbox")
    constrained = names.ConstrainedNames(
        directory=tuple(directories),
        dns=tuple(dns),
        ip=tuple(ips),
        email=tuple(emails),
        other_forms=frozenset(other),
    )
    return tuple(dns), tuple(ips), constrained


def _subtrees(general_names: list[x509.GeneralName] | None) -> names.Subtrees | None:
    if general_names is None:
        return None
    dns: list[str] = []
    ips: list[names.IPNetwork] = []
    emails: list[str] = []
    directories: list[names.NormalizedName] = []
    other: set[str] = set()
    for general_name in general_names:
        if type(general_name) is x509.DNSName:
            value = general_name.value.lower()
            # A subtree is a plain name: no wildcard, no leading period.
            if value and not names.is_dns_name(value, wildcard=False):
                raise CertificateRefused(
                    Check.name_constraints, f"invalid dNSName subtree {value!r}"
                )
            dns.append(value)
        elif type(general_name) is x509.IPAddress:
            network = general_name.value
            if not isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network):
                raise CertificateRefused(
                    Check.name_constraints, "iPAddress subtree is not a network"
                )
            ips.append(network)
        elif type(general_name) is x509.RFC822Name:
            value = general_name.value
            host = value[1:] if value.startswith(".") else value
            if not (names.is_email(value) or names.is_dns_name(host.lower(), wildcard=False)):
                raise CertificateRefused(
                    Check.name_constraints, f"invalid rfc822Name subtree {value!r}"
                )
            emails.append(value)
        elif type(general_name) is x509.DirectoryName:
            directories.append(normalize_name(general_name.value))
        else:
            other.add(type(general_name).__name__)
    return names.Subtrees(
        tuple(dns), tuple(ips), tuple(emails), tuple(directories), frozenset(other)
    )


def _name_constraints(value: x509.NameConstraints) -> names.NameConstraints:
    count = len(value.permitted_subtrees or ()) + len(value.excluded_subtrees or ())
    if count > MAX_SUBTREES:
        raise CertificateRefused(Check.name_constraints, f"{count} subtrees (limit {MAX_SUBTREES})")
    permitted = _subtrees(value.permitted_subtrees)
    excluded = _subtrees(value.excluded_subtrees)
    # RFC 5280 §4.2.1.10: "MUST NOT issue ... where name constraints is an
    # empty sequence"; `cryptography` already refuses both absent.
    if permitted is None and excluded is None:
        raise CertificateRefused(Check.name_constraints, "empty nameConstraints")
    return names.NameConstraints(permitted, excluded)
