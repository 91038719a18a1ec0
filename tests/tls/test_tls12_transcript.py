"""A whole TLS 1.2 handshake against a transcript recorded once from a real
peer (`openssl s_client`, see `record_tls12_transcript.py` for how and how
to re-record): the client's bytes replayed into a fresh server with the
same seed give our recorded bytes, byte for byte, and the same outcome."""

from __future__ import annotations

import json

from pinata.tls.constants import TLS12, CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.events import ApplicationData, Event, HandshakeComplete, PeerClosed
from tests.tls.record_tls12_transcript import FIXTURE, REPLY, new_server

_RECORDING = json.loads(FIXTURE.read_text())


def _replay(chunks: list[bytes]) -> tuple[bytes, list[Event]]:
    server = new_server()
    out, events = [], []
    for chunk in chunks:
        new = server.receive_data(chunk)
        events += new
        if any(isinstance(e, ApplicationData) for e in new):
            server.send_application_data(REPLY)
            server.close()
        out.append(server.data_to_send())
    assert server.version == TLS12
    return b"".join(out), events


def test_the_recording_is_a_whole_tls12_conversation() -> None:
    client = [bytes.fromhex(c) for c in _RECORDING["client"]]
    server = b"".join(bytes.fromhex(c) for c in _RECORDING["server"])
    assert _RECORDING["peer"].startswith("OpenSSL")
    assert client[0][:3] == b"\x16\x03\x01" and client[0][5] == 1  # a ClientHello
    assert server[:3] == b"\x16\x03\x03" and server[5] == 2  # our ServerHello, 1.2
    # The peer finished the handshake and read our reply.
    assert _RECORDING["client_said"] == REPLY.decode()


def test_replaying_the_client_gives_our_recorded_bytes() -> None:
    client = [bytes.fromhex(c) for c in _RECORDING["client"]]
    recorded = b"".join(bytes.fromhex(c) for c in _RECORDING["server"])
    ours, events = _replay(client)
    assert ours == recorded
    done = [e for e in events if isinstance(e, HandshakeComplete)]
    assert len(done) == 1
    assert done[0].cipher_suite == CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    assert done[0].group == NamedGroup.x25519
    assert done[0].signature_scheme == SignatureScheme.ed25519
    assert ApplicationData(b"ping\n") in events
    assert PeerClosed(clean=True) in events


def test_replaying_one_byte_at_a_time_gives_the_same_bytes() -> None:
    whole = b"".join(bytes.fromhex(c) for c in _RECORDING["client"])
    recorded = b"".join(bytes.fromhex(c) for c in _RECORDING["server"])
    ours, _ = _replay([whole[i : i + 1] for i in range(len(whole))])
    assert ours == recorded


def test_a_changed_client_byte_changes_the_outcome() -> None:
    # The replay is not vacuous: the client's Finished is checked.
    client = [bytes.fromhex(c) for c in _RECORDING["client"]]
    tampered = bytearray(client[1])
    tampered[-1] ^= 1
    ours, events = _replay([client[0], bytes(tampered), *client[2:]])
    recorded = b"".join(bytes.fromhex(c) for c in _RECORDING["server"])
    assert ours != recorded
    assert not any(isinstance(e, HandshakeComplete) for e in events)
