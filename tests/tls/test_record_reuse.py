"""Sealing into a reused buffer (`seal_reusing`, issue 18): the same bytes as
sealing each record with the AEAD's own `encrypt`, for every suite of both
versions; tampering still fails; and the buffer is never written while a view
of it is alive, yet is reused once none is."""

from __future__ import annotations

import gc
import os
from datetime import UTC, datetime

import pytest

from pinata.tls.config import ClientConfig, Credentials, ServerConfig
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import MAX_PLAINTEXT, CipherSuite, ContentType
from pinata.tls.errors import AlertDescription, LocalProtocolError, ProtocolError
from pinata.tls.events import ApplicationData
from pinata.tls.keyschedule import traffic_key_iv
from pinata.tls.record import (
    KEPT_AT_MOST,
    Record,
    RecordDeframer,
    RecordProtector,
    RecordProtector12,
    RecordUnprotector,
    RecordUnprotector12,
    SequenceExhausted,
)
from pinata.tls.suites import SUITES, TLS12_SUITES, SuiteParams
from pinata.x509 import Purpose, TrustAnchor, authenticator
from tests.appliance.harness import TOY
from tests.tls import test_rfc8448_crypto as rfc8448

SUITES13 = sorted(SUITES.values(), key=lambda p: p.suite)
SUITES12 = sorted(TLS12_SUITES.values(), key=lambda p: p.suite)
# None, one byte, one short of a record, a record, one over, several records
# and a ragged end, and a whole TLSStream slice.
SIZES = [0, 1, MAX_PLAINTEXT - 1, MAX_PLAINTEXT, MAX_PLAINTEXT + 1,
         3 * MAX_PLAINTEXT + 100, 16 * MAX_PLAINTEXT]
APPLICATION_DATA = int(ContentType.application_data)


def _secret(params: SuiteParams) -> bytes:
    return bytes(range(3, 3 + params.hash_len))


def _reference13(params: SuiteParams, secret: bytes, content_type: int, data: bytes,
                 first_seq: int = 0) -> bytes:
    """RFC 8446 §5.2-5.4 record by record with `encrypt`: the oracle."""
    key, iv = traffic_key_iv(params, secret)
    aead = params.aead(key)
    out = b""
    chunks = [data[i : i + MAX_PLAINTEXT] for i in range(0, len(data), MAX_PLAINTEXT)] or [b""]
    for seq, chunk in enumerate(chunks, first_seq):
        nonce = bytes(a ^ b for a, b in zip(iv, seq.to_bytes(12, "big"), strict=True))
        header = bytes((23, 3, 3)) + (len(chunk) + 1 + 16).to_bytes(2, "big")
        out += header + aead.encrypt(nonce, chunk + bytes((content_type,)), header)
    return out


def _reference12(params: SuiteParams, key: bytes, iv: bytes, content_type: int,
                 data: bytes) -> bytes:
    """RFC 5246 §6.2.3.3 with RFC 5288 §3 (GCM) or RFC 7905 §2 (ChaCha20)."""
    aead = params.aead(key)
    out = b""
    chunks = [data[i : i + MAX_PLAINTEXT] for i in range(0, len(data), MAX_PLAINTEXT)] or [b""]
    for seq, chunk in enumerate(chunks):
        seq_bytes = seq.to_bytes(8, "big")
        aad = seq_bytes + bytes((content_type, 3, 3)) + len(chunk).to_bytes(2, "big")
        if params.record_iv_len:
            sealed = seq_bytes + aead.encrypt(iv + seq_bytes, chunk, aad)
        else:
            nonce = bytes(a ^ b for a, b in zip(iv, bytes(4) + seq_bytes, strict=True))
            sealed = aead.encrypt(nonce, chunk, aad)
        out += bytes((content_type, 3, 3)) + len(sealed).to_bytes(2, "big") + sealed
    return out


def _key_iv12(params: SuiteParams) -> tuple[bytes, bytes]:
    return bytes(range(params.key_len)), bytes(range(100, 100 + params.iv_len))


def _records(wire: bytes | memoryview) -> list[Record]:
    deframer = RecordDeframer(tls12=True)
    deframer.feed(wire)
    out = []
    while (record := deframer.next_record()) is not None:
        out.append(record)
    assert deframer.buffered == 0
    return out


def test_there_are_three_tls13_and_six_tls12_aead_suites() -> None:
    # The loops below must cover every suite we can negotiate.
    assert len(SUITES13) == 3 and len(SUITES12) == 6


@pytest.mark.parametrize("params", SUITES13, ids=[p.suite.name for p in SUITES13])
@pytest.mark.parametrize("size", SIZES)
def test_tls13_seal_reusing_equals_encrypt_record_by_record(
    params: SuiteParams, size: int
) -> None:
    data = os.urandom(size)
    protector = RecordProtector(params, _secret(params))
    # Twice through the same protector: the second batch is sealed into the
    # buffer the first one used, with the sequence numbers that follow.
    first = bytes(protector.seal_reusing(APPLICATION_DATA, data))
    second = bytes(protector.seal_reusing(APPLICATION_DATA, data))
    count = max(1, -(-size // MAX_PLAINTEXT))
    assert first == _reference13(params, _secret(params), APPLICATION_DATA, data)
    assert second == _reference13(params, _secret(params), APPLICATION_DATA, data, count)
    assert protector.sequence_number == 2 * count
    assert RecordProtector(params, _secret(params)).seal_many(APPLICATION_DATA, data) == first


@pytest.mark.parametrize("params", SUITES12, ids=[p.suite.name for p in SUITES12])
@pytest.mark.parametrize("size", SIZES)
def test_tls12_seal_reusing_equals_encrypt_record_by_record(
    params: SuiteParams, size: int
) -> None:
    data = os.urandom(size)
    key, iv = _key_iv12(params)
    wire = RecordProtector12(params, key, iv).seal_reusing(APPLICATION_DATA, data)
    assert wire == _reference12(params, key, iv, APPLICATION_DATA, data)
    opener = RecordUnprotector12(params, key, iv)
    assert b"".join(bytes(opener.open(r)[1]) for r in _records(wire)) == data


def test_rfc8448_application_data_records_through_the_reused_buffer() -> None:
    # RFC 8448 §3: the server's and the client's application data records.
    for secret, expected in (
        (rfc8448.S_AP_TRAFFIC, rfc8448.SERVER_APPLICATION_DATA_RECORD),
        (rfc8448.C_AP_TRAFFIC, rfc8448.CLIENT_APPLICATION_DATA_RECORD),
    ):
        sealer = RecordProtector(rfc8448.PARAMS, secret)
        if secret == rfc8448.S_AP_TRAFFIC:
            sealer.sequence_number = 1  # after the NewSessionTicket record
        assert sealer.seal_reusing(APPLICATION_DATA, rfc8448.APPLICATION_DATA) == expected


@pytest.mark.parametrize("params", SUITES13, ids=[p.suite.name for p in SUITES13])
def test_tls13_tampering_with_any_record_of_a_batch_is_bad_record_mac(
    params: SuiteParams,
) -> None:
    data = os.urandom(3 * MAX_PLAINTEXT + 7)
    wire = bytes(RecordProtector(params, _secret(params)).seal_reusing(APPLICATION_DATA, data))
    records = _records(wire)
    for victim in range(len(records)):
        for offset in (0, len(records[victim].fragment) // 2, len(records[victim].fragment) - 1):
            opener = RecordUnprotector(params, _secret(params))
            for index, record in enumerate(records):
                fragment = bytearray(record.fragment)
                if index == victim:
                    fragment[offset] ^= 0x01
                    with pytest.raises(ProtocolError) as caught:
                        opener.open(Record(record.content_type, 0x0303, bytes(fragment)))
                    assert caught.value.alert == AlertDescription.bad_record_mac
                    break
                opener.open(record)


@pytest.mark.parametrize("params", SUITES12, ids=[p.suite.name for p in SUITES12])
def test_tls12_tampering_with_any_record_of_a_batch_is_bad_record_mac(
    params: SuiteParams,
) -> None:
    key, iv = _key_iv12(params)
    wire = bytes(RecordProtector12(params, key, iv).seal_reusing(23, os.urandom(40_000)))
    records = _records(wire)
    for victim in range(len(records)):
        opener = RecordUnprotector12(params, key, iv)
        for index, record in enumerate(records):
            if index == victim:
                fragment = bytearray(record.fragment)
                fragment[-1] ^= 0x80  # the tag's last byte
                with pytest.raises(ProtocolError) as caught:
                    opener.open(Record(record.content_type, 0x0303, bytes(fragment)))
                assert caught.value.alert == AlertDescription.bad_record_mac
                break
            opener.open(record)


@pytest.fixture(params=["tls13", "tls12"])
def protector(request: pytest.FixtureRequest) -> RecordProtector | RecordProtector12:
    """A fresh write direction of each version (its reused buffer starts empty)."""
    if request.param == "tls13":
        return RecordProtector(SUITES13[0], _secret(SUITES13[0]))
    return RecordProtector12(SUITES12[0], *_key_iv12(SUITES12[0]))


def test_a_held_view_is_never_overwritten_and_a_released_buffer_is_reused(
    protector: RecordProtector | RecordProtector12,
) -> None:
    first = protector.seal_reusing(23, b"a" * 40_000)
    kept = bytes(first)
    second = protector.seal_reusing(23, b"b" * 40_000)  # `first` is still alive
    assert first == kept and first.obj is not second.obj
    buffer = second.obj
    del first
    second.release()
    gc.collect()
    third = protector.seal_reusing(23, b"c" * 30_000)  # smaller: fits the same buffer
    assert third.obj is buffer
    # A view made from a view pins the buffer too.
    derived = third[10:20]
    third.release()
    fourth = protector.seal_reusing(23, b"d")
    assert fourth.obj is not buffer and len(derived) == 10


def test_a_batch_larger_than_what_is_kept_gets_a_buffer_of_its_own(
    protector: RecordProtector | RecordProtector12,
) -> None:
    kept = protector.seal_reusing(23, bytes(32 * MAX_PLAINTEXT))  # the most that is kept
    buffer = kept.obj
    assert len(kept) <= KEPT_AT_MOST
    kept.release()
    huge = protector.seal_reusing(23, bytes(33 * MAX_PLAINTEXT))
    assert len(huge) > KEPT_AT_MOST and huge.obj is not buffer
    huge.release()
    again = protector.seal_reusing(23, b"x")
    assert again.obj is buffer  # the huge one was not kept


def test_a_batch_that_would_wrap_the_sequence_is_refused_whole() -> None:
    params = SUITES13[0]
    protector = RecordProtector(params, _secret(params))
    protector.sequence_number = (1 << 64) - 2
    with pytest.raises(SequenceExhausted):
        protector.seal_reusing(23, bytes(2 * MAX_PLAINTEXT + 1))  # three records
    assert protector.sequence_number == (1 << 64) - 2  # nothing taken
    protector.seal_reusing(23, bytes(2 * MAX_PLAINTEXT))  # exactly the last two
    assert protector.sequence_number == 1 << 64
    with pytest.raises(SequenceExhausted):
        protector.seal_reusing(23, b"")


def _established_pair(suite: CipherSuite) -> tuple[ServerConnection, ClientConnection]:
    anchor = TrustAnchor.from_der(TOY.anchor.der)
    now = datetime.now(UTC)
    server = ServerConnection(
        ServerConfig(credentials=Credentials(chain=(TOY.server.der,),
                                             private_key=TOY.server.private_key),
                     authenticate_client=authenticator(anchor, Purpose.CLIENT_AUTH),
                     cipher_suites=(suite,)),
        random=os.urandom, now=now)
    client = ClientConnection(
        ClientConfig(authenticate_server=authenticator(anchor, Purpose.SERVER_AUTH),
                     credentials=Credentials(chain=(TOY.client.der,),
                                             private_key=TOY.client.private_key)),
        random=os.urandom, now=now)
    for _ in range(4):  # b"" would mean the transport closed: pass only bytes
        if hello := client.data_to_send():
            server.receive_data(hello)
        if answer := server.data_to_send():
            client.receive_data(answer)
    assert server.handshake_complete and client.handshake_complete
    return server, client


@pytest.mark.parametrize("suite", [CipherSuite.TLS_AES_128_GCM_SHA256,
                                   CipherSuite.TLS_CHACHA20_POLY1305_SHA256])
def test_engine_hands_out_views_that_stay_intact_until_released(suite: CipherSuite) -> None:
    server, client = _established_pair(suite)
    one, two = os.urandom(70_000), os.urandom(70_000)
    server.send_application_data(one)
    first = server.data_to_send()
    assert isinstance(first, memoryview)  # no copy of the batch
    kept = bytes(first)
    server.send_application_data(two)  # while `first` is held
    second = server.data_to_send()
    assert first == kept
    # Queued together, the two batches come out as one joined copy.
    server.send_application_data(one)
    server.send_application_data(two)
    both = server.data_to_send()
    received = b"".join(
        e.data for wire in (first, second, both) for e in client.receive_data(wire)
        if isinstance(e, ApplicationData)
    )
    assert received == one + two + one + two


def test_application_data_past_the_last_sequence_number_ends_the_connection() -> None:
    """§5.3: a batch that would wrap the write sequence number is refused whole
    (`LocalProtocolError`), and the connection is over: nothing more is sent."""
    server, _ = _established_pair(CipherSuite.TLS_AES_128_GCM_SHA256)
    protector = server._write.protector  # type: ignore[union-attr]
    protector.sequence_number = 2**64 - 2  # two records left
    with pytest.raises(LocalProtocolError, match="sequence number exhausted"):
        server.send_application_data(bytes(3 * MAX_PLAINTEXT))
    assert server.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        server.send_application_data(b"x")
