"""Distinguished names as plain values: (attribute type, value) per RDN.

A Name (RFC 5280 §4.1.2.4) as `cryptography` decoded it, lifted into plain
values once, so that comparison and RFC 4514 text are written once.
"""

from __future__ import annotations

import re

from cryptography import x509

from pinata.x509 import names

# (dotted OID, value): str, or bytes for a BIT STRING (x500UniqueIdentifier).
Attribute = tuple[str, str | bytes]
Rdns = tuple[tuple[Attribute, ...], ...]

COMMON_NAME = "2.5.4.3"
COUNTRY_NAME = "2.5.4.6"
EMAIL_ADDRESS = "1.2.840.113549.1.9.1"
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


def from_cryptography(name: x509.Name) -> Rdns:
    """Each RDN's (type, value) pairs, in order."""
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
