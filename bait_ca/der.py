"""A tiny DER encoder (ITU-T X.690 §10) and a bounded TLV reader.

Only the forge needs it: `cryptography` refuses to build certificates that are
wrong on purpose (MD5 or SHA-1 signatures, duplicate extensions, version 1
with extensions, an inner signature algorithm that differs from the outer
one), so those are assembled here field by field and signed by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Universal tags (X.690 §8; X.680 §8.6).
BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
UTF8_STRING = 0x0C
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
SEQUENCE = 0x30
SET = 0x31

# No certificate we build or read comes close; a longer length is an error.
MAX_LENGTH = 1 << 24


class DerError(ValueError):
    """Bytes that are not the DER this module expects."""


def length(n: int) -> bytes:
    """Definite length, short form below 128, else long form (X.690 §8.1.3, §10.1)."""
    if n < 0 or n > MAX_LENGTH:
        raise DerError(f"length {n} out of range")
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + length(len(content)) + content


def sequence(*items: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(items))


def set_of(*items: bytes) -> bytes:
    # X.690 §11.6: DER orders SET OF components by their encodings.
    return tlv(SET, b"".join(sorted(items)))


def integer(n: int) -> bytes:
    # X.690 §8.3: two's complement, minimal octets.
    size = (n.bit_length() + 8) // 8 if n >= 0 else ((-n - 1).bit_length() + 8) // 8
    return tlv(INTEGER, n.to_bytes(size, "big", signed=True))


def boolean(value: bool) -> bytes:
    # X.690 §11.1: TRUE is 0xFF in DER.
    return tlv(BOOLEAN, b"\xff" if value else b"\x00")


def null() -> bytes:
    return tlv(NULL, b"")


def octet_string(data: bytes) -> bytes:
    return tlv(OCTET_STRING, data)


def bit_string(data: bytes, unused_bits: int = 0) -> bytes:
    return tlv(BIT_STRING, bytes([unused_bits]) + data)


def utf8_string(text: str) -> bytes:
    return tlv(UTF8_STRING, text.encode("utf-8"))


def _base128(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def object_identifier(dotted: str) -> bytes:
    """X.690 §8.19: the first two arcs share one subidentifier."""
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise DerError(f"bad object identifier {dotted}")
    body = _base128(40 * arcs[0] + arcs[1]) + b"".join(_base128(a) for a in arcs[2:])
    return tlv(OBJECT_IDENTIFIER, body)


def explicit(number: int, content: bytes) -> bytes:
    """A constructed context-specific tag [number] EXPLICIT around `content`."""
    if not 0 <= number <= 30:
        raise DerError("only low tag numbers are supported")
    return tlv(0xA0 | number, content)


def time(moment: datetime) -> bytes:
    """RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, in Zulu."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if 1950 <= moment.year < 2050:
        return tlv(UTC_TIME, moment.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return tlv(GENERALIZED_TIME, moment.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def read_tlv(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """One element at `offset`: (tag, content, offset after it). Single-byte tags only."""
    if offset + 2 > len(data):
        raise DerError("truncated element")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not supported")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DerError("bad length")
        size = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if size > MAX_LENGTH or pos + size > len(data):
        raise DerError("element overruns its container")
    return tag, data[pos : pos + size], pos + size


def read_sequence(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, full encoding) of each element of one SEQUENCE spanning all of `data`."""
    tag, content, end = read_tlv(data)
    if tag != SEQUENCE or end != len(data):
        raise DerError("not exactly one SEQUENCE")
    items: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(content):
        item_tag, _, item_end = read_tlv(content, pos)
        items.append((item_tag, content[pos:item_end]))
        pos = item_end
    return items
