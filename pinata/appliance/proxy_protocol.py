"""The PROXY protocol header (HAProxy's specification, versions 1 and 2), parsed.

A load balancer in front of the appliance opens its own TCP connection to
us and starts it with one header naming the client it relays. This module
only reads that header: `parse_proxy_header` takes the bytes received so far
and returns `None` (not enough yet), a typed header, or raises
`ProxyHeaderError` with one named `ProxyRefusal`. It does no I/O and keeps no
state; whom to believe is the caller's decision (`pinata.appliance.proxied`).

Bounds: a version 1 line is at most 107 bytes with its CRLF (spec §2.1); a
version 2 header at most `MAX_V2_HEADER` bytes, far above what HAProxy sends
(16 + 12 for TCP over IPv4, 16 + 36 for IPv6, plus any TLVs it is told to add)
and above the 536 bytes the spec (§2) designs both formats to fit in.

Strictness, where the spec leaves a choice:
- §2.1: "Any sequence which does not exactly match the protocol must be
  discarded": single spaces, no leading zeros, canonical addresses, and a
  bare CR or LF is refused as soon as it is seen.
- §2.2: unassigned commands, families and protocols are refused; DGRAM is
  refused too (we relay nothing but TCP); a CRC32C TLV, when present, must
  verify (§2.2.3), and TLVs must tile the rest of the header exactly.
- `PROXY UNKNOWN`, AF_UNSPEC and AF_UNIX give `ProxyUnknown`: the sender
  could not name the client. The spec lets a receiver fall back to the real
  endpoints; the appliance refuses instead (see `proxied`).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Final

V1_PREFIX: Final = b"PROXY "
# §2.1: 107 characters including the CRLF is the longest valid line.
V1_MAX_LINE: Final = 107
# §2.2: the 12-byte signature, then version/command, family/protocol, length.
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED: Final = 16
MAX_V2_HEADER: Final = 1024
# Longer than any prefix we must see before deciding which version it is.
SIGNATURE_PROBE: Final = len(V2_SIGNATURE)

_V2_VERSION = 0x2
_LOCAL, _PROXY = 0x0, 0x1
_AF_UNSPEC, _AF_INET, _AF_INET6, _AF_UNIX = 0x0, 0x1, 0x2, 0x3
_UNSPEC, _STREAM, _DGRAM = 0x0, 0x1, 0x2
# Address block lengths per family (§2.2): two addresses, then two ports for IP.
_ADDRESS_LENGTH = {_AF_INET: 4 + 4 + 2 + 2, _AF_INET6: 16 + 16 + 2 + 2, _AF_UNIX: 108 + 108}
_TLV_HEADER = 3
PP2_TYPE_CRC32C: Final = 0x03
PP2_TYPE_UNIQUE_ID: Final = 0x05
# §2.2.5: "an opaque byte sequence of up to 128 bytes".
MAX_UNIQUE_ID: Final = 128


class ProxyRefusal(enum.Enum):
    """Why a header was refused; the name is what logs and counters show."""

    no_signature = "neither a version 1 nor a version 2 signature"
    v1_too_long = "no CRLF within the first 107 bytes"
    v1_bad_line_end = "a CR or LF that is not the line's CRLF"
    v1_bad_character = "a byte that is not printable US-ASCII"
    v1_bad_protocol = "protocol is not TCP4, TCP6 or UNKNOWN"
    v1_bad_fields = "not exactly four fields separated by single spaces"
    v1_bad_address = "an address that is not canonical for the family"
    v1_bad_port = "a port that is not a decimal 0-65535 without leading zeros"
    v2_bad_version = "version nibble is not 2"
    v2_bad_command = "command is neither LOCAL nor PROXY"
    v2_bad_family = "unassigned address family or transport protocol"
    v2_not_stream = "a datagram protocol on a stream connection"
    v2_too_long = "header longer than we accept"
    v2_short_address = "length shorter than the family's address block"
    v2_bad_tlv = "TLVs do not tile the rest of the header"
    v2_bad_crc32c = "CRC32C TLV malformed, repeated or not matching"
    v2_bad_unique_id = "unique ID longer than 128 bytes"


class ProxyHeaderError(Exception):
    """A header that is not exactly the protocol; `reason` names the rule broken."""

    def __init__(self, reason: ProxyRefusal) -> None:
        super().__init__(f"{reason.name}: {reason.value}")
        self.reason = reason


Endpoint = tuple[str, int]


@dataclass(frozen=True)
class ProxiedConnection:
    """A PROXY command: the client's endpoint (`source`) and the one it reached."""

    version: int
    source: Endpoint
    destination: Endpoint
    # Bytes of the header; what follows is the client's own stream.
    length: int


@dataclass(frozen=True)
class ProxyLocal:
    """A v2 LOCAL command: the proxy's own connection (a health check)."""

    version: int
    length: int


@dataclass(frozen=True)
class ProxyUnknown:
    """`PROXY UNKNOWN`, or v2 PROXY over AF_UNSPEC or AF_UNIX: no IP endpoint given."""

    version: int
    length: int


ProxyHeader = ProxiedConnection | ProxyLocal | ProxyUnknown


def parse_proxy_header(data: bytes) -> ProxyHeader | None:
    """The header at the start of `data`, or None if more bytes are needed.

    Takes the bytes received so far on a connection (any length, any value).
    Returns the header (its `length` says where the client's bytes start) or
    None when `data` is a valid beginning of a header but not a whole one.
    Raises `ProxyHeaderError` as soon as `data` cannot begin a valid header.
    """
    probe = data[:SIGNATURE_PROBE]
    if V2_SIGNATURE.startswith(probe) and probe:
        return _parse_v2(data) if len(data) >= SIGNATURE_PROBE else None
    if data[:len(V1_PREFIX)] == V1_PREFIX[:len(data)]:
        return _parse_v1(data) if data else None
    raise ProxyHeaderError(ProxyRefusal.no_signature)


def format_v1(source: Endpoint, destination: Endpoint) -> bytes:
    """The version 1 line for a TCP connection from `source` to `destination`.

    Takes numeric addresses of one family; returns the line with its CRLF,
    in the canonical form `parse_proxy_header` accepts (IPv6 written out in
    full, which §2.1's grammar allows). Raises ValueError otherwise.
    """
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    if src.version != dst.version:
        raise ValueError("source and destination are of different families")
    family = "TCP4" if src.version == 4 else "TCP6"
    line = f"PROXY {family} {src.exploded} {dst.exploded} {source[1]} {destination[1]}\r\n"
    return line.encode("ascii")


# --- version 1 -------------------------------------------------------------------


def _parse_v1(data: bytes) -> ProxyHeader | None:
    window = data[:V1_MAX_LINE]
    end = window.find(b"\r\n")
    line = window if end < 0 else window[:end]
    if end < 0 and line.endswith(b"\r"):
        line = line[:-1]  # perhaps the first half of the CRLF: wait for the next byte
    for byte in line:
        if byte in (0x0D, 0x0A):
            raise ProxyHeaderError(ProxyRefusal.v1_bad_line_end)
        if not 0x20 <= byte <= 0x7E:
            raise ProxyHeaderError(ProxyRefusal.v1_bad_character)
    if end < 0:
        if len(data) >= V1_MAX_LINE:
            raise ProxyHeaderError(ProxyRefusal.v1_too_long)
        return None
    return _v1_line(line.decode("ascii"), end + 2)


def _v1_line(line: str, length: int) -> ProxyHeader:
    fields = line.split(" ")
    # fields[0] is "PROXY", checked by the caller's prefix match.
    protocol = fields[1] if len(fields) > 1 else ""
    if protocol == "UNKNOWN":
        # §2.1: "the receiver must ignore anything presented before the CRLF".
        return ProxyUnknown(version=1, length=length)
    if protocol not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(ProxyRefusal.v1_bad_protocol)
    if len(fields) != 6:
        raise ProxyHeaderError(ProxyRefusal.v1_bad_fields)
    _, _, source, destination, source_port, destination_port = fields
    parse = _v1_ipv4 if protocol == "TCP4" else _v1_ipv6
    return ProxiedConnection(
        version=1,
        source=(parse(source), _v1_port(source_port)),
        destination=(parse(destination), _v1_port(destination_port)),
        length=length,
    )


def _v1_decimal(text: str, maximum: int) -> int | None:
    # §2.1: "Heading zeroes are not permitted ... to avoid any possible
    # confusion with octal numbers."
    if not text or len(text) > len(str(maximum)) or not text.isascii() or not text.isdigit():
        return None
    if len(text) > 1 and text[0] == "0":
        return None
    value = int(text)
    return value if value <= maximum else None


def _v1_port(text: str) -> int:
    value = _v1_decimal(text, 65535)
    if value is None:
        raise ProxyHeaderError(ProxyRefusal.v1_bad_port)
    return value


def _v1_ipv4(text: str) -> str:
    parts = text.split(".")
    if len(parts) != 4 or any(_v1_decimal(p, 255) is None for p in parts):
        raise ProxyHeaderError(ProxyRefusal.v1_bad_address)
    return text


_HEX_OR_COLON = frozenset("0123456789abcdefABCDEF:")


def _v1_ipv6(text: str) -> str:
    # §2.1: groups of hex digits and colons, one "::" at most, 128 bits in
    # all. No dotted IPv4 tail and no zone: neither is in the grammar.
    if not text or len(text) > 39 or not set(text) <= _HEX_OR_COLON:
        raise ProxyHeaderError(ProxyRefusal.v1_bad_address)
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        raise ProxyHeaderError(ProxyRefusal.v1_bad_address) from None


# --- version 2 -------------------------------------------------------------------


def _parse_v2(data: bytes) -> ProxyHeader | None:
    # Judge each fixed byte as soon as it arrives (§2.2: abort early).
    if len(data) > 12 and data[12] >> 4 != _V2_VERSION:
        raise ProxyHeaderError(ProxyRefusal.v2_bad_version)
    if len(data) > 12 and data[12] & 0x0F not in (_LOCAL, _PROXY):
        raise ProxyHeaderError(ProxyRefusal.v2_bad_command)
    if len(data) < V2_FIXED:
        return None
    length = V2_FIXED + int.from_bytes(data[14:16], "big")
    if length > MAX_V2_HEADER:
        raise ProxyHeaderError(ProxyRefusal.v2_too_long)
    if len(data) < length:
        return None
    header = data[:length]
    command, family, protocol = header[12] & 0x0F, header[13] >> 4, header[13] & 0x0F
    if command == _LOCAL:
        # §2.2: LOCAL discards "the protocol block including the family".
        return ProxyLocal(version=2, length=length)
    if family > _AF_UNIX or protocol > _DGRAM:
        raise ProxyHeaderError(ProxyRefusal.v2_bad_family)
    if protocol == _DGRAM:
        raise ProxyHeaderError(ProxyRefusal.v2_not_stream)
    if family == _AF_UNSPEC or protocol == _UNSPEC:
        # §2.2: "the receiver should ignore address information"; its layout
        # is unknown, so neither are TLVs looked for in it.
        return ProxyUnknown(version=2, length=length)
    if length - V2_FIXED < _ADDRESS_LENGTH[family]:
        raise ProxyHeaderError(ProxyRefusal.v2_short_address)
    _check_tlvs(header, V2_FIXED + _ADDRESS_LENGTH[family])
    if family == _AF_UNIX:
        return ProxyUnknown(version=2, length=length)
    return _v2_addresses(header, family, length)


def _v2_addresses(header: bytes, family: int, length: int) -> ProxiedConnection:
    size = 4 if family == _AF_INET else 16
    block = header[V2_FIXED:V2_FIXED + 2 * size + 4]
    make = ipaddress.IPv4Address if family == _AF_INET else ipaddress.IPv6Address
    ports = block[2 * size:]
    return ProxiedConnection(
        version=2,
        source=(str(make(block[:size])), int.from_bytes(ports[:2], "big")),
        destination=(str(make(block[size:2 * size])), int.from_bytes(ports[2:], "big")),
        length=length,
    )


def _check_tlvs(header: bytes, start: int) -> None:
    """The TLVs after the address block must tile the header exactly (§2.2)."""
    position, crc_at = start, -1
    while position < len(header):
        if len(header) - position < _TLV_HEADER:
            raise ProxyHeaderError(ProxyRefusal.v2_bad_tlv)
        kind = header[position]
        size = int.from_bytes(header[position + 1:position + 3], "big")
        value_at = position + _TLV_HEADER
        if value_at + size > len(header):
            raise ProxyHeaderError(ProxyRefusal.v2_bad_tlv)
        if kind == PP2_TYPE_CRC32C:
            if size != 4 or crc_at >= 0:
                raise ProxyHeaderError(ProxyRefusal.v2_bad_crc32c)
            crc_at = value_at
        if kind == PP2_TYPE_UNIQUE_ID and size > MAX_UNIQUE_ID:
            raise ProxyHeaderError(ProxyRefusal.v2_bad_unique_id)
        position = value_at + size
    if crc_at >= 0:
        # §2.2.3: the checksum of the whole header with its own field zeroed.
        expected = int.from_bytes(header[crc_at:crc_at + 4], "big")
        zeroed = header[:crc_at] + b"\x00\x00\x00\x00" + header[crc_at + 4:]
        if crc32c(zeroed) != expected:
            raise ProxyHeaderError(ProxyRefusal.v2_bad_crc32c)


def _crc32c_table() -> tuple[int, ...]:
    # RFC 4960 Appendix B: CRC-32C (Castagnoli), reflected polynomial 0x82F63B78.
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32C_TABLE: Final = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C of `data` (RFC 4960 Appendix B; RFC 3720 §B.4 gives test vectors)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
