"""Our TLS 1.2 client against our TLS 1.2 server, in memory: every suite and
group, with and without client certificates, the version each side ends up
with, application data both ways, and a deterministic replay."""

from __future__ import annotations

import pytest

from pinata.tls.constants import TLS12, TLS13, CipherSuite, NamedGroup
from pinata.tls.errors import AlertDescription, Cause, LocalProtocolError
from pinata.tls.events import ApplicationData, PeerClosed
from pinata.tls.suites import TLS12_SUITES
from tests.tls.pairs import client_config, completed, failure, new_pair, pump, server_config

_SUITES = [CipherSuite(s) for s in sorted(TLS12_SUITES)]
_GROUPS = [NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1]


def _kind(suite: CipherSuite) -> str:
    # Ed25519 for the ECDSA suites: a P-256 key is usable only when the client
    # lists secp256r1 (RFC 8422 §5.1), and each case here offers one group.
    return "rsa2048" if TLS12_SUITES[suite].authentication == "RSA" else "ed25519"


@pytest.mark.parametrize(
    ("groups", "usable"),
    [((NamedGroup.x25519,), False), ((NamedGroup.secp384r1,), False),
     ((NamedGroup.x25519, NamedGroup.secp256r1), True), ((NamedGroup.secp256r1,), True)],
)
def test_an_ecdsa_key_is_used_only_on_a_curve_the_client_lists(
    groups: tuple[NamedGroup, ...], usable: bool
) -> None:
    # RFC 8422 §5.1: no ECC suite the handshake cannot complete "while
    # respecting the choice of curves specified by the client": our P-256
    # certificate needs secp256r1 in the client's supported_groups.
    client, server = new_pair(
        server_config("p256", client_auth=False),
        client_config(None, versions=(TLS12,), groups=groups, key_share_groups=groups[:1]),
    )
    _, server_events = pump(client, server)
    if usable:
        event = completed(server_events)
        assert event is not None and event.version == TLS12, server_events
    else:
        f = failure(server_events)
        assert f is not None and f.sent and f.cause is Cause.no_common_cipher_suite
        assert f.alert == AlertDescription.handshake_failure


@pytest.mark.parametrize("group", _GROUPS, ids=lambda g: g.name)
@pytest.mark.parametrize("suite", _SUITES, ids=lambda s: s.name)
def test_every_suite_and_group(suite: CipherSuite, group: NamedGroup) -> None:
    client, server = new_pair(
        server_config(_kind(suite), client_auth=False, cipher_suites_tls12=(suite,)),
        client_config(None, versions=(TLS12,), groups=(group,)),
    )
    client_events, server_events = pump(client, server)
    ours, theirs = completed(client_events), completed(server_events)
    assert ours is not None and theirs is not None, (client_events, server_events)
    for event in (ours, theirs):
        assert (event.version, event.cipher_suite, event.group) == (TLS12, suite, group)
    assert client.version == server.version == TLS12
    client.send_application_data(b"ping")
    server.send_application_data(b"pong" * 5000)  # two records
    client_events, server_events = pump(client, server)
    assert ApplicationData(b"ping") in server_events
    assert b"".join(e.data for e in client_events if isinstance(e, ApplicationData)) == (
        b"pong" * 5000
    )
    client.close()
    _, server_events = pump(client, server)
    assert PeerClosed(clean=True) in server_events


@pytest.mark.parametrize("client_kind", ["p256", "p384", "ed25519", "rsa2048"])
@pytest.mark.parametrize("server_kind", ["p256", "ed25519", "rsa2048"])
def test_client_certificates(server_kind: str, client_kind: str) -> None:
    client, server = new_pair(
        server_config(server_kind), client_config(client_kind, versions=(TLS12,))
    )
    _, server_events = pump(client, server)
    event = completed(server_events)
    assert event is not None and event.version == TLS12, server_events
    assert event.peer is not None
    assert event.peer.subjects[0] == f"CN=pinata test client {client_kind}"


def test_without_a_client_certificate_the_server_refuses() -> None:
    client, server = new_pair(server_config("p256"), client_config(None, versions=(TLS12,)))
    client_events, server_events = pump(client, server)
    refused = failure(server_events)
    assert refused is not None and refused.cause.value == "client_certificate_missing_tls12"
    assert failure(client_events) is not None


@pytest.mark.parametrize(
    ("client_versions", "server_versions", "expected"),
    [
        ((TLS13, TLS12), (TLS13, TLS12), TLS13),
        ((TLS12,), (TLS13, TLS12), TLS12),
        ((TLS13, TLS12), (TLS12,), TLS12),
        ((TLS13,), (TLS13, TLS12), TLS13),
    ],
)
def test_the_version_both_speak_wins(
    client_versions: tuple[int, ...], server_versions: tuple[int, ...], expected: int
) -> None:
    client, server = new_pair(
        server_config(versions=server_versions), client_config(versions=client_versions)
    )
    client_events, server_events = pump(client, server)
    assert completed(client_events) and completed(server_events)
    assert client.version == server.version == expected


@pytest.mark.parametrize(
    ("client_versions", "server_versions"), [((TLS12,), (TLS13,)), ((TLS13,), (TLS12,))]
)
def test_no_common_version_is_protocol_version(
    client_versions: tuple[int, ...], server_versions: tuple[int, ...]
) -> None:
    client, server = new_pair(
        server_config(versions=server_versions), client_config(versions=client_versions)
    )
    _, server_events = pump(client, server)
    refused = failure(server_events)
    assert refused is not None and refused.alert.name == "protocol_version"


def test_a_seeded_pair_is_deterministic() -> None:
    wires = []
    for _ in range(2):
        client, server = new_pair(
            server_config("ed25519"), client_config("ed25519", versions=(TLS12,)), seed=7
        )
        out = []
        for _ in range(4):
            to_server = client.data_to_send()
            server.receive_data(to_server)
            to_client = server.data_to_send()
            client.receive_data(to_client)
            out += [to_server, to_client]
        assert client.handshake_complete and server.handshake_complete
        wires.append(out)
    assert wires[0] == wires[1]


def test_update_keys_is_a_local_error_in_tls12() -> None:
    client, server = new_pair(server_config(client_auth=False), client_config(versions=(TLS12,)))
    pump(client, server)
    assert server.handshake_complete and server.version == TLS12
    with pytest.raises(LocalProtocolError):
        server.update_keys()
    with pytest.raises(LocalProtocolError):
        client.update_keys(request_peer_update=True)
    client.send_application_data(b"still fine")
    _, server_events = pump(client, server)
    assert ApplicationData(b"still fine") in server_events


def test_a_key_share_is_sent_only_for_an_offered_group() -> None:
    # RFC 8446 §4.2.8: every KeyShareEntry names a group in supported_groups.
    # key_share_groups left at its default (x25519) while groups names only
    # secp256r1: no x25519 share; the server asks for secp256r1 and completes.
    client, server = new_pair(
        server_config("p256", client_auth=False),
        client_config(None, groups=(NamedGroup.secp256r1,)),
    )
    hello = client.data_to_send()
    assert NamedGroup.x25519.to_bytes(2, "big") + b"\x00\x20" not in hello
    server.receive_data(hello)
    _, server_events = pump(client, server)
    event = completed(server_events)
    assert event is not None and event.version == TLS13 and event.group == NamedGroup.secp256r1
