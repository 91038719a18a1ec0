"""DER in, a small frozen record of what the checks need out.

Our frame (`der`) finds the pieces, `dname` and `extensions` read plain
names and extensions straight from them, and `cryptography` decodes the rest
and the key. The checks that depend on the certificate alone (its profile,
RFC 5280 §4) are applied here, so that path building never looks at a
certificate twice. Any failure, whether something cannot be decoded or the
profile is broken, is raised as `CertificateRefused`; no other exception
escapes.

What only some paths need (comparison forms of the names, RFC 4514 text,
the names that name constraints apply to) is computed on first use: a leaf
issued by the anchor needs none of it.
"""

from __future__ import annotations

import contextlib
import ipaddress
from datetime import datetime
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from pinata.x509 import der, dname, extensions, names
from pinata.x509.errors import CertificateRefused, Check
from pinata.x509.signature import SignatureAlgorithm, check_public_key, signature_algorithm

# A certificate larger than this is not one we were sent in good faith.
MAX_CERTIFICATE_SIZE = 32 * 1024
MAX_SUBJECT_ALT_NAMES = 256
MAX_SUBTREES = extensions.MAX_SUBTREES

# SubjectPublicKeyInfo algorithms, by exact DER (RFC 3279 §2.3.1 rsaEncryption
# with NULL; RFC 5480 §2.1.1 namedCurve only, so explicit curves are refused;
# RFC 8410 §3 Ed25519). id-RSASSA-PSS keys are matched by OID (RFC 4055 §3.1).
_RSA_KEY_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101010500")
_CURVE_KEY_ALGORITHMS = {
    bytes.fromhex("301306072a8648ce3d020106082a8648ce3d030107"),  # P-256
    bytes.fromhex("301006072a8648ce3d020106052b81040022"),  # P-384
    bytes.fromhex("301006072a8648ce3d020106052b81040023"),  # P-521
    bytes.fromhex("300506032b6570"),  # Ed25519
}
_RSASSA_PSS_OID = bytes.fromhex("06092a864886f70d01010a")
# Any Name holding an emailAddress attribute holds these octets (its OID).
_EMAIL_ADDRESS_OID = bytes.fromhex("06092a864886f70d010901")

EMAIL_ADDRESS = dname.EMAIL_ADDRESS
COMMON_NAME = dname.COMMON_NAME
ANY_EXTENDED_KEY_USAGE = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string


class Derived:
    """What a `ParsedCertificate` computes on first use and keeps: pure
    functions of its fields, so the record stays immutable in effect."""

    __slots__ = ("constrained_names", "issuer", "self_issued", "subject")

    def __init__(self) -> None:
        self.subject: names.NormalizedName | None = None
        self.issuer: names.NormalizedName | None = None
        self.constrained_names: names.ConstrainedNames | None = None
        self.self_issued: bool | None = None


class ParsedCertificate(NamedTuple):
    """One certificate, checked against the profile. A named tuple rather
    than a frozen dataclass: it is built once per certificate on the hot
    path, and a frozen dataclass of this many fields costs three times as
    much to build (about 9 µs against 3 here, a tenth of a validation)."""

    der: bytes
    tbs: bytes
    signature: bytes
    algorithm: SignatureAlgorithm
    subject_rdns: dname.Rdns
    issuer_rdns: dname.Rdns
    # Exact DER of the names, and of subjectPublicKeyInfo: "the same key"
    # means equal spki bytes.
    subject_der: bytes
    issuer_der: bytes
    spki: bytes
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
    emails: tuple[str, ...]  # rfc822Names, then the subject's emailAddresses
    alt_name_directories: tuple[names.NormalizedName, ...]
    alt_name_other_forms: frozenset[str]
    has_subject_alt_name: bool
    name_constraints: names.NameConstraints | None
    subject_key_identifier: bytes | None
    authority_key_identifier: bytes | None
    authority_key_identifier_has_issuer: bool
    derived: Derived

    @property
    def subject(self) -> names.NormalizedName:
        """The subject in RFC 5280 §7.1 comparison form."""
        derived = self.derived
        if derived.subject is None:
            derived.subject = dname.normalized(self.subject_rdns)
        return derived.subject

    @property
    def issuer(self) -> names.NormalizedName:
        derived = self.derived
        if derived.issuer is None:
            derived.issuer = dname.normalized(self.issuer_rdns)
        return derived.issuer

    @property
    def subject_text(self) -> str:
        """RFC 4514, for logs and traces."""
        return dname.rfc4514(self.subject_rdns)

    @property
    def common_names(self) -> tuple[str, ...]:
        return dname.values_of(self.subject_rdns, COMMON_NAME)

    @property
    def self_issued(self) -> bool:
        """RFC 5280 §6.1: subject and issuer match (§7.1 comparison)."""
        derived = self.derived
        if derived.self_issued is None:
            derived.self_issued = self.subject_der == self.issuer_der or self.subject == self.issuer
        return derived.self_issued

    def issued_by(self, issuer: ParsedCertificate) -> bool:
        """Whether our issuer name matches `issuer`'s subject. RFC 5280 §7.1:
        names that are equal byte for byte match; only names that differ
        need the comparison form."""
        return self.issuer_der == issuer.subject_der or self.issuer == issuer.subject

    @property
    def constrained_names(self) -> names.ConstrainedNames:
        """The names that name constraints apply to (§6.1.3 (b)(c))."""
        derived = self.derived
        if derived.constrained_names is None:
            directories = [self.subject] if self.subject_rdns else []
            derived.constrained_names = names.ConstrainedNames(
                directory=(*directories, *self.alt_name_directories),
                dns=self.dns_names,
                ip=self.ip_addresses,
                email=self.emails,
                other_forms=self.alt_name_other_forms,
            )
        return derived.constrained_names


def parse_certificate(
    data: bytes, *, anchor: bool = False, known_issuer: ParsedCertificate | None = None
) -> ParsedCertificate:
    """`anchor` skips the serial-number check: RFC 5280 §6.1.1 (d) makes an
    anchor a name and a key, and old roots with serial 0 exist.
    `known_issuer` (the anchor) saves reading an issuer name that is, byte
    for byte, its subject."""
    if len(data) > MAX_CERTIFICATE_SIZE:
        raise CertificateRefused(Check.too_large, f"certificate of {len(data)} bytes")
    try:
        frame = der.certificate_frame(data)
    except der.DerError as error:
        raise CertificateRefused(Check.malformed, f"not a DER certificate: {error}") from None
    algorithm = signature_algorithm(frame.tbs_signature, frame.signature_algorithm)
    try:
        certificate = x509.load_der_x509_certificate(data)
        return _lift(data, frame, certificate, algorithm, anchor, known_issuer)
    except CertificateRefused as refused:
        with contextlib.suppress(Exception):
            refused.subject = dname.normalized(_rdns(frame.subject, certificate, "subject"))
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


def _rdns(name: bytes, certificate: x509.Certificate, field: str) -> dname.Rdns:
    plain = dname.read_plain(name)
    if plain is not None:
        return plain
    return dname.from_cryptography(getattr(certificate, field))


def _lift(
    data: bytes,
    frame: der.CertificateFrame,
    certificate: x509.Certificate,
    algorithm: SignatureAlgorithm,
    anchor: bool,
    known_issuer: ParsedCertificate | None,
) -> ParsedCertificate:
    # CA/B Forum BR §7.1.1 and the issue: version 3 only (a v1 certificate
    # cannot carry basicConstraints, so could only ever be a leaf).
    if frame.version != der.VERSION_3 and certificate.version is not x509.Version.v3:
        raise CertificateRefused(Check.version, "not an X.509 version 3 certificate")
    # RFC 5280 §4.1.2.2: a positive integer of at most 20 octets (that is,
    # 20 contents octets: `cryptography` has refused non-minimal INTEGERs).
    if not anchor and (len(frame.serial) > 20 or frame.serial[0] & 0x80 or frame.serial == b"\0"):
        raise CertificateRefused(Check.serial, "serial number not positive or over 20 octets")

    key_algorithm = frame.key_algorithm
    key_is_rsassa_pss = False
    if key_algorithm in _CURVE_KEY_ALGORITHMS:
        # The AlgorithmIdentifier names the curve, or Ed25519: nothing about
        # the key is left for `check_public_key` to refuse.
        public_key = certificate.public_key()
    elif key_algorithm == _RSA_KEY_ALGORITHM or (
        key_algorithm[2 : 2 + len(_RSASSA_PSS_OID)] == _RSASSA_PSS_OID
    ):
        key_is_rsassa_pss = key_algorithm != _RSA_KEY_ALGORITHM
        public_key = certificate.public_key()
        check_public_key(public_key)
    else:
        raise CertificateRefused(Check.public_key, "public key algorithm or curve not accepted")

    subject = _rdns(frame.subject, certificate, "subject")
    subject_emails = (
        dname.values_of(subject, EMAIL_ADDRESS) if _EMAIL_ADDRESS_OID in frame.subject else ()
    )
    if known_issuer is not None and frame.issuer == known_issuer.subject_der:
        issuer = known_issuer.subject_rdns
    else:
        issuer = _rdns(frame.issuer, certificate, "issuer")
    # RFC 5280 §4.1.2.4: the issuer field MUST contain a non-empty DN.
    if not issuer:
        raise CertificateRefused(Check.name, "empty issuer name")

    found = extensions.read_plain(frame.extensions) or extensions.from_cryptography(certificate)
    # RFC 5280 §4.2.1.3: keyCertSign only with cA; §4.2.1.10: nameConstraints
    # only in CA certificates; §4.1.2.6: a CA's subject is non-empty.
    key_usage = found.key_usage
    if key_usage is not None and "key_cert_sign" in key_usage and not found.is_ca:
        raise CertificateRefused(Check.key_usage, "keyCertSign without basicConstraints cA")
    if found.name_constraints is not None and not found.is_ca:
        raise CertificateRefused(Check.name_constraints, "nameConstraints in a non-CA certificate")
    if found.is_ca and not subject:
        raise CertificateRefused(Check.name, "CA certificate with an empty subject")
    # RFC 5280 §4.2.1.6: critical only when the subject is empty (CA/B BR
    # §7.1.2.7.12 makes the SHOULD a MUST).
    if found.subject_alt_name_critical and subject:
        raise CertificateRefused(
            Check.extension, "critical subjectAltName with a non-empty subject"
        )
    san = found.subject_alt_name or extensions.NO_ALT_NAMES
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[names.IPAddress, ...] = ()
    emails: tuple[str, ...] = ()
    if san is not extensions.NO_ALT_NAMES or subject_emails:
        dns_names, ip_addresses, emails = _check_alt_names(san, subject_emails)

    return ParsedCertificate(
        der=data,
        tbs=frame.tbs,
        signature=certificate.signature if frame.signature is None else frame.signature,
        algorithm=algorithm,
        subject_rdns=subject,
        issuer_rdns=issuer,
        subject_der=frame.subject,
        issuer_der=frame.issuer,
        spki=frame.subject_public_key_info,
        public_key=public_key,
        key_is_rsassa_pss=key_is_rsassa_pss,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        is_ca=found.is_ca,
        path_length=found.path_length,
        key_usage=key_usage,
        extended_key_usage=found.extended_key_usage,
        extended_key_usage_critical=found.extended_key_usage_critical,
        dns_names=dns_names,
        dns_names_as_written=san.dns,
        ip_addresses=ip_addresses,
        emails=emails,
        alt_name_directories=san.directory,
        alt_name_other_forms=san.other_forms,
        has_subject_alt_name=found.subject_alt_name is not None,
        name_constraints=found.name_constraints,
        subject_key_identifier=found.subject_key_identifier,
        authority_key_identifier=found.authority_key_identifier,
        authority_key_identifier_has_issuer=found.authority_key_identifier_has_issuer,
        derived=Derived(),
    )


def _check_alt_names(
    san: extensions.AltNames, subject_emails: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[names.IPAddress, ...], tuple[str, ...]]:
    """The subjectAltName's syntax (RFC 5280 §4.2.1.6) and the subject's
    emailAddresses: lower-cased dNSNames, addresses, and every mailbox."""
    if san.size > MAX_SUBJECT_ALT_NAMES:
        raise CertificateRefused(Check.name, f"more than {MAX_SUBJECT_ALT_NAMES} subjectAltNames")
    dns: list[str] = []
    for written in san.dns:
        # RFC 5280 §4.2.1.6: preferred name syntax, ASCII (IDNs as A-labels).
        value = written.lower()
        if not names.is_dns_name(value, wildcard=True):
            raise CertificateRefused(Check.name, "subjectAltName dNSName not a valid name")
        dns.append(value)
    ips: list[names.IPAddress] = []
    for address in san.ip:
        # RFC 5280 §4.2.1.6: 4 or 16 octets, an address (not a network).
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            raise CertificateRefused(Check.name, "subjectAltName iPAddress is not an address")
        ips.append(address)
    for email in san.email:
        if not names.is_email(email):
            raise CertificateRefused(Check.name, "subjectAltName rfc822Name not a mailbox")
    for email in subject_emails:
        if not names.is_email(email):
            raise CertificateRefused(Check.name, "emailAddress attribute not a mailbox")
    return tuple(dns), tuple(ips), (*san.email, *subject_emails)
