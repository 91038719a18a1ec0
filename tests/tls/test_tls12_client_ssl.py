"""Our client against Python's `ssl` (OpenSSL) as a TLS 1.2 server, in
memory: every suite, every group, with and without a client certificate
requested, and one connection fed a byte at a time against the same
connection fed whole."""

from __future__ import annotations

import random
import ssl
from pathlib import Path

import pytest

from pinata.tls.config import ClientConfig
from pinata.tls.connection import ClientConnection
from pinata.tls.constants import TLS12, TLS13, CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.errors import AlertDescription
from pinata.tls.events import ConnectionFailed, Event, HandshakeComplete, PeerAlert, PeerClosed
from tests.tls.pairs import client_config, counter_random
from tests.tls.peers import NOW
from tests.tls.tls12_client_peers import (
    OPENSSL_SUITE_NAMES,
    MemoryServer,
    pump,
    received,
    server_context,
)

ECDSA_SUITES = (
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
)
RSA_SUITES = (
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
)
GROUPS = (NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1)


def complete_of(events: list[Event]) -> HandshakeComplete:
    found = [e for e in events if isinstance(e, HandshakeComplete)]
    failures = [e for e in events if isinstance(e, ConnectionFailed)]
    assert len(found) == 1, failures
    return found[0]


def converse(
    context: ssl.SSLContext, config: ClientConfig
) -> tuple[HandshakeComplete, ClientConnection, MemoryServer, list[Event]]:
    """A whole conversation: handshake, ping, pong, close_notify both ways."""
    client = ClientConnection(config, now=NOW)
    server = MemoryServer(context)
    events = pump(client, server, send=b"ping", reply=b"pong")
    assert server.error is None, server.error
    complete = complete_of(events)
    assert server.received == b"ping"
    assert received(events) == b"pong"
    assert PeerClosed(clean=True) in events
    assert server.closed_by_peer  # our close_notify opened under the 1.2 keys
    return complete, client, server, events


@pytest.mark.parametrize("client_auth", [False, True], ids=["no-client-cert", "client-cert"])
@pytest.mark.parametrize("suite", ECDSA_SUITES + RSA_SUITES, ids=lambda s: s.name)
def test_each_suite(tmp_path: Path, suite: CipherSuite, client_auth: bool) -> None:
    kind = "p256" if suite in ECDSA_SUITES else "rsa2048"
    context = server_context(tmp_path, kind, suite=suite, client_auth=client_auth)
    complete, client, server, _ = converse(context, client_config())
    assert (complete.version, complete.cipher_suite) == (TLS12, suite)
    assert client.version == TLS12
    assert server.tls.version() == "TLSv1.2"
    cipher = server.tls.cipher()
    assert cipher is not None and cipher[0] == OPENSSL_SUITE_NAMES[suite]
    assert complete.peer is not None and complete.peer_signature_scheme is not None
    # Our CertificateVerify only when asked; ssl then saw our certificate.
    assert (complete.signature_scheme is not None) == client_auth
    assert (server.tls.getpeercert() is not None) == client_auth
    notes = [e for e in client.trace.to_json() if "TLS 1.2" in str(e)]
    assert notes, "the trace names the version"


@pytest.mark.parametrize("client_auth", [False, True], ids=["no-client-cert", "client-cert"])
@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_each_group_the_server_picks(tmp_path: Path, group: NamedGroup, client_auth: bool) -> None:
    context = server_context(tmp_path, group=group, client_auth=client_auth)
    # An RSA client key: OpenSSL holds an ECDSA client key's curve to its own
    # group list too, which this test narrows to one group.
    complete, *_ = converse(context, client_config("rsa2048"))
    assert (complete.version, complete.group) == (TLS12, group)
    assert (complete.signature_scheme is not None) == client_auth


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_each_group_the_only_one_we_offer(tmp_path: Path, group: NamedGroup) -> None:
    # An RSA server: OpenSSL also holds an ECDSA certificate's curve to the
    # client's supported_groups (RFC 8422 §5.1), which this test narrows.
    context = server_context(tmp_path, "rsa2048")
    complete, *_ = converse(context, client_config(groups=(group,)))
    assert (complete.version, complete.group) == (TLS12, group)


@pytest.mark.parametrize("kind", ["p256", "p384", "rsa2048", "ed25519"])
def test_client_certificate_when_asked(tmp_path: Path, kind: str) -> None:
    context = server_context(tmp_path, client_auth=True)
    complete, _, server, _ = converse(context, client_config(kind))
    assert complete.version == TLS12
    assert complete.signature_scheme is not None
    peer = server.tls.getpeercert()
    assert peer is not None
    subject = dict(rdn[0] for rdn in peer["subject"])  # type: ignore[index]
    assert subject["commonName"] == f"pinata test client {kind}"


def test_without_credentials_we_send_an_empty_certificate(tmp_path: Path) -> None:
    context = server_context(tmp_path, client_auth=True)
    client = ClientConnection(client_config(None), now=NOW)
    server = MemoryServer(context)
    events = pump(client, server)
    # RFC 5246 §7.4.6: the empty Certificate is ours to send; refusing it
    # is the server's choice (OpenSSL: handshake_failure).
    assert server.error is not None
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in str(server.error)
    failures = [e for e in events if isinstance(e, ConnectionFailed)]
    assert failures and failures[0].failure == PeerAlert(AlertDescription.handshake_failure)


def test_optional_client_certificate_may_be_empty(tmp_path: Path) -> None:
    context = server_context(tmp_path, client_auth=True)
    context.verify_mode = ssl.CERT_OPTIONAL
    complete, _, server, _ = converse(context, client_config(None))
    assert complete.signature_scheme is None
    assert server.tls.getpeercert() is None


def test_a_tls13_server_still_gets_tls13(tmp_path: Path) -> None:
    context = server_context(tmp_path, allow_tls13=True)
    complete, client, server, _ = converse(context, client_config())
    assert complete.version == TLS13 and client.version == TLS13
    assert server.tls.version() == "TLSv1.3"


def test_tls12_only_client_ignores_the_sentinel_it_did_not_ask_for(tmp_path: Path) -> None:
    # A server that speaks 1.3 and negotiates 1.2 sets DOWNGRD\x01 (RFC 8446
    # §4.1.3); a client that offered only 1.2 must not take it for an attack.
    context = server_context(tmp_path, allow_tls13=True)
    complete, _client, *_ = converse(context, client_config(versions=(TLS12,)))
    assert complete.version == TLS12


def test_tls13_only_client_refuses_a_tls12_server(tmp_path: Path) -> None:
    client = ClientConnection(client_config(versions=(TLS13,)), now=NOW)
    server = MemoryServer(server_context(tmp_path))
    events = pump(client, server)
    failures = [e for e in events if isinstance(e, ConnectionFailed)]
    # OpenSSL refuses a hello whose versions it cannot speak itself.
    assert failures and failures[0].alert == AlertDescription.protocol_version


def test_one_byte_at_a_time_equals_all_at_once(tmp_path: Path) -> None:
    """The same conversation twice, with the same client randomness and an
    Ed25519 client key (deterministic signatures, RFC 8032), so our bytes
    are the same both times: first fed whole as the server sent them
    (recorded), then the recording replayed one byte at a time."""
    context = server_context(tmp_path, client_auth=True)
    config = client_config("ed25519")
    recorded: list[bytes] = []

    def record(data: bytes) -> bytes:
        recorded.append(data)
        return data

    first = ClientConnection(config, now=NOW, random=counter_random(7))
    whole = pump(first, MemoryServer(context), to_client=record, send=b"ping", reply=b"pong")
    assert complete_of(whole).signature_scheme == SignatureScheme.ed25519
    assert received(whole) == b"pong" and PeerClosed(clean=True) in whole
    assert len(recorded) >= 3  # first flight, CCS and Finished, the reply

    second = ClientConnection(config, now=NOW, random=counter_random(7))
    events: list[Event] = []
    for byte in b"".join(recorded):
        events += second.receive_data(bytes((byte,)))
    assert events == whole
    assert second.version == TLS12


def test_mutated_server_flights_end_in_one_typed_failure(tmp_path: Path) -> None:
    """Bounded, seeded mutation of a recorded server conversation: every
    variant ends with events (at most one failure), never an exception."""
    context = server_context(tmp_path, client_auth=True)
    config = client_config("ed25519")
    recorded: list[bytes] = []

    def record(data: bytes) -> bytes:
        recorded.append(data)
        return data

    pump(
        ClientConnection(config, now=NOW, random=counter_random(9)),
        MemoryServer(context),
        to_client=record,
        send=b"ping",
        reply=b"pong",
    )
    stream = b"".join(recorded)
    failures = 0
    for seed in range(300):
        chooser = random.Random(seed)
        mutated = bytearray(stream)
        for _ in range(chooser.randint(1, 3)):
            mutated[chooser.randrange(len(mutated))] = chooser.randrange(256)
        client = ClientConnection(config, now=NOW, random=counter_random(9))
        events = client.receive_data(bytes(mutated))
        found = [e for e in events if isinstance(e, ConnectionFailed)]
        assert len(found) <= 1
        failures += len(found)
    assert failures >= 290, failures  # almost every mutation is caught (298 seen)


@pytest.mark.parametrize(
    ("kind", "schemes", "expected"),
    [
        ("ed25519", None, {SignatureScheme.ed25519}),
        # TLS 1.2 binds no curve to an ECDSA scheme (RFC 8446 §4.2.3 does, for 1.3).
        (
            "p384",
            None,
            {SignatureScheme.ecdsa_secp256r1_sha256, SignatureScheme.ecdsa_secp384r1_sha384},
        ),
        ("rsa2048", None, {SignatureScheme.rsa_pss_rsae_sha256}),
        # Offering no RSA-PSS leaves the server PKCS#1 v1.5 (RFC 5246 §7.4.1.4.1).
        (
            "rsa2048",
            (SignatureScheme.ecdsa_secp256r1_sha256,),
            {SignatureScheme.rsa_pkcs1_sha256},
        ),
    ],
    ids=["ed25519", "p384", "rsa-pss", "rsa-pkcs1"],
)
def test_server_key_exchange_signatures(
    tmp_path: Path, kind: str, schemes: tuple[SignatureScheme, ...] | None, expected: set[int]
) -> None:
    config = client_config() if schemes is None else client_config(signature_schemes=schemes)
    complete, *_ = converse(server_context(tmp_path, kind), config)
    assert complete.version == TLS12
    assert complete.peer_signature_scheme in expected
