"""Our client against our server: every suite, group and signature scheme,
HelloRetryRequest, client authentication, KeyUpdate, close, and the rule that
how bytes are split never changes the outcome."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.errors import AlertDescription, LocalProtocolError
from pinata.tls.events import ApplicationData, ConnectionFailed, PeerClosed
from tests.tls.pairs import (
    client_config,
    completed,
    failure,
    new_pair,
    pump,
    server_config,
)

SUITES = [
    CipherSuite.TLS_AES_128_GCM_SHA256,
    CipherSuite.TLS_AES_256_GCM_SHA384,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
]
GROUPS = [
    NamedGroup.x25519,
    NamedGroup.secp256r1,
    NamedGroup.secp384r1,
    NamedGroup.X25519MLKEM768,
]


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_every_suite_and_group_completes_with_mutual_auth(
    suite: CipherSuite, group: NamedGroup
) -> None:
    client, server = new_pair(
        client_cfg=client_config(cipher_suites=(suite,), key_share_groups=(group,)),
    )
    client_events, server_events = pump(client, server)
    done_c, done_s = completed(client_events), completed(server_events)
    assert done_c is not None and done_s is not None
    assert done_c.cipher_suite == done_s.cipher_suite == suite
    assert done_c.group == done_s.group == group
    assert done_s.peer is not None and "client" in done_s.peer.subjects[0]
    assert done_c.peer is not None and "server" in done_c.peer.subjects[0]

    client.send_application_data(b"ping")
    _, server_events = pump(client, server)
    assert [e.data for e in server_events if isinstance(e, ApplicationData)] == [b"ping"]


@pytest.mark.parametrize(
    ("kind", "scheme"),
    [
        ("p256", SignatureScheme.ecdsa_secp256r1_sha256),
        ("p384", SignatureScheme.ecdsa_secp384r1_sha384),
        ("ed25519", SignatureScheme.ed25519),
        ("rsa2048", SignatureScheme.rsa_pss_rsae_sha256),
    ],
)
def test_every_key_type_signs_both_ways(kind: str, scheme: SignatureScheme) -> None:
    client, server = new_pair(server_config(kind), client_config(kind))
    client_events, server_events = pump(client, server)
    done_c, done_s = completed(client_events), completed(server_events)
    assert done_c is not None and done_s is not None
    assert done_c.peer_signature_scheme == scheme == done_s.signature_scheme
    assert done_s.peer_signature_scheme == scheme == done_c.signature_scheme


@pytest.mark.parametrize(
    "scheme",
    [
        SignatureScheme.rsa_pss_rsae_sha256,
        SignatureScheme.rsa_pss_rsae_sha384,
        SignatureScheme.rsa_pss_rsae_sha512,
    ],
)
def test_rsa_pss_rsae_hash_follows_the_peer_offer(scheme: SignatureScheme) -> None:
    client, server = new_pair(
        server_config("rsa2048"), client_config("p256", signature_schemes=(scheme,))
    )
    client_events, _ = pump(client, server)
    done = completed(client_events)
    assert done is not None and done.peer_signature_scheme == scheme


def test_hello_retry_request_when_no_share_is_usable() -> None:
    # The server takes any share it can use, so give it none it can use.
    client, server = new_pair(
        server_config(groups=(NamedGroup.secp384r1,)),
        client_config(key_share_groups=(NamedGroup.x25519,)),
    )
    client_events, server_events = pump(client, server)
    done = completed(server_events)
    assert done is not None and done.group == NamedGroup.secp384r1
    assert completed(client_events) is not None
    trace = [e.what for e in server.trace.entries]
    assert "HelloRetryRequest" in trace
    assert [e.what for e in client.trace.entries].count("ClientHello") == 2


def test_hello_retry_request_for_the_hybrid_group() -> None:
    client, server = new_pair(
        server_config(groups=(NamedGroup.X25519MLKEM768,)),
        client_config(key_share_groups=(NamedGroup.x25519,)),
    )
    client_events, server_events = pump(client, server)
    done = completed(client_events)
    assert done is not None and done.group == NamedGroup.X25519MLKEM768
    assert completed(server_events) is not None


def test_no_common_group_is_handshake_failure() -> None:
    client, server = new_pair(
        server_config(groups=(NamedGroup.secp384r1,)),
        client_config(groups=(NamedGroup.x25519,), key_share_groups=(NamedGroup.x25519,)),
    )
    client_events, server_events = pump(client, server)
    assert (f := failure(server_events)) is not None and f.sent
    assert f.alert == AlertDescription.handshake_failure
    assert (g := failure(client_events)) is not None and not g.sent
    assert g.alert == AlertDescription.handshake_failure


def test_no_common_suite_is_handshake_failure() -> None:
    client, server = new_pair(
        server_config(cipher_suites=(CipherSuite.TLS_AES_256_GCM_SHA384,)),
        client_config(cipher_suites=(CipherSuite.TLS_AES_128_GCM_SHA256,)),
    )
    _, server_events = pump(client, server)
    assert (f := failure(server_events)) is not None
    assert f.alert == AlertDescription.handshake_failure


def test_client_without_certificate_gets_certificate_required() -> None:
    client, server = new_pair(client_cfg=client_config(None))
    client_events, server_events = pump(client, server)
    assert (f := failure(server_events)) is not None and f.sent
    assert f.alert == AlertDescription.certificate_required
    assert (g := failure(client_events)) is not None
    assert g.alert == AlertDescription.certificate_required and not g.sent


def test_server_without_client_auth_sends_no_certificate_request() -> None:
    client, server = new_pair(server_config(client_auth=False), client_config(None))
    client_events, server_events = pump(client, server)
    done = completed(server_events)
    assert done is not None and done.peer is None and done.peer_signature_scheme is None
    assert completed(client_events) is not None
    assert "CertificateRequest" not in [e.what for e in server.trace.entries]


def test_rejected_client_chain_gets_the_authenticators_alert() -> None:
    from tests.tls.peers import pinned_authenticator, test_ca

    rogue = pinned_authenticator(test_ca("Some Other CA"))
    client, server = new_pair(server_config(authenticate_client=rogue))
    client_events, server_events = pump(client, server)
    assert (f := failure(server_events)) is not None and f.alert == AlertDescription.unknown_ca
    assert (g := failure(client_events)) is not None and g.alert == AlertDescription.unknown_ca


def test_rejected_server_chain_fails_the_client() -> None:
    from tests.tls.peers import pinned_authenticator, test_ca

    rogue = pinned_authenticator(test_ca("Some Other CA"))
    client, server = new_pair(client_cfg=client_config(authenticate_server=rogue))
    client_events, server_events = pump(client, server)
    assert (f := failure(client_events)) is not None and f.alert == AlertDescription.unknown_ca
    assert (g := failure(server_events)) is not None and g.alert == AlertDescription.unknown_ca


def test_key_update_both_ways_with_update_requested() -> None:
    client, server = new_pair()
    pump(client, server)
    for _ in range(3):
        client.update_keys(request_peer_update=True)
        client.send_application_data(b"after client update")
        _, server_events = pump(client, server)
        assert [e.data for e in server_events if isinstance(e, ApplicationData)] == [
            b"after client update"
        ]
        server.send_application_data(b"after server update")
        client_events, _ = pump(client, server)
        assert [e.data for e in client_events if isinstance(e, ApplicationData)] == [
            b"after server update"
        ]
    ins = [e for e in server.trace.entries if e.what == "KeyUpdate"]
    assert len(ins) == 6  # three received (requested) and three sent in reply


def test_close_notify_is_a_clean_close_and_half_close_still_delivers() -> None:
    client, server = new_pair()
    pump(client, server)
    client.close()
    _, server_events = pump(client, server)
    assert PeerClosed(clean=True) in server_events
    # TLS 1.3 closes each direction on its own (§6.1): the server may still send.
    server.send_application_data(b"late reply")
    server.close()
    client_events, _ = pump(client, server)
    assert [e.data for e in client_events if isinstance(e, ApplicationData)] == [b"late reply"]
    assert PeerClosed(clean=True) in client_events


def test_bare_eof_is_reported_as_unclean() -> None:
    client, server = new_pair()
    pump(client, server)
    assert server.receive_data(b"") == [PeerClosed(clean=False)]
    client2, server2 = new_pair()
    server2.receive_data(client2.data_to_send())
    [event] = server2.receive_data(b"")
    assert isinstance(event, ConnectionFailed) and event.alert is None


def test_application_data_before_handshake_is_a_local_error() -> None:
    client, _ = new_pair()
    with pytest.raises(LocalProtocolError):
        client.send_application_data(b"too early")


def test_large_application_data_is_split_into_records() -> None:
    client, server = new_pair()
    pump(client, server)
    payload = bytes(range(256)) * 1000  # 256,000 bytes: sixteen records
    client.send_application_data(payload)
    _, server_events = pump(client, server)
    received = b"".join(e.data for e in server_events if isinstance(e, ApplicationData))
    assert received == payload
    assert len([e for e in server_events if isinstance(e, ApplicationData)]) == 16


def _deterministic_pair(seed: int) -> tuple[ClientConnection, ServerConnection]:
    # Ed25519 signatures are deterministic (ECDSA's are not, in OpenSSL), so
    # with the randomness fixed, a replay produces the same bytes.
    return new_pair(server_config("ed25519"), client_config("ed25519"), seed=seed)


def _transcript(seed: int) -> tuple[list[bytes], list[bytes]]:
    """The byte streams of one deterministic handshake plus a little data."""
    client, server = _deterministic_pair(seed)
    to_server: list[bytes] = []
    to_client: list[bytes] = []
    for _ in range(6):
        data = client.data_to_send()
        if data:
            to_server.append(data)
            server.receive_data(data)
        data = server.data_to_send()
        if data:
            to_client.append(data)
            client.receive_data(data)
    client.send_application_data(b"the quick brown fox")
    to_server.append(client.data_to_send())
    return to_server, to_client


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12))
def test_splitting_the_client_stream_anywhere_changes_nothing(cuts: list[int]) -> None:
    to_server, _ = _transcript(seed=7)
    stream = b"".join(to_server)
    _, whole_server = _deterministic_pair(7)
    reference = []
    for chunk in to_server:
        reference += whole_server.receive_data(chunk)
        whole_server.data_to_send()

    _, split_server = _deterministic_pair(7)
    events = []
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    for start, end in itertools.pairwise(points):
        events += split_server.receive_data(stream[start:end])
    merged = b"".join(e.data for e in events if isinstance(e, ApplicationData))
    assert merged == b"the quick brown fox"
    assert [type(e) for e in events if not isinstance(e, ApplicationData)] == [
        type(e) for e in reference if not isinstance(e, ApplicationData)
    ]


def test_one_byte_at_a_time_equals_all_at_once() -> None:
    to_server, to_client = _transcript(seed=11)
    _, server = _deterministic_pair(11)
    events = []
    for chunk in to_server:
        for i in range(len(chunk)):
            events += server.receive_data(chunk[i : i + 1])
    assert completed(events) is not None
    assert b"".join(e.data for e in events if isinstance(e, ApplicationData)) == (
        b"the quick brown fox"
    )

    client, _ = _deterministic_pair(11)
    client_events = []
    for chunk in to_client:
        for i in range(len(chunk)):
            client_events += client.receive_data(chunk[i : i + 1])
    assert completed(client_events) is not None
    assert failure(client_events) is None


def test_deterministic_randomness_reproduces_the_handshake_bytes() -> None:
    # Time and randomness are inputs: with deterministic signatures, the same
    # inputs give the same bytes on the wire, both ways.
    assert _transcript(seed=3) == _transcript(seed=3)
    assert _transcript(seed=3) != _transcript(seed=4)


def test_trace_is_bounded_and_holds_no_secrets() -> None:
    client, server = new_pair()
    pump(client, server)
    for _ in range(200):
        # Application data between the updates keeps them within the limit.
        client.update_keys(request_peer_update=True)
        client.send_application_data(b"x")
        server.send_application_data(b"y")
        pump(client, server)
    assert not server.closed and not client.closed
    entries = server.trace.to_json()
    assert len(entries) <= 49
    # The ClientHello's extension names are traced; this one's name is no secret.
    text = repr(entries).replace("extended_master_secret", "")
    assert "secret" not in text.lower()

