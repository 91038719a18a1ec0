"""Just enough DER to find the raw pieces of a certificate: the inner
signature AlgorithmIdentifier (RFC 5280 §4.1.2.3 says it MUST equal the
outer one, §4.1.1.2), the exact bytes of issuer, subject and
subjectPublicKeyInfo, which we compare byte for byte, and the TBS, signature,
version, serial number and extensions, which `cryptography` hands out only
slowly (its TBS, name and extension accessors each cost about as much as
this whole frame).

Total: every function takes arbitrary bytes and returns a value or raises
`DerError` (`body`, `elements` and `object_identifier` return None instead).
Definite lengths only (X.690 §10.1), at most four length octets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

SEQUENCE = 0x30
INTEGER = 0x02
BIT_STRING = 0x03
CONTEXT_0 = 0xA0
CONTEXT_3 = 0xA3
# X.509 v3 as `[0] EXPLICIT Version` (RFC 5280 §4.1.2.1).
VERSION_3 = bytes.fromhex("a003020102")


class DerError(ValueError):
    """The bytes are not the DER shape we expected."""


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    # Offsets into the buffer: the whole element, and its contents.
    start: int
    content_start: int
    end: int


def read_tlv(data: bytes, offset: int, limit: int) -> Tlv:
    """The element at `offset`, which must end at or before `limit`."""
    if offset + 2 > limit:
        raise DerError("truncated element header")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers do not occur in a certificate's frame")
    first = data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        # X.690 §10.1: the shortest form; 0x80 (indefinite) is BER only.
        if count == 0 or count > 4 or position + count > limit:
            raise DerError("bad length octets")
        length = int.from_bytes(data[position : position + count], "big")
        if length < 0x80 or data[position] == 0:
            raise DerError("non-minimal length")
        position += count
    end = position + length
    if end > limit:
        raise DerError("element overruns its container")
    return Tlv(tag, offset, position, end)


class CertificateFrame(NamedTuple):
    """Raw DER of the parts of a Certificate (RFC 5280 §4.1) we compare or
    read ourselves. The last two are only a fast path: None where the shape
    is not the plain one, and the caller then asks `cryptography`. (A named
    tuple: built once per certificate, it must be cheap.)"""

    tbs_signature: bytes
    signature_algorithm: bytes
    issuer: bytes
    subject: bytes
    subject_public_key_info: bytes
    key_algorithm: bytes  # the AlgorithmIdentifier at the head of the key
    tbs: bytes
    version: bytes  # the whole [0] element; empty when absent (v1)
    serial: bytes  # contents of the INTEGER
    # Contents of the `[3] EXPLICIT Extensions` element; b"" when absent,
    # None when something other than extensions follows the key.
    extensions: bytes | None
    signature: bytes | None  # the BIT STRING's octets, when it has no unused bits


def header(data: bytes, offset: int, limit: int, tag: int) -> tuple[int, int]:
    """(content start, end) of the element at `offset`; `tag` -1 takes any.
    The hot path of the frame and of the fast readers, so no Tlv is built."""
    if offset + 2 > limit:
        raise DerError("truncated element header")
    if tag >= 0 and data[offset] != tag:
        raise DerError(f"expected tag {tag:#04x}, found {data[offset]:#04x}")
    first = data[offset + 1]
    if first < 0x80:
        position = offset + 2
        end = position + first
    elif first == 0x82 and offset + 4 <= limit and data[offset + 2]:
        # Two length octets, the common case for certificates (X.690 §10.1
        # minimal: the first octet is non-zero).
        position = offset + 4
        end = position + (data[offset + 2] << 8 | data[offset + 3])
    else:
        tlv = read_tlv(data, offset, limit)
        position, end = tlv.content_start, tlv.end
    if end > limit:
        raise DerError("element overruns its container")
    return position, end


def certificate_frame(der: bytes) -> CertificateFrame:
    size = len(der)
    outer_start, outer_end = header(der, 0, size, SEQUENCE)
    if outer_end != size:
        raise DerError("trailing bytes after the certificate")
    tbs_start, tbs_end = header(der, outer_start, outer_end, SEQUENCE)
    _, algorithm_end = header(der, tbs_end, outer_end, SEQUENCE)
    position = tbs_start
    version_end = position
    if position < tbs_end and der[position] == CONTEXT_0:  # [0] EXPLICIT Version
        position = version_end = header(der, position, tbs_end, CONTEXT_0)[1]
    serial_start, signature_start = header(der, position, tbs_end, INTEGER)  # serialNumber
    issuer_start = header(der, signature_start, tbs_end, SEQUENCE)[1]
    validity_start = header(der, issuer_start, tbs_end, SEQUENCE)[1]
    subject_start = header(der, validity_start, tbs_end, SEQUENCE)[1]
    key_start = header(der, subject_start, tbs_end, SEQUENCE)[1]
    key_algorithm_start, key_end = header(der, key_start, tbs_end, SEQUENCE)
    key_algorithm_end = header(der, key_algorithm_start, key_end, SEQUENCE)[1]
    # Positional, in field order: this runs for every certificate.
    return CertificateFrame(
        der[signature_start:issuer_start],
        der[tbs_end:algorithm_end],
        der[issuer_start:validity_start],
        der[subject_start:key_start],
        der[key_start:key_end],
        der[key_algorithm_start:key_algorithm_end],
        der[outer_start:tbs_end],
        der[tbs_start:version_end],
        der[serial_start:signature_start],
        _extensions(der, key_end, tbs_end),
        _signature(der, algorithm_end, outer_end),
    )


def _extensions(der: bytes, position: int, end: int) -> bytes | None:
    """The contents of `[3] EXPLICIT`, if it is all that follows the key
    (issuerUniqueID and subjectUniqueID, RFC 5280 §4.1.2.8, send us to the
    slow path)."""
    if position == end:
        return b""
    if der[position] != CONTEXT_3:
        return None
    try:
        start, stop = header(der, position, end, CONTEXT_3)
    except DerError:
        return None
    return der[start:stop] if stop == end else None


def _signature(der: bytes, position: int, end: int) -> bytes | None:
    try:
        start, stop = header(der, position, end, BIT_STRING)
    except DerError:
        return None
    if stop != end or start == stop or der[start] != 0:
        return None
    return der[start + 1 : stop]


def body(data: bytes, tag: int) -> bytes | None:
    """The contents of `data` if it is exactly one element with `tag`; None
    otherwise. The non-raising reader of the fast paths."""
    try:
        start, end = header(data, 0, len(data), tag)
    except DerError:
        return None
    return data[start:end] if end == len(data) else None


def elements(data: bytes, limit: int = 256) -> list[tuple[int, bytes]] | None:
    """The (tag, contents) of each element that `data` is made of, or None if
    it is not a run of at most `limit` well-formed elements."""
    found: list[tuple[int, bytes]] = []
    position, size = 0, len(data)
    try:
        while position < size:
            if len(found) == limit:
                return None
            start, end = header(data, position, size, -1)
            found.append((data[position], data[start:end]))
            position = end
    except DerError:
        return None
    return found


def object_identifier(contents: bytes) -> str | None:
    """Dotted text of an OBJECT IDENTIFIER's contents (X.690 §8.19), or None
    if the encoding is not minimal DER."""
    if not contents or len(contents) > 64 or contents[-1] & 0x80:
        return None
    arcs: list[int] = []
    value = 0
    fresh = True
    for octet in contents:
        if fresh and octet == 0x80:  # X.690 §8.19.2: no leading 0x80
            return None
        value = value << 7 | (octet & 0x7F)
        fresh = not octet & 0x80
        if fresh:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])
