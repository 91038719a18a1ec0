"""The record layer (RFC 8446 §5): framing, protection, and their refusals."""

from __future__ import annotations

import dataclasses
import itertools
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinata.tls.constants import MAX_CIPHERTEXT, MAX_PLAINTEXT, CipherSuite, ContentType
from pinata.tls.errors import AlertDescription, LocalProtocolError, ProtocolError
from pinata.tls.keyschedule import KeySchedule
from pinata.tls.record import (
    Record,
    RecordDeframer,
    RecordProtector,
    RecordProtector12,
    RecordUnprotector,
    RecordUnprotector12,
    SequenceExhausted,
    encode_plaintext_records,
)
from pinata.tls.suites import AEAD, SUITES, TLS12_SUITES, SuiteParams

SECRET_LEN = {"sha256": 32, "sha384": 48}
all_suites = st.sampled_from(sorted(SUITES.values(), key=lambda p: p.suite))
inner_types = st.sampled_from(
    [ContentType.alert, ContentType.handshake, ContentType.application_data]
)
AES128 = SUITES[CipherSuite.TLS_AES_128_GCM_SHA256]
AES128_12 = TLS12_SUITES[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]


def pair(params: SuiteParams, seed: int = 7) -> tuple[RecordProtector, RecordUnprotector]:
    secret = bytes([seed]) * SECRET_LEN[params.hash_name]
    return RecordProtector(params, secret), RecordUnprotector(params, secret)


def deframe_all(data: bytes) -> list[Record]:
    deframer = RecordDeframer()
    deframer.feed(data)
    out = []
    while (record := deframer.next_record()) is not None:
        out.append(record)
    assert deframer.buffered == 0
    return out


def open_one(unprotector: RecordUnprotector, wire: bytes) -> tuple[int, bytes]:
    [record] = deframe_all(wire)
    content_type, content = unprotector.open(record)
    return content_type, bytes(content)


def alert_of(call: object, *args: object) -> AlertDescription:
    with pytest.raises(ProtocolError) as info:
        call(*args)  # type: ignore[operator]
    return info.value.alert


# -- Protection ----------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    all_suites,
    inner_types,
    st.integers(min_value=0, max_value=MAX_PLAINTEXT),
    st.integers(min_value=0, max_value=MAX_PLAINTEXT),
    st.randoms(use_true_random=False),
)
def test_seal_open_round_trip(
    params: SuiteParams, content_type: int, size: int, padding: int, rng: object
) -> None:
    padding = min(padding, MAX_PLAINTEXT - size)
    data = rng.randbytes(size)  # type: ignore[attr-defined]
    protector, unprotector = pair(params)
    wire = protector.seal(content_type, data, padding)
    assert wire[:3] == b"\x17\x03\x03"
    assert len(wire) == 5 + size + 1 + padding + 16
    assert int.from_bytes(wire[3:5], "big") == len(wire) - 5
    assert open_one(unprotector, wire) == (content_type, data)
    assert protector.sequence_number == unprotector.sequence_number == 1


@settings(max_examples=100, deadline=None)
@given(all_suites, st.binary(min_size=0, max_size=40), st.data())
def test_tampering_any_byte_is_bad_record_mac(
    params: SuiteParams, data: bytes, draw: st.DataObject
) -> None:
    protector, unprotector = pair(params)
    wire = bytearray(protector.seal(ContentType.application_data, data))
    # Past the type and length bytes, which the deframer and the AEAD header judge.
    index = draw.draw(
        st.integers(min_value=1, max_value=len(wire) - 1).filter(lambda i: i > 4 or i < 3)
    )
    wire[index] ^= draw.draw(st.integers(min_value=1, max_value=255))
    [record] = deframe_all(bytes(wire))
    assert alert_of(unprotector.open, record) == AlertDescription.bad_record_mac


def test_wrong_key_or_sequence_is_bad_record_mac() -> None:
    protector, _ = pair(AES128, 1)
    _, other = pair(AES128, 2)
    [record] = deframe_all(protector.seal(ContentType.handshake, b"hello"))
    assert alert_of(other.open, record) == AlertDescription.bad_record_mac
    protector, unprotector = pair(AES128)
    protector.seal(ContentType.handshake, b"skipped")
    [record] = deframe_all(protector.seal(ContentType.handshake, b"second"))
    assert alert_of(unprotector.open, record) == AlertDescription.bad_record_mac


def test_legacy_version_is_authenticated_not_judged() -> None:
    # §5.1: the version is ignored, but §5.2 puts the header in the AAD.
    protector, unprotector = pair(AES128)
    wire = protector.seal(ContentType.application_data, b"x")
    [record] = deframe_all(wire)
    assert record.legacy_record_version == 0x0303
    altered = Record(record.content_type, 0x0301, record.fragment)
    assert alert_of(unprotector.open, altered) == AlertDescription.bad_record_mac


@given(all_suites, st.binary(max_size=3 * MAX_PLAINTEXT + 100))
@settings(max_examples=15, deadline=None)
def test_seal_many(params: SuiteParams, data: bytes) -> None:
    protector, unprotector = pair(params)
    wire = protector.seal_many(ContentType.application_data, data)
    records = deframe_all(wire)
    assert len(records) == max(1, -(-len(data) // MAX_PLAINTEXT))
    assert protector.sequence_number == len(records)
    out = b""
    for record in records:
        content_type, content = unprotector.open(record)
        assert content_type == ContentType.application_data
        assert len(content) <= MAX_PLAINTEXT
        out += content
    assert out == data


def test_seal_limits() -> None:
    protector, _ = pair(AES128)
    with pytest.raises(ValueError):
        protector.seal(ContentType.application_data, bytes(MAX_PLAINTEXT + 1))
    with pytest.raises(ValueError):
        protector.seal(ContentType.application_data, bytes(10), MAX_PLAINTEXT - 9)
    with pytest.raises(ValueError):
        protector.seal(ContentType.application_data, b"", -1)
    assert protector.sequence_number == 0


def test_sequence_exhaustion() -> None:
    protector, unprotector = pair(AES128)
    protector.sequence_number = unprotector.sequence_number = (1 << 64) - 1
    [record] = deframe_all(protector.seal(ContentType.application_data, b"last"))
    assert bytes(unprotector.open(record)[1]) == b"last"
    with pytest.raises(SequenceExhausted):
        protector.seal(ContentType.application_data, b"one too many")
    with pytest.raises(SequenceExhausted):
        unprotector.open(record)


def sealed_raw(params: SuiteParams, inner: bytes, seq: int = 0) -> Record:
    """A record whose inner plaintext is exactly `inner` (no type byte added)."""
    key, iv = KeySchedule(params).traffic_key_iv(bytes([7]) * SECRET_LEN[params.hash_name])
    nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
    length = len(inner) + 16
    header = bytes((23, 3, 3)) + length.to_bytes(2, "big")
    return Record(23, 0x0303, params.aead(key).encrypt(nonce, inner, header))


def test_all_zero_inner_plaintext_is_unexpected_message() -> None:
    for inner in (b"", bytes(1), bytes(300)):
        _, unprotector = pair(AES128)
        record = sealed_raw(AES128, inner)
        assert alert_of(unprotector.open, record) == AlertDescription.unexpected_message


def test_padding_is_stripped() -> None:
    _, unprotector = pair(AES128)
    content_type, content = unprotector.open(sealed_raw(AES128, b"\x00ab\x00\x16" + bytes(50)))
    assert (content_type, bytes(content)) == (ContentType.handshake, b"\x00ab\x00")


@pytest.mark.parametrize("inner_type", [0x14, 0x18, 0xFF])
def test_protected_change_cipher_spec_or_unknown_type_refused(inner_type: int) -> None:
    _, unprotector = pair(AES128)
    record = sealed_raw(AES128, b"\x01" + bytes((inner_type,)))
    assert alert_of(unprotector.open, record) == AlertDescription.unexpected_message


def test_long_inner_plaintext_is_record_overflow() -> None:
    # 2^14 + 2 bytes of inner plaintext: under the ciphertext cap, over §5.2's.
    _, unprotector = pair(AES128)
    record = sealed_raw(AES128, bytes(MAX_PLAINTEXT) + b"\x17\x00")
    assert len(record.fragment) <= MAX_CIPHERTEXT
    assert alert_of(unprotector.open, record) == AlertDescription.record_overflow
    # Exactly 2^14 + 1 is allowed.
    ok = sealed_raw(AES128, bytes(MAX_PLAINTEXT) + b"\x17")
    assert len(unprotector.open(ok)[1]) == MAX_PLAINTEXT


def test_long_ciphertext_is_record_overflow() -> None:
    _, unprotector = pair(AES128)
    record = Record(23, 0x0303, bytes(MAX_CIPHERTEXT + 1))
    assert alert_of(unprotector.open, record) == AlertDescription.record_overflow
    header = b"\x17\x03\x03" + (MAX_CIPHERTEXT + 1).to_bytes(2, "big")
    deframer = RecordDeframer()
    deframer.feed(header)  # refused on the header alone
    assert alert_of(deframer.next_record) == AlertDescription.record_overflow


def test_short_or_unprotected_record_refused() -> None:
    _, unprotector = pair(AES128)
    assert alert_of(unprotector.open, Record(23, 0x0303, bytes(15))) == (
        AlertDescription.bad_record_mac
    )
    assert alert_of(unprotector.open, Record(22, 0x0303, bytes(40))) == (
        AlertDescription.unexpected_message
    )


def test_repr_shows_no_content() -> None:
    protector, unprotector = pair(AES128)
    [record] = deframe_all(protector.seal(ContentType.application_data, b"SECRETSECRET"))
    assert bytes(unprotector.open(record)[1]) == b"SECRETSECRET"
    for text in (repr(record), repr(protector), repr(unprotector)):
        assert "SECRET" not in text and "\\x" not in text


# -- Plaintext records and the deframer -------------------------------------------


def test_encode_plaintext_records() -> None:
    data = bytes(range(256)) * 200  # 51200 bytes: four records
    wire = encode_plaintext_records(ContentType.handshake, data)
    records = deframe_all(wire)
    assert [len(r.fragment) for r in records] == [MAX_PLAINTEXT] * 3 + [
        len(data) - 3 * MAX_PLAINTEXT
    ]
    assert b"".join(bytes(r.fragment) for r in records) == data
    assert all(r.content_type == 22 and r.legacy_record_version == 0x0303 for r in records)
    hello = encode_plaintext_records(
        ContentType.handshake, b"\x01abc", legacy_record_version=0x0301
    )
    assert hello == b"\x16\x03\x01\x00\x04\x01abc"
    assert encode_plaintext_records(ContentType.alert, b"") == b""


@st.composite
def record_stream(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    records = draw(
        st.lists(
            st.tuples(
                st.sampled_from([20, 21, 22, 23]),
                st.sampled_from([0x0301, 0x0303, 0x0304, 0x0000]),
                st.binary(max_size=600),
            ),
            max_size=8,
        )
    )
    wire = b"".join(
        bytes((t,)) + v.to_bytes(2, "big") + len(f).to_bytes(2, "big") + f for t, v, f in records
    )
    return wire, records


@settings(deadline=None)
@given(record_stream(), st.lists(st.integers(min_value=0, max_value=5000), max_size=12))
def test_deframer_any_split_yields_the_same_records(
    stream: tuple[bytes, list[tuple[int, int, bytes]]], cuts: list[int]
) -> None:
    wire, expected = stream
    points = sorted({min(c, len(wire)) for c in cuts} | {0, len(wire)})
    deframer = RecordDeframer()
    got = []
    for start, end in itertools.pairwise(points):
        deframer.feed(wire[start:end])
        while (record := deframer.next_record()) is not None:
            got.append((record.content_type, record.legacy_record_version, bytes(record.fragment)))
        assert deframer.buffered < 5 + MAX_CIPHERTEXT
    assert got == expected
    assert deframer.buffered == 0


@settings(deadline=None)
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64))
def test_deframer_on_arbitrary_bytes_raises_only_protocol_error(data: bytes, step: int) -> None:
    deframer = RecordDeframer()
    try:
        for start in range(0, len(data), step):
            deframer.feed(data[start : start + step])
            while deframer.next_record() is not None:
                pass
    except ProtocolError as error:
        assert error.alert in (
            AlertDescription.unexpected_message,
            AlertDescription.record_overflow,
        )
        # Errors are sticky: the stream stays dead.
        with pytest.raises(ProtocolError):
            deframer.next_record()


@pytest.mark.parametrize("content_type", [0, 19, 24, 0x47, 255])
def test_unknown_content_type_is_unexpected_message(content_type: int) -> None:
    deframer = RecordDeframer()
    deframer.feed(bytes((content_type, 3, 3, 0, 1, 0)))
    assert alert_of(deframer.next_record) == AlertDescription.unexpected_message


def test_deframer_waits_for_whole_header_and_body() -> None:
    deframer = RecordDeframer()
    wire = b"\x16\x03\x03\x00\x03abc"
    for i in range(len(wire) - 1):
        deframer.feed(wire[i : i + 1])
        assert deframer.next_record() is None
    deframer.feed(wire[-1:])
    record = deframer.next_record()
    assert record is not None and bytes(record.fragment) == b"abc"


def test_deframer_memory_is_bounded() -> None:
    deframer = RecordDeframer()
    deframer.feed(b"\x17\x03\x03\x00\x01a\x17\x03")
    # A whole record is waiting: feeding more before taking it is refused.
    with pytest.raises(LocalProtocolError):
        deframer.feed(b"\x03\x00\x01b")
    assert deframer.next_record() is not None
    deframer.feed(b"\x03\x00\x01b")
    record = deframer.next_record()
    assert record is not None and bytes(record.fragment) == b"b"


def test_many_small_records_in_one_read() -> None:
    wire = b"\x17\x03\x03\x00\x01x" * 20000
    records = deframe_all(wire)
    assert len(records) == 20000 and all(bytes(r.fragment) == b"x" for r in records)


@given(
    st.sampled_from([20, 21, 22, 23, 24]),
    st.integers(min_value=0, max_value=0xFFFF),
    st.binary(max_size=MAX_CIPHERTEXT + 40),
)
@settings(max_examples=80, deadline=None)
def test_open_on_arbitrary_records_raises_only_protocol_error(
    content_type: int, version: int, fragment: bytes
) -> None:
    _, unprotector = pair(AES128)
    with pytest.raises(ProtocolError):
        unprotector.open(Record(content_type, version, fragment))
    assert unprotector.sequence_number == 0


def counting(params: SuiteParams) -> tuple[SuiteParams, list[bytes]]:
    """`params` whose AEAD factory records every key it is handed."""
    built: list[bytes] = []

    def factory(key: bytes) -> AEAD:
        built.append(key)
        return params.aead_factory(key)

    return dataclasses.replace(params, aead_factory=factory), built


@pytest.mark.parametrize("params", sorted(SUITES.values(), key=lambda p: p.suite))
def test_a_key_becomes_an_aead_at_its_first_record_and_once(params: SuiteParams) -> None:
    # A stalled handshake holds keys it may never use: as bytes, not as
    # OpenSSL cipher contexts (issue 18). Built once, then reused.
    params, built = counting(params)
    protector, unprotector = pair(params)
    assert built == []
    first = protector.seal(ContentType.handshake, b"one")
    assert len(built) == 1
    protector.seal_many(ContentType.application_data, bytes(MAX_PLAINTEXT + 1))
    bytes(protector.seal_reusing(ContentType.application_data, b"three"))
    assert len(built) == 1
    assert open_one(unprotector, first) == (ContentType.handshake, b"one")
    assert len(built) == 2 and built[0] == built[1] and len(built[0]) == params.key_len


def test_a_key_of_the_wrong_length_is_refused_before_any_record() -> None:
    with pytest.raises(ValueError, match="16-byte key"):
        RecordProtector12(AES128_12, bytes(32), bytes(4))
    params, built = counting(AES128_12)
    protector = RecordProtector12(params, bytes(16), bytes(4))
    unprotector = RecordUnprotector12(params, bytes(16), bytes(4))
    assert built == []
    [record] = deframe_all(protector.seal(ContentType.handshake, b"twelve"))
    assert unprotector.open(record) == (ContentType.handshake, b"twelve")
    assert built == [bytes(16), bytes(16)]


def test_deframer_holds_no_chunk_once_its_records_are_taken() -> None:
    # A peer that stalls after its flight must not pin the chunk that
    # brought it (issue 18: memory per stalled handshake).
    chunk = encode_plaintext_records(ContentType.handshake, bytes(10_000))
    deframer = RecordDeframer()
    tracemalloc.start()
    try:
        deframer.feed(bytearray(chunk))  # a fresh object, as a socket gives
        held, _ = tracemalloc.get_traced_memory()
        record = deframer.next_record()
        assert record is not None and bytes(record.fragment) == bytes(10_000)
        del record
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held >= 10_000 > 1_000 >= after
    assert deframer.buffered == 0 and deframer.next_record() is None
    # Records after it still come whole, split or not.
    deframer.feed(chunk[:7])
    assert deframer.next_record() is None
    deframer.feed(chunk[7:])
    record = deframer.next_record()
    assert record is not None and bytes(record.fragment) == bytes(10_000)
