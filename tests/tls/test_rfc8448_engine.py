"""RFC 8448 §3 through the whole engine: our client state machine, given the
RFC's ClientHello and ephemeral key, consumes the RFC's server records and
must produce the RFC's client records byte for byte (Finished, application
data, close_notify).

The RFC's server key is 1024-bit RSA, below the floor our signature check
enforces (it answers `insufficient_security`, tested in
test_rfc8448_crypto.py); this trace alone lowers the floor to 1024 bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pytest
from cryptography import x509

from pinata.tls import signatures
from pinata.tls.codec import Reader
from pinata.tls.config import ClientConfig, PeerRejected, VerifiedPeer
from pinata.tls.connection import ClientConnection
from pinata.tls.constants import CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.events import ApplicationData, HandshakeComplete, PeerClosed
from pinata.tls.handshake.client import ClientExpectServerHello
from pinata.tls.key_exchange import ClientKeyShare
from pinata.tls.messages import ClientHello
from pinata.tls.record import encode_plaintext_records
from pinata.tls.transcript import Transcript
from tests.tls.peers import NOW
from tests.tls.test_rfc8448_crypto import (
    APPLICATION_DATA,
    CERTIFICATE,
    CLIENT_ALERT_RECORD,
    CLIENT_APPLICATION_DATA_RECORD,
    CLIENT_FINISHED_RECORD,
    CLIENT_HELLO,
    CLIENT_PRIVATE,
    NEW_SESSION_TICKET_RECORD,
    SERVER_ALERT_RECORD,
    SERVER_APPLICATION_DATA_RECORD,
    SERVER_FLIGHT_RECORD,
    SERVER_HELLO,
    fixed,
)


def _rfc_server_certificate() -> bytes:
    return CERTIFICATE[11 : 11 + int.from_bytes(CERTIFICATE[8:11], "big")]


def _accept_the_rfc_server(
    certificates: Sequence[bytes], now: datetime
) -> VerifiedPeer | PeerRejected:
    assert list(certificates) == [_rfc_server_certificate()]
    cert = x509.load_der_x509_certificate(certificates[0])
    return VerifiedPeer(
        chain=tuple(certificates),
        leaf_public_key=cert.public_key(),  # type: ignore[arg-type]
        subjects=(cert.subject.rfc4514_string(),),
    )


@pytest.fixture
def rfc_client(monkeypatch: pytest.MonkeyPatch) -> ClientConnection:
    monkeypatch.setattr(signatures, "MIN_RSA_BITS", 1024)
    config = ClientConfig(
        authenticate_server=_accept_the_rfc_server,
        cipher_suites=(
            CipherSuite.TLS_AES_128_GCM_SHA256,
            CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            CipherSuite.TLS_AES_256_GCM_SHA384,
        ),
    )
    client = ClientConnection(config, now=NOW)
    client.data_to_send()  # our own ClientHello is replaced by the RFC's below
    transcript = Transcript()
    transcript = transcript.add(CLIENT_HELLO)
    share = ClientKeyShare.generate(NamedGroup.x25519, fixed(CLIENT_PRIVATE))
    client._state = ClientExpectServerHello(
        config=config,
        hello=ClientHello.parse(Reader(CLIENT_HELLO[4:])),
        shares=(share,),
        transcript=transcript,
        retry_suite=None,
    )
    return client


def test_client_reproduces_the_rfc_records(rfc_client: ClientConnection) -> None:
    server_hello_record = encode_plaintext_records(22, SERVER_HELLO)
    events = rfc_client.receive_data(server_hello_record + SERVER_FLIGHT_RECORD)
    [done] = [e for e in events if isinstance(e, HandshakeComplete)]
    assert done.cipher_suite == CipherSuite.TLS_AES_128_GCM_SHA256
    assert done.group == NamedGroup.x25519
    assert done.peer_signature_scheme == SignatureScheme.rsa_pss_rsae_sha256
    assert done.signature_scheme is None  # the server did not ask for a certificate
    assert rfc_client.data_to_send() == CLIENT_FINISHED_RECORD

    # The server's ticket is dropped (no resumption), then its data arrives.
    assert rfc_client.receive_data(NEW_SESSION_TICKET_RECORD) == []
    rfc_client.send_application_data(APPLICATION_DATA)
    assert rfc_client.data_to_send() == CLIENT_APPLICATION_DATA_RECORD
    events = rfc_client.receive_data(SERVER_APPLICATION_DATA_RECORD)
    assert events == [ApplicationData(APPLICATION_DATA)]

    rfc_client.close()
    assert rfc_client.data_to_send() == CLIENT_ALERT_RECORD
    assert rfc_client.receive_data(SERVER_ALERT_RECORD) == [PeerClosed(clean=True)]


def test_a_flipped_bit_in_the_rfc_flight_is_bad_record_mac(rfc_client: ClientConnection) -> None:
    flight = bytearray(SERVER_FLIGHT_RECORD)
    flight[100] ^= 0x01
    events = rfc_client.receive_data(encode_plaintext_records(22, SERVER_HELLO) + bytes(flight))
    assert events and events[-1].alert.name == "bad_record_mac"  # type: ignore[union-attr]
