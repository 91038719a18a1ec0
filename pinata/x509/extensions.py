"""A certificate's extensions (RFC 5280 §4.2) as one plain record.

Two readers give the same record. `read_plain` decodes straight from DER the
certificates most chains are made of: only basicConstraints, keyUsage,
extKeyUsage, subjectKeyIdentifier, authorityKeyIdentifier (keyIdentifier
only) and subjectAltName (dNSName, iPAddress, rfc822Name), each in its one
DER shape, no duplicate, and nothing critical that must not be. It never
refuses: on anything else it returns None, and `from_cryptography` decides,
applying the per-extension profile checks. A certificate the fast reader
takes is one the slow one takes too, with the same record (a property test
holds them to that).
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from pinata.x509 import der, dname, names
from pinata.x509.errors import CertificateRefused, Check

# Name-constraint work is (subtrees x names) per pair of certificates; this
# keeps it small however the 32 KiB are spent (limbo's nc-dos cases).
MAX_SUBTREES = 64
# Extensions in one certificate the fast reader looks at (more: slow path).
MAX_PLAIN_EXTENSIONS = 32
MAX_PLAIN_ALT_NAMES = 256
MAX_PLAIN_PURPOSES = 32

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

IPAddressOrNetwork = names.IPAddress | names.IPNetwork


class AltNames(NamedTuple):
    """A subjectAltName's entries by form, before any syntax check."""

    dns: tuple[str, ...] = ()  # as written
    ip: tuple[IPAddressOrNetwork, ...] = ()
    email: tuple[str, ...] = ()
    directory: tuple[names.NormalizedName, ...] = ()
    # Forms we do not process (uniformResourceIdentifier, otherName, ...).
    other_forms: frozenset[str] = frozenset()
    size: int = 0  # entries, of any form


class Extensions(NamedTuple):
    """(Named tuples: built for every certificate, they must be cheap.)"""

    is_ca: bool = False
    path_length: int | None = None
    # keyUsage bits we look at; None when the extension is absent.
    key_usage: frozenset[str] | None = None
    # extendedKeyUsage as dotted OIDs; None when absent.
    extended_key_usage: frozenset[str] | None = None
    extended_key_usage_critical: bool = False
    subject_alt_name: AltNames | None = None
    subject_alt_name_critical: bool = False
    name_constraints: names.NameConstraints | None = None
    subject_key_identifier: bytes | None = None
    authority_key_identifier: bytes | None = None
    authority_key_identifier_has_issuer: bool = False


NO_ALT_NAMES = AltNames()
NO_EXTENSIONS = Extensions()
# Field positions, for the fast reader's list of values.
_IS_CA = Extensions._fields.index("is_ca")
_PATH_LENGTH = Extensions._fields.index("path_length")
_KEY_USAGE_FIELD = Extensions._fields.index("key_usage")
_EXTENDED_KEY_USAGE = Extensions._fields.index("extended_key_usage")
_EXTENDED_KEY_USAGE_CRITICAL = Extensions._fields.index("extended_key_usage_critical")
_SUBJECT_ALT_NAME = Extensions._fields.index("subject_alt_name")
_SUBJECT_ALT_NAME_CRITICAL = Extensions._fields.index("subject_alt_name_critical")
_SUBJECT_KEY_IDENTIFIER = Extensions._fields.index("subject_key_identifier")
_AUTHORITY_KEY_IDENTIFIER = Extensions._fields.index("authority_key_identifier")

# --- the fast reader -------------------------------------------------------

_BOOLEAN_TRUE = bytes.fromhex("0101ff")
_BASIC_CONSTRAINTS_END_ENTITY = bytes.fromhex("3000")
_BASIC_CONSTRAINTS_CA = bytes.fromhex("30030101ff")
_BASIC_CONSTRAINTS_CA_LENGTH = bytes.fromhex("30060101ff0201")
_OCTET_STRING = 0x04
_OBJECT_IDENTIFIER = 0x06
# Extension OIDs' contents (id-ce, RFC 5280 §4.2.1).
_ID_CE_PREFIX = bytes.fromhex("0603551d")
_BASIC = 0x13
_KEY_USAGE = 0x0F
_EKU = 0x25
_SKI = 0x0E
_AKI = 0x23
_SAN = 0x11
_MAY_BE_CRITICAL_PLAIN = frozenset({_BASIC, _KEY_USAGE, _EKU, _SAN})
# GeneralName tags (RFC 5280 §4.2.1.6), IMPLICIT primitive.
_RFC822_NAME = 0x81
_DNS_NAME = 0x82
_IP_ADDRESS = 0x87
# EKU purposes seen in nearly every chain, pre-decoded.
_SERVER_AUTH = bytes.fromhex("2b06010505070301")
_CLIENT_AUTH = bytes.fromhex("2b06010505070302")
_KNOWN_PURPOSES = {
    _SERVER_AUTH: "1.3.6.1.5.5.7.3.1",
    _CLIENT_AUTH: "1.3.6.1.5.5.7.3.2",
    bytes.fromhex("551d2500"): "2.5.29.37.0",
}


def read_plain(contents: bytes | None) -> Extensions | None:
    """`contents` is what the frame found inside `[3] EXPLICIT`."""
    if contents is None:
        return None
    if not contents:
        return NO_EXTENSIONS
    values: list[object] = list(NO_EXTENSIONS)
    seen = 0  # a bit per extension OID's last arc
    header = der.header
    try:
        position, end = header(contents, 0, len(contents), der.SEQUENCE)
        if end != len(contents) or position == end:
            return None
        while position < end:
            # Most extensions are, byte for byte, one of a few (see _EXACT).
            size = contents[position + 1]
            if size < 0x80 and position + 2 + size <= end:
                stop = position + 2 + size
                element = contents[position:stop]
                known = _EXACT.get(element)
                if known is None:
                    # A 20-octet key identifier (RFC 5280 §4.2.1.2 method (1)).
                    if element[:11] == _SKI_PREFIX:
                        known = 1 << _SKI, ((_SUBJECT_KEY_IDENTIFIER, element[11:]),)
                    elif element[:13] == _AKI_PREFIX:
                        known = 1 << _AKI, ((_AUTHORITY_KEY_IDENTIFIER, element[13:]),)
                if known is not None:
                    bit, settings = known
                    if seen & bit:
                        return None
                    seen |= bit
                    for index, value in settings:
                        values[index] = value
                    position = stop
                    continue
            start, stop = header(contents, position, end, der.SEQUENCE)
            # extnID, always id-ce here (RFC 5280 §4.2.1): 06 03 55 1d xx.
            if contents[start : start + 4] != _ID_CE_PREFIX:
                return None
            oid = contents[start + 4]
            start += 5
            critical = contents[start] == 0x01
            if critical:
                # DER never encodes the DEFAULT FALSE (X.690 §11.5).
                if contents[start : start + 3] != _BOOLEAN_TRUE:
                    return None
                if oid not in _MAY_BE_CRITICAL_PLAIN:
                    return None
                start += 3
            value_start, value_end = header(contents, start, stop, _OCTET_STRING)
            if value_end != stop or seen & 1 << oid:
                return None
            seen |= 1 << oid
            if not _read_one(oid, contents[value_start:value_end], critical, values):
                return None
            position = stop
    except (der.DerError, IndexError):
        return None
    return Extensions._make(values)


def _read_one(oid: int, value: bytes, critical: bool, values: list[object]) -> bool:
    if oid == _BASIC:
        if value == _BASIC_CONSTRAINTS_END_ENTITY:
            return True
        if value == _BASIC_CONSTRAINTS_CA:
            values[_IS_CA] = True
            return True
        if len(value) == 8 and value[:7] == _BASIC_CONSTRAINTS_CA_LENGTH and value[7] < 0x80:
            values[_IS_CA] = True
            values[_PATH_LENGTH] = value[7]
            return True
        return False
    if oid == _KEY_USAGE:
        usage = _key_usage(value)
        values[_KEY_USAGE_FIELD] = usage
        return usage is not None
    if oid == _EKU:
        purposes = _purposes(value)
        values[_EXTENDED_KEY_USAGE] = purposes
        values[_EXTENDED_KEY_USAGE_CRITICAL] = critical
        return purposes is not None
    if oid == _SKI:
        identifier = der.body(value, _OCTET_STRING)
        values[_SUBJECT_KEY_IDENTIFIER] = identifier
        return bool(identifier)
    if oid == _AKI:
        # SEQUENCE { [0] keyIdentifier } and nothing else, short lengths.
        size = len(value)
        if not 4 < size < 0x80 or value[:3] != bytes((0x30, size - 2, 0x80)):
            return False
        if value[3] != size - 4:
            return False
        values[_AUTHORITY_KEY_IDENTIFIER] = value[4:]
        return True
    if oid == _SAN:
        alt_names = _alt_names(value)
        values[_SUBJECT_ALT_NAME] = alt_names
        values[_SUBJECT_ALT_NAME_CRITICAL] = critical
        return alt_names is not None
    return False


def _key_usage(value: bytes) -> frozenset[str] | None:
    bits = der.body(value, 0x03)
    if bits is None or len(bits) not in (2, 3):
        return None
    unused, last = bits[0], bits[-1]
    # DER (X.690 §11.2.2): no trailing zero bits in a named bit list.
    if unused > 7 or not last >> unused & 1:
        return None
    first = bits[1]
    # encipherOnly / decipherOnly: left to the slow path, which checks they
    # come with keyAgreement.
    if first & 0x01 or (len(bits) == 3 and bits[2] & 0x80):
        return None
    usage = set()
    if first & 0x80:
        usage.add("digital_signature")
    if first & 0x04:
        usage.add("key_cert_sign")
    return frozenset(usage)


def _purposes(value: bytes) -> frozenset[str] | None:
    purposes: set[str] = set()
    try:
        position, end = der.header(value, 0, len(value), der.SEQUENCE)
        if end != len(value) or position == end:
            return None
        while position < end:
            if len(purposes) == MAX_PLAIN_PURPOSES:
                return None
            start, position = der.header(value, position, end, _OBJECT_IDENTIFIER)
            oid = value[start:position]
            dotted = _KNOWN_PURPOSES.get(oid) or der.object_identifier(oid)
            if dotted is None:
                return None
            purposes.add(dotted)
    except der.DerError:
        return None
    return frozenset(purposes)


def _alt_names(value: bytes) -> AltNames | None:
    body = der.body(value, der.SEQUENCE)
    listed = None if body is None else der.elements(body, MAX_PLAIN_ALT_NAMES)
    if not listed:
        return None
    dns: list[str] = []
    ips: list[IPAddressOrNetwork] = []
    emails: list[str] = []
    for tag, contents in listed:
        if tag == _IP_ADDRESS and len(contents) in (4, 16):
            ips.append(ipaddress.ip_address(contents))
            continue
        if tag not in (_DNS_NAME, _RFC822_NAME) or not contents.isascii():
            return None  # IA5String is ASCII (X.680 §41)
        (dns if tag == _DNS_NAME else emails).append(contents.decode("ascii"))
    return AltNames(dns=tuple(dns), ip=tuple(ips), email=tuple(emails), size=len(listed))


def _extension(oid: int, critical: bool, value: bytes) -> bytes:
    """DER of an Extension with an id-ce OID, all lengths short."""
    inner = bytes((0x06, 3, 0x55, 0x1D, oid)) + (_BOOLEAN_TRUE if critical else b"")
    inner += bytes((_OCTET_STRING, len(value))) + value
    return bytes((der.SEQUENCE, len(inner))) + inner


def _common_extensions() -> dict[bytes, tuple[int, tuple[tuple[int, object], ...]]]:
    """Whole Extension encodings (tag to last octet) found in nearly every
    certificate, with the fields each sets, decoded at import by `_read_one`
    itself: a certificate made of these is read by lookups."""
    values = {
        _BASIC: [_BASIC_CONSTRAINTS_END_ENTITY, _BASIC_CONSTRAINTS_CA]
        + [_BASIC_CONSTRAINTS_CA_LENGTH + bytes((length,)) for length in range(8)],
        # Every keyUsage that fits one octet (digitalSignature .. cRLSign).
        _KEY_USAGE: [
            bytes((0x03, 2, (bits & -bits).bit_length() - 1, bits)) for bits in range(1, 256)
        ],
        _EKU: [
            bytes((der.SEQUENCE, sum(len(p) + 2 for p in purposes)))
            + b"".join(bytes((_OBJECT_IDENTIFIER, len(p))) + p for p in purposes)
            for purposes in (
                [_CLIENT_AUTH],
                [_SERVER_AUTH],
                [_CLIENT_AUTH, _SERVER_AUTH],
                [_SERVER_AUTH, _CLIENT_AUTH],
            )
        ],
    }
    table: dict[bytes, tuple[int, tuple[tuple[int, object], ...]]] = {}
    for oid, encodings in values.items():
        for value in encodings:
            for critical in (False, True):
                fields: list[object] = list(NO_EXTENSIONS)
                if _read_one(oid, value, critical, fields):
                    settings = tuple(
                        (index, setting)
                        for index, setting in enumerate(fields)
                        if setting != NO_EXTENSIONS[index]
                    )
                    table[_extension(oid, critical, value)] = (1 << oid, settings)
    return table


_EXACT = _common_extensions()
_SKI_PREFIX = _extension(_SKI, False, bytes.fromhex("0414") + bytes(20))[:11]
_AKI_PREFIX = _extension(_AKI, False, bytes.fromhex("30168014") + bytes(20))[:13]


# --- the slow reader -------------------------------------------------------


def from_cryptography(certificate: x509.Certificate) -> Extensions:
    """Every extension through `cryptography`; its exceptions (malformed
    values, DuplicateExtension) propagate to `parse_certificate`."""
    fields: dict[str, object] = {}
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
            fields["is_ca"] = value.ca
            fields["path_length"] = value.path_length
        elif kind is x509.KeyUsage:
            fields["key_usage"] = frozenset(
                bit
                for bit, on in (
                    ("digital_signature", value.digital_signature),
                    ("key_cert_sign", value.key_cert_sign),
                )
                if on
            )
        elif kind is x509.ExtendedKeyUsage:
            fields["extended_key_usage"] = frozenset(usage.dotted_string for usage in value)
            fields["extended_key_usage_critical"] = extension.critical
        elif kind is x509.SubjectAlternativeName:
            fields["subject_alt_name"] = _alt_names_from(value)
            fields["subject_alt_name_critical"] = extension.critical
        elif kind is x509.NameConstraints:
            # RFC 5280 §4.2.1.10: "Conforming CAs MUST mark this extension as
            # critical"; we refuse rather than guess what a non-critical one means.
            if not extension.critical:
                raise CertificateRefused(Check.name_constraints, "nameConstraints not critical")
            fields["name_constraints"] = _name_constraints(value)
        elif kind is x509.SubjectKeyIdentifier:
            fields["subject_key_identifier"] = value.digest
        elif kind is x509.AuthorityKeyIdentifier:
            # RFC 5280 §4.2.1.1: keyIdentifier MUST be present.
            if value.key_identifier is None:
                raise CertificateRefused(
                    Check.extension, "authorityKeyIdentifier without keyIdentifier"
                )
            fields["authority_key_identifier"] = value.key_identifier
            fields["authority_key_identifier_has_issuer"] = (
                value.authority_cert_issuer is not None
                or value.authority_cert_serial_number is not None
            )
        elif kind is x509.PolicyConstraints:
            # We build no policy tree, so cannot honour requireExplicitPolicy.
            raise CertificateRefused(Check.unsupported_extension, "policyConstraints not processed")
    return Extensions(**fields)  # type: ignore[arg-type]


def _alt_names_from(value: x509.SubjectAlternativeName) -> AltNames:
    dns: list[str] = []
    ips: list[IPAddressOrNetwork] = []
    emails: list[str] = []
    directories: list[names.NormalizedName] = []
    other: set[str] = set()
    for general_name in value:
        if type(general_name) is x509.DNSName:
            dns.append(general_name.value)
        elif type(general_name) is x509.IPAddress:
            ips.append(general_name.value)
        elif type(general_name) is x509.RFC822Name:
            emails.append(general_name.value)
        elif type(general_name) is x509.DirectoryName:
            directories.append(dname.normalized(dname.from_cryptography(general_name.value)))
        else:
            other.add(type(general_name).__name__)
    return AltNames(
        tuple(dns), tuple(ips), tuple(emails), tuple(directories), frozenset(other), len(value)
    )


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
            directories.append(dname.normalized(dname.from_cryptography(general_name.value)))
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
