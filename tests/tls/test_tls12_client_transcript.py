"""A whole TLS 1.2 conversation of our client, checked against a transcript
recorded once from a real server (`openssl s_server -tls1_2`, asking for a
client certificate; see `record_tls12_client_transcript.py` for how, and
how to re-record): the server's recorded bytes, fed to a fresh client with
the same seed, give our recorded bytes, byte for byte, and the same
outcome, whether fed as they came or one byte at a time."""

from __future__ import annotations

import json

from pinata.tls.constants import TLS12, CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.events import Event, HandshakeComplete, PeerClosed
from tests.tls.record_tls12_client_transcript import ANSWER, FIXTURE, SAY, answer, new_client

_RECORDING = json.loads(FIXTURE.read_text())
OURS = [bytes.fromhex(c) for c in _RECORDING["ours"]]
THEIRS = [bytes.fromhex(c) for c in _RECORDING["theirs"]]


def _replay(chunks: list[bytes]) -> tuple[bytes, list[Event], bytes]:
    """(our bytes, our events, what we heard) for the server's `chunks`."""
    client = new_client()
    out, events, heard = [client.data_to_send()], [], b""
    for chunk in chunks:
        new = client.receive_data(chunk)
        events += new
        heard = answer(client, new, heard)
        out.append(client.data_to_send())
    assert client.version == TLS12
    return b"".join(out), events, heard


def test_the_recording_is_a_whole_tls12_conversation() -> None:
    assert _RECORDING["peer"].startswith("OpenSSL")
    assert "-tls1_2" in _RECORDING["command"] and "-Verify" in _RECORDING["command"]
    assert OURS[0][:3] == b"\x16\x03\x01" and OURS[0][5] == 1  # our ClientHello
    assert THEIRS[0][:3] == b"\x16\x03\x03" and THEIRS[0][5] == 2  # a 1.2 ServerHello
    # s_server checked our certificate and CertificateVerify.
    assert _RECORDING["server_verified_us"] is True


def test_replaying_the_server_gives_our_recorded_bytes() -> None:
    ours, events, heard = _replay(THEIRS)
    assert ours == b"".join(OURS)
    done = [e for e in events if isinstance(e, HandshakeComplete)]
    assert len(done) == 1
    complete = done[0]
    assert complete.version == TLS12
    assert complete.cipher_suite == CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    assert complete.group == NamedGroup.x25519
    assert complete.signature_scheme == SignatureScheme.ed25519
    assert complete.peer_signature_scheme == SignatureScheme.ed25519
    assert heard == ANSWER == SAY[::-1][1:] + b"\n"
    assert events[-1] == PeerClosed(clean=True)


def test_replaying_one_byte_at_a_time_gives_the_same_bytes_and_events() -> None:
    whole = b"".join(THEIRS)
    ours, events, heard = _replay([whole[i : i + 1] for i in range(len(whole))])
    _, expected_events, _ = _replay(THEIRS)
    assert ours == b"".join(OURS)
    assert events == expected_events
    assert heard == ANSWER
