"""Just enough DER to find the raw pieces of a certificate that `cryptography`
does not hand out: the inner signature AlgorithmIdentifier (RFC 5280 §4.1.2.3
says it MUST equal the outer one, §4.1.1.2), and the exact bytes of issuer,
subject and subjectPublicKeyInfo, which we compare byte for byte.

Total: every function takes arbitrary bytes and returns a value or raises
`DerError`. Definite lengths only (X.690 §10.1), at most four length octets.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
INTEGER = 0x02
CONTEXT_0 = 0xA0


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


def expect(data: bytes, offset: int, limit: int, tag: int) -> Tlv:
    tlv = read_tlv(data, offset, limit)
    if tlv.tag != tag:
        raise DerError(f"expected tag {tag:#04x}, found {tlv.tag:#04x}")
    return tlv


@dataclass(frozen=True, slots=True)
class CertificateFrame:
    """Raw DER of the parts of a Certificate (RFC 5280 §4.1) we compare."""

    tbs_signature: bytes
    signature_algorithm: bytes
    issuer: bytes
    subject: bytes
    subject_public_key_info: bytes


def _header(data: bytes, offset: int, limit: int, tag: int) -> tuple[int, int]:
    """(content start, end) of the element at `offset`; `tag` -1 takes any.
    The hot path of `certificate_frame`, so no Tlv is built."""
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
    outer_start, outer_end = _header(der, 0, size, SEQUENCE)
    if outer_end != size:
        raise DerError("trailing bytes after the certificate")
    tbs_start, tbs_end = _header(der, outer_start, outer_end, SEQUENCE)
    _, algorithm_end = _header(der, tbs_end, outer_end, SEQUENCE)
    position = tbs_start
    if position < tbs_end and der[position] == CONTEXT_0:  # [0] EXPLICIT Version
        position = _header(der, position, tbs_end, CONTEXT_0)[1]
    position = _header(der, position, tbs_end, INTEGER)[1]  # serialNumber
    # signature, issuer, validity, subject, subjectPublicKeyInfo
    bounds: list[int] = [position]
    for _ in range(5):
        position = _header(der, position, tbs_end, SEQUENCE)[1]
        bounds.append(position)
    return CertificateFrame(
        tbs_signature=der[bounds[0] : bounds[1]],
        signature_algorithm=der[tbs_end:algorithm_end],
        issuer=der[bounds[1] : bounds[2]],
        subject=der[bounds[3] : bounds[4]],
        subject_public_key_info=der[bounds[4] : bounds[5]],
    )


def algorithm_identifier(spki: bytes) -> bytes:
    """The raw AlgorithmIdentifier at the head of a SubjectPublicKeyInfo."""
    outer = expect(spki, 0, len(spki), SEQUENCE)
    algorithm = expect(spki, outer.content_start, outer.end, SEQUENCE)
    return spki[algorithm.start : algorithm.end]
