"""TLS 1.2 AEAD record protection (RFC 5246 §6.2.3.3, RFC 5288 §3, RFC 7905 §2)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from pinata.tls.constants import MAX_PLAINTEXT, CipherSuite, ContentType
from pinata.tls.errors import AlertDescription, Cause, ProtocolError
from pinata.tls.record import (
    Record,
    RecordDeframer,
    RecordProtector12,
    RecordUnprotector12,
    SequenceExhausted,
)
from pinata.tls.suites import TLS12_SUITES, SuiteParams

_GCM = TLS12_SUITES[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
_CHACHA = TLS12_SUITES[CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256]
_ALL = list(TLS12_SUITES.values())
_IDS = [p.suite.name for p in _ALL]


def _pair(params: SuiteParams) -> tuple[RecordProtector12, RecordUnprotector12]:
    key, iv = bytes(range(params.key_len)), bytes(range(100, 100 + params.iv_len))
    return RecordProtector12(params, key, iv), RecordUnprotector12(params, key, iv)


def _record(wire: bytes) -> Record:
    deframer = RecordDeframer()
    deframer.feed(wire)
    record = deframer.next_record()
    assert record is not None and deframer.next_record() is None
    return record


def test_there_are_six_suites_with_their_nonce_layouts() -> None:
    assert len(TLS12_SUITES) == 6
    for params in _ALL:
        chacha = "CHACHA20" in params.suite.name
        assert (params.iv_len, params.record_iv_len) == ((12, 0) if chacha else (4, 8))
        assert params.hash_name == ("sha384" if "SHA384" in params.suite.name else "sha256")


@pytest.mark.parametrize("params", _ALL, ids=_IDS)
@settings(max_examples=20, deadline=None)
@given(data=st.binary(max_size=300), content_type=st.sampled_from([21, 22, 23]))
def test_seal_open_round_trip(params: SuiteParams, data: bytes, content_type: int) -> None:
    protector, unprotector = _pair(params)
    for _ in range(3):
        wire = protector.seal(content_type, data)
        assert wire[:3] == bytes((content_type, 3, 3))
        assert len(wire) == 5 + params.record_iv_len + len(data) + 16
        assert unprotector.open(_record(wire)) == (content_type, data)


def test_gcm_record_is_rfc5288_layout() -> None:
    protector, _ = _pair(_GCM)
    protector.sequence_number = 0x0102030405060708
    wire = protector.seal(ContentType.application_data, b"hello")
    explicit = wire[5:13]
    # RFC 5288 §3: the explicit nonce is ours to choose; we send the sequence number.
    assert explicit == bytes.fromhex("0102030405060708")
    salt = bytes(range(100, 104))
    aad = explicit + bytes((23, 3, 3, 0, 5))
    assert AESGCM(bytes(range(16))).decrypt(salt + explicit, wire[13:], aad) == b"hello"


def test_chacha_record_is_rfc7905_layout() -> None:
    protector, _ = _pair(_CHACHA)
    seq = 0x0A0B0C0D
    protector.sequence_number = seq
    wire = protector.seal(ContentType.handshake, b"abc")
    iv = bytes(range(100, 112))
    nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
    aad = seq.to_bytes(8, "big") + bytes((22, 3, 3, 0, 3))
    assert ChaCha20Poly1305(bytes(range(32))).decrypt(nonce, wire[5:], aad) == b"abc"


@pytest.mark.parametrize("params", _ALL, ids=_IDS)
def test_nonce_never_repeats(params: SuiteParams) -> None:
    protector, _ = _pair(params)
    nonces = {protector._nonce(seq) for seq in range(2000)}
    assert len(nonces) == 2000
    wires = [protector.seal(23, b"same") for _ in range(50)]
    assert len(set(wires)) == 50
    if params.record_iv_len:
        assert [w[5:13] for w in wires] == [n.to_bytes(8, "big") for n in range(50)]


@pytest.mark.parametrize("params", _ALL, ids=_IDS)
def test_tampering_any_byte_is_bad_record_mac(params: SuiteParams) -> None:
    protector, _ = _pair(params)
    wire = protector.seal(23, b"secret data")
    for i in range(len(wire)):
        if i in (0, 3, 4):  # type and length change what the record is
            continue
        _, unprotector = _pair(params)
        tampered = bytearray(wire)
        tampered[i] ^= 0x01
        with pytest.raises(ProtocolError) as caught:
            unprotector.open(_record(bytes(tampered)))
        assert caught.value.alert == AlertDescription.bad_record_mac, i


def test_type_is_authenticated_and_replay_or_reorder_fails() -> None:
    protector, unprotector = _pair(_GCM)
    first, second = protector.seal(23, b"1"), protector.seal(23, b"2")
    retyped = bytes((22,)) + first[1:]
    with pytest.raises(ProtocolError) as caught:
        unprotector.open(_record(retyped))
    assert caught.value.cause is Cause.record_undecryptable
    with pytest.raises(ProtocolError):  # out of order: seq 0 expected
        _pair(_GCM)[1].open(_record(second))
    assert unprotector.open(_record(first)) == (23, b"1")
    with pytest.raises(ProtocolError):  # replayed
        unprotector.open(_record(first))


@pytest.mark.parametrize("params", _ALL, ids=_IDS)
def test_ciphertext_longer_than_the_aead_needs_is_record_overflow(params: SuiteParams) -> None:
    _, unprotector = _pair(params)
    longest = params.record_iv_len + MAX_PLAINTEXT + 16
    fragment = bytes(longest + 1)
    with pytest.raises(ProtocolError) as caught:
        unprotector.open(Record(23, 0x0303, fragment))
    assert caught.value.alert == AlertDescription.record_overflow
    # At the bound itself it is only undecryptable.
    with pytest.raises(ProtocolError) as caught:
        unprotector.open(Record(23, 0x0303, bytes(longest)))
    assert caught.value.alert == AlertDescription.bad_record_mac


def test_short_record_and_ccs_type_are_refused() -> None:
    _, unprotector = _pair(_GCM)
    with pytest.raises(ProtocolError) as caught:
        unprotector.open(Record(23, 0x0303, bytes(23)))
    assert caught.value.alert == AlertDescription.bad_record_mac
    with pytest.raises(ProtocolError) as caught:
        unprotector.open(Record(20, 0x0303, bytes(40)))
    assert caught.value.alert == AlertDescription.unexpected_message


def test_seal_limits_and_many() -> None:
    protector, unprotector = _pair(_CHACHA)
    with pytest.raises(ValueError):
        protector.seal(23, bytes(MAX_PLAINTEXT + 1))
    data = bytes(range(256)) * 200  # 51,200 bytes: four records
    wire = protector.seal_many(23, data)
    deframer = RecordDeframer()
    deframer.feed(wire)
    out = b""
    while (record := deframer.next_record()) is not None:
        out += bytes(unprotector.open(record)[1])
    assert out == data and unprotector.sequence_number == 4


def test_sequence_exhaustion_and_bad_iv() -> None:
    protector, _ = _pair(_GCM)
    protector.sequence_number = (1 << 64) - 1
    protector.seal(23, b"last")
    with pytest.raises(SequenceExhausted):
        protector.seal(23, b"one too many")
    with pytest.raises(ValueError):
        RecordProtector12(_GCM, bytes(16), bytes(12))
    assert "sequence_number=" in repr(protector) and "key" not in repr(protector)
