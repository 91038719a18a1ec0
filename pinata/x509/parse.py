"""DER in, a small frozen record of what the checks need out.

One parser: `cryptography` decodes the certificate, its names, extensions
and key. We read no field of the DER ourselves. Two things its API does not
hand out, the exact signature AlgorithmIdentifier inside and outside the TBS
(RFC 5280 §4.1.1.2: they MUST be identical), are checked the other way
round: we encode what `cryptography` decoded (version, serial number, the
one accepted AlgorithmIdentifier for its OID) and require those bytes where
the structure puts them (`_check_layout`). A disagreement can only refuse.

The checks that depend on the certificate alone (its profile, RFC 5280 §4)
are applied here, so that path building never looks at a certificate twice.
Any failure, whether something cannot be decoded or the profile is broken,
is raised as `CertificateRefused`; no other exception escapes.

`ParseCache` keeps parsed certificates (and refusals) by their DER, bounded:
a client that reconnects with the same chain is parsed once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections import OrderedDict
from datetime import datetime
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from pinata.x509 import dname, extensions, names
from pinata.x509.errors import CertificateRefused, Check
from pinata.x509.signature import (
    ALGORITHMS,
    SignatureAlgorithm,
    accepted_identifiers,
    check_public_key,
    verification_cost,
)

# A certificate larger than this is not one we were sent in good faith.
MAX_CERTIFICATE_SIZE = 32 * 1024
MAX_SUBJECT_ALT_NAMES = 256
MAX_SUBTREES = extensions.MAX_SUBTREES
# Parsed certificates kept per anchor: at most this many, each at most
# MAX_CERTIFICATE_SIZE of DER (plus its record), so about 12 MiB at worst.
CACHE_ENTRIES = 256

# X.509 v3 as `[0] EXPLICIT Version` (RFC 5280 §4.1.2.1).
_VERSION_3 = bytes.fromhex("a003020102")
_EXTENSIONS_TAG = 0xA3  # [3] EXPLICIT Extensions
_KEY_ENCODING = (
    "subjectPublicKeyInfo not in its one accepted encoding (RFC 3279 §2.3.1, "
    "RFC 5480 §2.1.1 named curves, RFC 8410 §3; id-RSASSA-PSS keys refused)"
)

EMAIL_ADDRESS = dname.EMAIL_ADDRESS
COMMON_NAME = dname.COMMON_NAME
ANY_EXTENDED_KEY_USAGE = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string


class Derived:
    """What a `ParsedCertificate` computes on first use and keeps: pure
    functions of its fields, so the record stays immutable in effect."""

    __slots__ = ("constrained_names", "issuer", "self_issued", "subject", "subject_text")

    def __init__(self) -> None:
        self.subject: names.NormalizedName | None = None
        self.subject_text: str | None = None
        self.issuer: names.NormalizedName | None = None
        self.constrained_names: names.ConstrainedNames | None = None
        self.self_issued: bool | None = None


class ParsedCertificate(NamedTuple):
    """One certificate, checked against the profile. A named tuple rather
    than a frozen dataclass: cheap to build, and immutable."""

    der: bytes
    tbs: bytes
    signature: bytes
    algorithm: SignatureAlgorithm
    subject_rdns: dname.Rdns
    issuer_rdns: dname.Rdns
    # DER of the names, and of subjectPublicKeyInfo, as `cryptography`
    # encodes what it decoded: "the same key" means equal spki bytes.
    subject_der: bytes
    issuer_der: bytes
    spki: bytes
    public_key: CertificatePublicKeyTypes
    # `signature.verification_cost` of the key, reckoned once per parse
    # (the anchor's is reckoned once): path building charges it per issuer.
    verification_cost: int
    key_is_rsassa_pss: bool
    not_before: datetime
    not_after: datetime
    is_ca: bool
    basic_constraints_critical: bool
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
        """RFC 4514, for logs and traces (every accepted chain names them)."""
        derived = self.derived
        if derived.subject_text is None:
            derived.subject_text = dname.rfc4514(self.subject_rdns)
        return derived.subject_text

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


class ParseCache:
    """Parsed certificates and refusals by DER, least recently used first
    out, at most `entries`. Safe to share between threads (validation may
    run off the event loop). Each entry is a pure function of its key, so a
    hostile peer can only evict entries, never change an answer."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._lock = threading.Lock()
        self._found: OrderedDict[bytes, ParsedCertificate | CertificateRefused] = OrderedDict()

    def parse(self, data: bytes) -> ParsedCertificate:
        """`parse_certificate(data)`, remembered. Raises `CertificateRefused`."""
        with self._lock:
            found = self._found.get(data)
            if found is not None:
                self._found.move_to_end(data)
        if found is None:
            try:
                found = parse_certificate(data)
            except CertificateRefused as refused:
                found = refused
            if len(data) <= MAX_CERTIFICATE_SIZE:
                with self._lock:
                    self._found[data] = found
                    if len(self._found) > self._entries:
                        self._found.popitem(last=False)
        if isinstance(found, CertificateRefused):
            raise CertificateRefused(found.check, found.reason, found.subject)
        return found

    def subject(self, data: bytes) -> names.NormalizedName | None:
        """The subject of `data` in §7.1 comparison form, or None if it does
        not decode; from the cache when parsed, else decoded alone (about a
        tenth of a parse), to index a peer's bag without parsing all of it."""
        with self._lock:
            found = self._found.get(data)
        if isinstance(found, ParsedCertificate):
            return found.subject
        if len(data) > MAX_CERTIFICATE_SIZE:
            return None
        try:
            name = x509.load_der_x509_certificate(data).subject
            return dname.normalized(dname.from_cryptography(name))
        except Exception:  # any decoding failure: not a certificate to index
            return None

    def __len__(self) -> int:
        return len(self._found)


def parse_certificate(data: bytes, *, anchor: bool = False) -> ParsedCertificate:
    """Decode and profile-check one certificate. `anchor` skips the
    serial-number check: RFC 5280 §6.1.1 (d) makes an anchor a name and a
    key, and old roots with serial 0 exist. Raises `CertificateRefused`."""
    if len(data) > MAX_CERTIFICATE_SIZE:
        raise CertificateRefused(Check.too_large, f"certificate of {len(data)} bytes")
    certificate: x509.Certificate | None = None
    try:
        certificate = x509.load_der_x509_certificate(data)
        return _lift(data, certificate, anchor)
    except CertificateRefused as refused:
        if certificate is not None:
            with contextlib.suppress(Exception):
                refused.subject = dname.normalized(dname.from_cryptography(certificate.subject))
        raise
    # The one place `cryptography`'s decoding exceptions are caught: each
    # becomes a refusal of this certificate (ValueError, TypeError,
    # DuplicateExtension, UnsupportedGeneralNameType, InvalidVersion...).
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"[:200]
        if isinstance(error, x509.DuplicateExtension):
            # RFC 5280 §4.2: "MUST NOT include more than one instance".
            raise CertificateRefused(Check.extension, reason) from None
        if isinstance(error, UnsupportedAlgorithm):
            raise CertificateRefused(Check.public_key, reason) from None
        raise CertificateRefused(Check.malformed, reason) from None


def _der_length(length: int) -> bytes:
    """X.690 §8.1.3: definite length, shortest form."""
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _integer(value: int) -> bytes:
    """X.690 §8.3: an INTEGER's contents, two's complement, minimal."""
    return value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)


def _sequence_header(total: int) -> bytes:
    """The SEQUENCE header of an element `total` octets long in all."""
    if total < 0x82:
        return bytes((0x30, total - 2))
    if total < 0x104:
        return bytes((0x30, 0x81, total - 3))
    return bytes((0x30, 0x82)) + (total - 4).to_bytes(2, "big")  # <= 32 KiB


def _time(moment: datetime) -> bytes:
    """RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime otherwise,
    in Zulu time with seconds and no fraction."""
    if 1950 <= moment.year < 2050:
        return b"\x17\x0d" + moment.strftime("%y%m%d%H%M%SZ").encode("ascii")
    text = f"{moment.year:04d}" + moment.strftime("%m%d%H%M%SZ")
    return b"\x18\x0f" + text.encode("ascii")


class _Decoded(NamedTuple):
    """What `cryptography` decoded, re-encoded by us for `_check_layout`."""

    tbs: bytes
    signature: bytes
    serial: bytes  # INTEGER contents
    issuer: bytes
    subject: bytes
    spki: bytes
    validity: bytes  # the whole Validity SEQUENCE


def _check_layout(data: bytes, certificate: x509.Certificate, decoded: _Decoded) -> bytes:
    """Require, byte for byte, where RFC 5280 §4.1 puts them, the encodings
    of what `cryptography` decoded; return the signature AlgorithmIdentifier.

    It is the one DER we accept for its OID (`signature.ALGORITHMS`), inside
    the TBS after version 3 and the serial, and after the TBS (§4.1.1.2:
    "MUST contain the same algorithm identifier"), followed by the
    signature. Inside the TBS follow the issuer, the validity in the encoding
    §4.1.2.5 prescribes, the subject, the key in its one accepted encoding,
    and then only extensions (§4.1.2.8: conforming CAs MUST NOT generate
    unique identifiers)."""
    tbs = decoded.tbs
    head = _sequence_header(len(tbs)) + _VERSION_3 + b"\x02"
    head += _der_length(len(decoded.serial)) + decoded.serial
    outer = _sequence_header(len(data)) + tbs
    bit_string = b"\x03" + _der_length(len(decoded.signature) + 1) + b"\x00" + decoded.signature
    oid = certificate.signature_algorithm_oid.dotted_string
    for identifier in accepted_identifiers(oid):
        inner = tbs.startswith(head + identifier)
        if inner and data == outer + identifier + bit_string:
            break
        if inner or data.startswith(outer + identifier):
            raise CertificateRefused(
                Check.signature_algorithm, "signature algorithm differs inside and outside the TBS"
            )
    else:
        raise CertificateRefused(
            Check.signature_algorithm, "signature algorithm not accepted (MD5, SHA-1, DSA, ...)"
        )
    for part, check, reason in (
        (identifier + decoded.issuer, Check.name, "issuer name not in DER"),
        (decoded.validity, Check.malformed, "validity not encoded as RFC 5280 §4.1.2.5 requires"),
        (decoded.subject, Check.name, "subject name not in DER"),
        (decoded.spki, Check.public_key, _KEY_ENCODING),
    ):
        head += part
        if not tbs.startswith(head):
            raise CertificateRefused(check, reason)
    if len(tbs) > len(head) and tbs[len(head)] != _EXTENSIONS_TAG:
        raise CertificateRefused(Check.malformed, "issuer or subject unique identifier present")
    return identifier


def _lift(data: bytes, certificate: x509.Certificate, anchor: bool) -> ParsedCertificate:
    # CA/B Forum BR §7.1.1 and the issue: version 3 only (a v1 certificate
    # cannot carry basicConstraints, so could only ever be a leaf).
    if certificate.version is not x509.Version.v3:
        raise CertificateRefused(Check.version, "not an X.509 version 3 certificate")
    number = certificate.serial_number
    serial = _integer(number)
    # RFC 5280 §4.1.2.2: a positive integer of at most 20 octets.
    if not anchor and (number <= 0 or len(serial) > 20):
        raise CertificateRefused(Check.serial, "serial number not positive or over 20 octets")
    try:
        public_key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as error:
        # An unknown algorithm, explicit curve parameters, a point off the curve.
        reason = f"public key not accepted: {type(error).__name__}: {error}"[:200]
        raise CertificateRefused(Check.public_key, reason) from None
    check_public_key(public_key)
    subject_name, issuer_name = certificate.subject, certificate.issuer
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    times = _time(not_before) + _time(not_after)
    decoded = _Decoded(
        tbs=certificate.tbs_certificate_bytes,
        signature=certificate.signature,
        serial=serial,
        issuer=issuer_name.public_bytes(),
        subject=subject_name.public_bytes(),
        spki=public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        validity=b"\x30" + _der_length(len(times)) + times,
    )
    algorithm = ALGORITHMS[_check_layout(data, certificate, decoded)]
    subject = dname.from_cryptography(subject_name)
    issuer = dname.from_cryptography(issuer_name)
    # RFC 5280 §4.1.2.4: the issuer field MUST contain a non-empty DN.
    if not issuer:
        raise CertificateRefused(Check.name, "empty issuer name")
    found = extensions.from_cryptography(certificate)
    _check_profile(found, subject)
    san = found.subject_alt_name or extensions.NO_ALT_NAMES
    subject_emails = dname.values_of(subject, EMAIL_ADDRESS)
    dns_names, ip_addresses, emails = _check_alt_names(san, subject_emails)

    return ParsedCertificate(
        der=data,
        tbs=decoded.tbs,
        signature=decoded.signature,
        algorithm=algorithm,
        subject_rdns=subject,
        issuer_rdns=issuer,
        subject_der=decoded.subject,
        issuer_der=decoded.issuer,
        spki=decoded.spki,
        public_key=public_key,
        verification_cost=verification_cost(public_key),
        # id-RSASSA-PSS keys are refused (_check_layout); the engine's
        # flag stays for the day they are not.
        key_is_rsassa_pss=False,
        not_before=not_before,
        not_after=not_after,
        is_ca=found.is_ca,
        basic_constraints_critical=found.basic_constraints_critical,
        path_length=found.path_length,
        key_usage=found.key_usage,
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


def _check_profile(found: extensions.Extensions, subject: dname.Rdns) -> None:
    """The rules that tie extensions to each other and to the subject."""
    key_usage = found.key_usage
    # RFC 5280 §4.2.1.3: keyCertSign only with cA; §4.2.1.10: nameConstraints
    # only in CA certificates; §4.1.2.6: a CA's subject is non-empty.
    if key_usage is not None and "key_cert_sign" in key_usage and not found.is_ca:
        raise CertificateRefused(Check.key_usage, "keyCertSign without basicConstraints cA")
    if found.name_constraints is not None and not found.is_ca:
        raise CertificateRefused(Check.name_constraints, "nameConstraints in a non-CA certificate")
    if found.is_ca and not subject:
        raise CertificateRefused(Check.name, "CA certificate with an empty subject")
    # RFC 5280 §4.2.1.6: with an empty subject the subjectAltName MUST be
    # present and critical; otherwise it is not critical (the SHOULD that
    # CA/B BR §7.1.2.7.12 makes a MUST).
    if not subject and (found.subject_alt_name is None or not found.subject_alt_name_critical):
        raise CertificateRefused(Check.extension, "empty subject without a critical subjectAltName")
    if found.subject_alt_name_critical and subject:
        raise CertificateRefused(
            Check.extension, "critical subjectAltName with a non-empty subject"
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
