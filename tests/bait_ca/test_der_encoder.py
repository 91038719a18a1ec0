"""The forge's DER encoder: X.690 examples, and agreement with `cryptography`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from bait_ca import der


@pytest.mark.parametrize(
    ("value", "encoding"),
    [
        (0, "020100"),
        (127, "02017f"),
        (128, "02020080"),  # a leading zero keeps it positive
        (256, "02020100"),
        (-1, "0201ff"),
        (-128, "020180"),
        (-129, "0202ff7f"),
    ],
)
def test_integer(value: int, encoding: str) -> None:
    assert der.integer(value).hex() == encoding


def test_object_identifier_matches_x690_example() -> None:
    # RSA encryption, 1.2.840.113549.1.1.1: the classic encoding.
    assert der.object_identifier("1.2.840.113549.1.1.1").hex() == "06092a864886f70d010101"
    with pytest.raises(der.DerError):
        der.object_identifier("3.1")


def test_lengths() -> None:
    assert der.length(127) == b"\x7f"
    assert der.length(128) == b"\x81\x80"
    assert der.length(300) == b"\x82\x01\x2c"
    with pytest.raises(der.DerError):
        der.length(-1)


def test_time_switches_to_generalized_time_in_2050() -> None:
    # RFC 5280 §4.1.2.5.
    assert der.time(datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)) == der.tlv(
        der.UTC_TIME, b"491231235959Z"
    )
    assert der.time(datetime(2050, 1, 1, tzinfo=UTC)) == der.tlv(
        der.GENERALIZED_TIME, b"20500101000000Z"
    )


def test_boolean_true_is_ff() -> None:
    assert der.boolean(True) == b"\x01\x01\xff"
    assert der.boolean(False) == b"\x01\x01\x00"


def test_set_of_is_sorted() -> None:
    assert der.set_of(der.integer(2), der.integer(1)) == der.tlv(
        der.SET, der.integer(1) + der.integer(2)
    )


@given(st.integers(min_value=-(2**300), max_value=2**300))
def test_integer_round_trips(value: int) -> None:
    tag, content, end = der.read_tlv(der.integer(value))
    assert tag == der.INTEGER and end == len(der.integer(value))
    assert int.from_bytes(content, "big", signed=True) == value
    # Minimal: no redundant leading 0x00 or 0xff octet (X.690 §8.3.2).
    if len(content) > 1:
        assert not (content[0] == 0 and content[1] < 0x80)
        assert not (content[0] == 0xFF and content[1] >= 0x80)


@given(st.binary(max_size=70_000))
def test_tlv_round_trips(content: bytes) -> None:
    encoded = der.octet_string(content)
    assert der.read_tlv(encoded) == (der.OCTET_STRING, content, len(encoded))


@given(st.binary(max_size=64))
def test_read_tlv_is_total(data: bytes) -> None:
    try:
        _tag, content, end = der.read_tlv(data)
    except der.DerError:
        return
    assert end <= len(data) and len(content) <= end


@given(st.lists(st.integers(min_value=0, max_value=2**64), min_size=1, max_size=8))
def test_object_identifier_agrees_with_cryptography(arcs: list[int]) -> None:
    dotted = ".".join(["1", "3", *map(str, arcs)])
    oid = x509.ObjectIdentifier(dotted)
    name = x509.Name([x509.NameAttribute(oid, "x")])
    assert der.object_identifier(dotted) in name.public_bytes()
