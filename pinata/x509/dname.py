"""Distinguished names as plain values: (attribute type, value) per RDN.

A Name (RFC 5280 §4.1.2.4) whose every attribute is single-valued and a
PrintableString, IA5String or UTF8String is read here straight from its DER;
any other is left to `cryptography` (`from_cryptography`), which decodes the
rest (BMPString, UniversalString, multi-valued RDNs, ...). Both give the same
plain value, so what follows (comparison, RFC 4514 text) is written once.
"""

from __future__ import annotations

import re

from cryptography import x509

from pinata.x509 import der, names

# (dotted OID, value): str, or bytes for a BIT STRING (x500UniqueIdentifier).
Attribute = tuple[str, str | bytes]
Rdns = tuple[tuple[Attribute, ...], ...]

SET = 0x31
OBJECT_IDENTIFIER = 0x06
_STRING_TAGS = frozenset({0x0C, 0x13, 0x16})  # UTF8String, PrintableString, IA5String
# A Name of more RDNs than this is not plain (the slow path bounds nothing
# else: `cryptography` reads it whole).
MAX_PLAIN_RDNS = 32

COMMON_NAME = "2.5.4.3"
COUNTRY_NAME = "2.5.4.6"
EMAIL_ADDRESS = "1.2.840.113549.1.9.1"
_JURISDICTION_COUNTRY_NAME = "1.3.6.1.4.1.311.60.2.1.3"
# Octet lengths outside which `cryptography` warns as it decodes; such names
# go the slow way so that it still does.
_LENGTH_LIMITS = {
    COUNTRY_NAME: (2, 2),
    _JURISDICTION_COUNTRY_NAME: (2, 2),
    COMMON_NAME: (1, 64),
}
# RFC 4514 §3 short names, as `cryptography` prints them.
_SHORT_NAMES = {
    COMMON_NAME: "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    COUNTRY_NAME: "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
# OID contents of the attribute types most names are made of, pre-decoded.
_KNOWN_TYPES = {
    bytes([0x55, 0x04, arc]): f"2.5.4.{arc}" for arc in (3, 5, 6, 7, 8, 9, 10, 11, 12, 42, 46)
}


def read_plain(name: bytes) -> Rdns | None:
    """The RDNs of the DER Name `name` if it is plain (see above), else None."""
    header = der.header
    rdns: list[tuple[Attribute, ...]] = []
    try:
        position, end = header(name, 0, len(name), der.SEQUENCE)
        if end != len(name):
            return None
        while position < end:
            if len(rdns) == MAX_PLAIN_RDNS:
                return None
            # SET { SEQUENCE { type, value } }: exactly one attribute.
            # Nearly always every length is short (X.690 §8.1.3.4): read
            # the four headers in place.
            set_length = name[position + 1]
            type_length = name[position + 5]
            value_at = position + 6 + type_length
            value_length = name[value_at + 1]
            stop = value_at + 2 + value_length
            if (
                name[position] == SET
                and set_length == name[position + 3] + 2
                and name[position + 2] == der.SEQUENCE
                and name[position + 4] == OBJECT_IDENTIFIER
                and set_length | type_length | value_length < 0x80
                and stop == position + 2 + set_length <= end
            ):
                type_contents = name[position + 6 : value_at]
                value_tag = name[value_at]
                value_start = value_at + 2
            else:
                start, stop = header(name, position, end, SET)
                start, attribute_end = header(name, start, stop, der.SEQUENCE)
                type_start, value_at = header(name, start, attribute_end, OBJECT_IDENTIFIER)
                value_tag = name[value_at]
                value_start, value_end = header(name, value_at, attribute_end, -1)
                if value_end != stop or attribute_end != stop:
                    return None
                type_contents = name[type_start:value_at]
            if value_tag not in _STRING_TAGS:
                return None
            oid = _KNOWN_TYPES.get(type_contents) or der.object_identifier(type_contents)
            if oid is None:
                return None
            value = name[value_start:stop]
            limits = _LENGTH_LIMITS.get(oid)
            if limits is not None and not limits[0] <= len(value) <= limits[1]:
                return None
            rdns.append(((oid, value.decode("utf-8")),))
            position = stop
    except (der.DerError, IndexError, UnicodeDecodeError):
        return None
    return tuple(rdns)


def from_cryptography(name: x509.Name) -> Rdns:
    return tuple(
        tuple((attribute.oid.dotted_string, attribute.value) for attribute in rdn)
        for rdn in name.rdns
    )


def normalized(rdns: Rdns) -> names.NormalizedName:
    """RFC 5280 §7.1 comparison form (see `names.normalize_value`)."""
    return tuple(
        frozenset((oid, names.normalize_value(value)) for oid, value in rdn) for rdn in rdns
    )


def values_of(rdns: Rdns, oid: str) -> tuple[str, ...]:
    return tuple(str(value) for rdn in rdns for kind, value in rdn if kind == oid)


def rfc4514(rdns: Rdns) -> str:
    """RFC 4514 §2 text, most significant RDN last, exactly as `cryptography`'s
    `Name.rfc4514_string()` writes it."""
    parts = []
    for rdn in reversed(rdns):
        texts = [f"{_SHORT_NAMES.get(oid, oid)}={_escape(value)}" for oid, value in rdn]
        parts.append(texts[0] if len(texts) == 1 else "+".join(texts))
    return ",".join(parts)


# A value RFC 4514 §2.4 leaves as it is: no special character anywhere, and
# no space or "#" where position matters.
_PLAIN = re.compile(r"[^\s#\\\"+,;<>\0](?:[^\\\"+,;<>\0]*[^\s\\\"+,;<>\0])?")


def _escape(value: str | bytes) -> str:
    """RFC 4514 §2.4."""
    if isinstance(value, bytes):
        return "#" + value.hex() if value else ""
    if not value:
        return ""
    if _PLAIN.fullmatch(value):
        return value
    for special in ("\\", '"', "+", ",", ";", "<", ">"):
        value = value.replace(special, "\\" + special)
    value = value.replace("\0", "\\00")
    if value[0] == "#" or (value[0] == " " and len(value) > 1):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value
