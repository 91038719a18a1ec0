"""The PROXY protocol parser: valid headers of both versions, every refusal
by name, incremental input, and totality on arbitrary bytes."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinata.appliance.proxy_protocol import (
    MAX_V2_HEADER,
    V1_MAX_LINE,
    V2_SIGNATURE,
    ProxiedConnection,
    ProxyHeaderError,
    ProxyLocal,
    ProxyRefusal,
    ProxyUnknown,
    crc32c,
    format_v1,
    parse_proxy_header,
)

SIG = V2_SIGNATURE


def v2(command: int = 0x1, fam: int = 0x11, body: bytes = b"", version: int = 0x2,
       length: int | None = None) -> bytes:
    """A version 2 header from its parts (the spec's §2.2 layout)."""
    size = len(body) if length is None else length
    return SIG + bytes([version << 4 | command, fam]) + size.to_bytes(2, "big") + body


def inet4(src: str = "192.0.2.1", dst: str = "198.51.100.2", sport: int = 56324,
          dport: int = 443) -> bytes:
    return (ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
            + sport.to_bytes(2, "big") + dport.to_bytes(2, "big"))


def inet6(src: str = "2001:db8::1", dst: str = "2001:db8::2", sport: int = 1,
          dport: int = 65535) -> bytes:
    return (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
            + sport.to_bytes(2, "big") + dport.to_bytes(2, "big"))


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + len(value).to_bytes(2, "big") + value


def with_crc(command: int, fam: int, body_before_crc: bytes, after: bytes = b"") -> bytes:
    """A v2 header whose CRC32C TLV is computed as §2.2.3 says a sender does."""
    zeroed = v2(command, fam, body_before_crc + tlv(0x03, b"\x00" * 4) + after)
    crc = crc32c(zeroed).to_bytes(4, "big")
    return v2(command, fam, body_before_crc + tlv(0x03, crc) + after)


# --- valid headers ----------------------------------------------------------------


def test_v1_tcp4_names_the_client_and_where_its_bytes_start() -> None:
    data = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"
    header = parse_proxy_header(data)
    assert header == ProxiedConnection(1, ("192.168.0.1", 56324), ("192.168.0.11", 443), 47)
    assert data[header.length:] == b"GET / HTTP/1.1\r\n"


def test_v1_tcp6_and_the_longest_lines() -> None:
    full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    line = f"PROXY TCP6 {full} {full} 65535 65535\r\n".encode()
    assert len(line) == 104  # the spec's figure for TCP6
    header = parse_proxy_header(line)
    assert isinstance(header, ProxiedConnection)
    assert header.source == (full, 65535) and header.length == 104
    assert parse_proxy_header(b"PROXY TCP6 ::1 ::2 0 1\r\n") == ProxiedConnection(
        1, ("::1", 0), ("::2", 1), 24)
    worst = f"PROXY UNKNOWN {full} {full} 65535 65535\r\n".encode()
    assert len(worst) == V1_MAX_LINE
    assert parse_proxy_header(worst) == ProxyUnknown(1, V1_MAX_LINE)
    assert parse_proxy_header(b"PROXY UNKNOWN\r\n\x16\x03\x01") == ProxyUnknown(1, 15)


def test_v2_tcp4_and_tcp6() -> None:
    header = parse_proxy_header(v2(body=inet4()) + b"\x16\x03\x01")
    assert header == ProxiedConnection(2, ("192.0.2.1", 56324), ("198.51.100.2", 443), 28)
    header = parse_proxy_header(v2(fam=0x21, body=inet6()))
    assert header == ProxiedConnection(2, ("2001:db8::1", 1), ("2001:db8::2", 65535), 52)


def test_v2_local_skips_whatever_block_it_carries() -> None:
    # §2.2: receivers "must not assume zero is presented for LOCAL connections",
    # and the family is ignored, even an unassigned one.
    assert parse_proxy_header(v2(command=0x0, fam=0x00)) == ProxyLocal(2, 16)
    assert parse_proxy_header(v2(command=0x0, fam=0x11, body=inet4())) == ProxyLocal(2, 28)
    assert parse_proxy_header(v2(command=0x0, fam=0xFF, body=b"x" * 7)) == ProxyLocal(2, 23)


def test_v2_without_an_ip_client_is_unknown() -> None:
    assert parse_proxy_header(v2(fam=0x00, body=b"whatever")) == ProxyUnknown(2, 24)
    assert parse_proxy_header(v2(fam=0x31, body=b"\x00" * 216)) == ProxyUnknown(2, 232)
    assert parse_proxy_header(v2(fam=0x10, body=b"")) == ProxyUnknown(2, 16)


def test_v2_tlvs_are_skipped_and_a_crc32c_is_checked() -> None:
    body = inet4() + tlv(0x04, b"") + tlv(0x05, b"u" * 128) + tlv(0xE0, b"custom")
    assert isinstance(parse_proxy_header(v2(body=body)), ProxiedConnection)
    good = with_crc(0x1, 0x11, inet4(), tlv(0x02, b"example.org"))
    assert isinstance(parse_proxy_header(good), ProxiedConnection)
    flipped = bytearray(good)
    flipped[-1] ^= 0x01  # one bit of the authority, after the checksum
    with pytest.raises(ProxyHeaderError) as caught:
        parse_proxy_header(bytes(flipped))
    assert caught.value.reason is ProxyRefusal.v2_bad_crc32c


def test_format_v1_refuses_mixed_families() -> None:
    with pytest.raises(ValueError):
        format_v1(("127.0.0.1", 1), ("::1", 2))


def test_the_bounds_are_107_and_1024_bytes() -> None:
    padded = v2(body=inet4() + tlv(0x04, b"\x00" * (MAX_V2_HEADER - 16 - 12 - 3)))
    assert len(padded) == MAX_V2_HEADER == 1024
    assert isinstance(parse_proxy_header(padded), ProxiedConnection)
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(v2(body=inet4() + tlv(0x04, b"\x00" * (MAX_V2_HEADER - 16 - 12 - 2))))
    line = b"PROXY UNKNOWN " + b"x" * (V1_MAX_LINE - 16) + b"\r\n"
    assert len(line) == V1_MAX_LINE == 107
    assert parse_proxy_header(line) == ProxyUnknown(1, 107)
    assert parse_proxy_header(line[:-2]) is None
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(line[:-2] + b"x\r\n")


def test_crc32c_matches_the_rfc_3720_vectors() -> None:
    assert crc32c(b"\x00" * 32) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(b"123456789") == 0xE3069283


# --- incremental input --------------------------------------------------------------

VALID = [
    b"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n",
    b"PROXY UNKNOWN\r\n",
    v2(body=inet4()),
    v2(fam=0x21, body=inet6() + tlv(0x04, b"pad")),
    v2(command=0x0, fam=0x00),
]


@pytest.mark.parametrize("header", VALID)
def test_every_strict_prefix_asks_for_more(header: bytes) -> None:
    for cut in range(len(header)):
        assert parse_proxy_header(header[:cut]) is None, cut
    assert parse_proxy_header(header) is not None


# --- every refusal, by name ---------------------------------------------------------

MALFORMED: list[tuple[bytes, ProxyRefusal]] = [
    (b"\x16\x03\x01\x00", ProxyRefusal.no_signature),
    (b"GET / HTTP/1.1\r\n", ProxyRefusal.no_signature),
    (b"PROXYTCP4", ProxyRefusal.no_signature),
    (b"proxy TCP4", ProxyRefusal.no_signature),
    (b"\r\n\r\n\x00\r\nQUIX\n", ProxyRefusal.no_signature),
    (b"PROXY " + b"x" * (V1_MAX_LINE - 6), ProxyRefusal.v1_too_long),
    (b"PROXY UNKNOWN " + b"a" * 100 + b"\r\n", ProxyRefusal.v1_too_long),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ProxyRefusal.v1_bad_line_end),
    (b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n", ProxyRefusal.v1_bad_line_end),
    (b"PROXY UNKNOWN\n", ProxyRefusal.v1_bad_line_end),
    (b"PROXY TCP4 1.2.3.4\x005.6.7.8 1 2\r\n", ProxyRefusal.v1_bad_character),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\x7f\r\n", ProxyRefusal.v1_bad_character),
    (b"PROXY UNKNOWN \xff\r\n", ProxyRefusal.v1_bad_character),
    (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", ProxyRefusal.v1_bad_protocol),
    (b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyRefusal.v1_bad_protocol),
    (b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyRefusal.v1_bad_protocol),
    (b"PROXY \r\n", ProxyRefusal.v1_bad_protocol),
    (b"PROXY UNKNOWNX\r\n", ProxyRefusal.v1_bad_protocol),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", ProxyRefusal.v1_bad_fields),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", ProxyRefusal.v1_bad_fields),
    (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", ProxyRefusal.v1_bad_fields),
    (b"PROXY TCP4\r\n", ProxyRefusal.v1_bad_fields),
    (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", ProxyRefusal.v1_bad_address),
    (b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", ProxyRefusal.v1_bad_address),
    (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", ProxyRefusal.v1_bad_address),
    (b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n", ProxyRefusal.v1_bad_address),
    (b"PROXY TCP4 1.2.3.+4 5.6.7.8 1 2\r\n", ProxyRefusal.v1_bad_address),
    (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", ProxyRefusal.v1_bad_address),
    (b"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n", ProxyRefusal.v1_bad_address),
    (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", ProxyRefusal.v1_bad_address),
    (b"PROXY TCP6 1::2::3 ::1 1 2\r\n", ProxyRefusal.v1_bad_address),
    (b"PROXY TCP6 12345:: ::1 1 2\r\n", ProxyRefusal.v1_bad_address),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", ProxyRefusal.v1_bad_port),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", ProxyRefusal.v1_bad_port),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", ProxyRefusal.v1_bad_port),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 0x10\r\n", ProxyRefusal.v1_bad_port),
    (v2(version=0x1, body=inet4()), ProxyRefusal.v2_bad_version),
    (SIG + b"\x31", ProxyRefusal.v2_bad_version),
    (v2(command=0x2, body=inet4()), ProxyRefusal.v2_bad_command),
    (SIG + b"\x2f", ProxyRefusal.v2_bad_command),
    (v2(fam=0x41, body=inet4()), ProxyRefusal.v2_bad_family),
    (v2(fam=0x13, body=inet4()), ProxyRefusal.v2_bad_family),
    (v2(fam=0x12, body=inet4()), ProxyRefusal.v2_not_stream),
    (v2(fam=0x32, body=b"\x00" * 216), ProxyRefusal.v2_not_stream),
    (v2(length=MAX_V2_HEADER - 15), ProxyRefusal.v2_too_long),
    (v2(length=0xFFFF), ProxyRefusal.v2_too_long),
    (v2(body=inet4()[:11]), ProxyRefusal.v2_short_address),
    (v2(fam=0x21, body=inet4()), ProxyRefusal.v2_short_address),
    (v2(fam=0x31, body=b"\x00" * 215), ProxyRefusal.v2_short_address),
    (v2(body=inet4() + b"\x04\x00"), ProxyRefusal.v2_bad_tlv),
    (v2(body=inet4() + b"\x04\x00\x02x"), ProxyRefusal.v2_bad_tlv),
    (v2(fam=0x31, body=b"\x00" * 216 + b"\x01"), ProxyRefusal.v2_bad_tlv),
    (v2(body=inet4() + tlv(0x03, b"\x00" * 3)), ProxyRefusal.v2_bad_crc32c),
    (v2(body=inet4() + tlv(0x03, b"\x00" * 4)), ProxyRefusal.v2_bad_crc32c),
    (with_crc(0x1, 0x11, inet4(), tlv(0x03, b"\x00" * 4)), ProxyRefusal.v2_bad_crc32c),
    (v2(body=inet4() + tlv(0x05, b"u" * 129)), ProxyRefusal.v2_bad_unique_id),
]


@pytest.mark.parametrize(("data", "reason"), MALFORMED)
def test_malformed_header_is_refused_by_name(data: bytes, reason: ProxyRefusal) -> None:
    with pytest.raises(ProxyHeaderError) as caught:
        parse_proxy_header(data)
    assert caught.value.reason is reason
    assert reason.name in str(caught.value)


def test_every_refusal_has_a_case() -> None:
    assert {reason for _, reason in MALFORMED} == set(ProxyRefusal)


def test_a_bad_byte_is_refused_before_the_line_ends() -> None:
    # §2.1: abort "as soon as possible", without waiting for 107 bytes.
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(b"PROXY TCP4 1.2\n")
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(SIG + b"\x22")


# --- properties ---------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b"PROXY " + b),
    st.binary(max_size=300).map(lambda b: SIG + b),
    st.binary(max_size=80).map(lambda b: b"PROXY TCP4 " + b),
))
def test_parser_is_total_and_bounded(data: bytes) -> None:
    try:
        header = parse_proxy_header(data)
    except ProxyHeaderError as exc:
        assert isinstance(exc.reason, ProxyRefusal)
        return
    if header is None:
        # More is asked for only while a header could still fit in its bound.
        assert len(data) < MAX_V2_HEADER
        return
    assert 15 <= header.length <= min(len(data), MAX_V2_HEADER)
    # The verdict depends on the header's bytes only, not on what follows.
    assert parse_proxy_header(data[:header.length]) == header
    assert parse_proxy_header(data + b"\x00trailing") == header


endpoints4 = st.tuples(st.ip_addresses(v=4), st.integers(0, 65535))
endpoints6 = st.tuples(st.ip_addresses(v=6), st.integers(0, 65535))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.tuples(endpoints4, endpoints4), st.tuples(endpoints6, endpoints6)),
       st.binary(max_size=40))
def test_any_tcp_client_round_trips_in_both_versions(
    ends: tuple[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int], ...], after: bytes
) -> None:
    (src, sport), (dst, dport) = ends
    family = "TCP4" if src.version == 4 else "TCP6"
    expected_source, expected_destination = (str(src), sport), (str(dst), dport)
    line = f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode()
    header = parse_proxy_header(line + after)
    assert parse_proxy_header(format_v1((str(src), sport), (str(dst), dport))) == replace(
        header, length=len(format_v1((str(src), sport), (str(dst), dport))))
    assert isinstance(header, ProxiedConnection) and header.version == 1
    assert (header.source, header.destination) == (expected_source, expected_destination)
    block = (src.packed + dst.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big"))
    binary = v2(fam=0x11 if src.version == 4 else 0x21, body=block)
    header = parse_proxy_header(binary + after)
    assert isinstance(header, ProxiedConnection) and header.version == 2
    assert (header.source, header.destination) == (expected_source, expected_destination)
    assert header.length == len(binary)
