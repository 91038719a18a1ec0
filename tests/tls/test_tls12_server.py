"""Our server over TLS 1.2, with Python's `ssl` (OpenSSL 3) as the client:
every suite and group, with and without a client certificate, the version
rules, byte-at-a-time delivery, and no secret left after the handshake."""

from __future__ import annotations

import gc
import ssl
import types
from collections.abc import Iterator

import pytest

from pinata.tls.constants import DOWNGRADE_TLS12, TLS12, TLS13, CipherSuite, NamedGroup
from pinata.tls.events import ApplicationData, HandshakeComplete
from pinata.tls.handshake import server12
from pinata.tls.key_exchange import ClientKeyShare
from pinata.tls.suites import TLS12_SUITES
from tests.tls.pairs import completed, failure, server_config
from tests.tls.tls12_peer import OPENSSL_NAMES, SslClient, connect

_SUITES = sorted(TLS12_SUITES)
_GROUPS = [NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1]


def _server_kind(suite: int) -> str:
    return "rsa2048" if TLS12_SUITES[suite].authentication == "RSA" else "p256"


def _complete(client: SslClient) -> HandshakeComplete:
    assert client.handshake(), client.events
    event = completed(client.events)
    assert event is not None, client.events
    assert client.tls.version() == "TLSv1.2" and client.server.version == TLS12
    assert client.round_trip(b"ping") == b"ping"
    assert ApplicationData(b"ping") in client.events
    return event


@pytest.mark.parametrize("group", _GROUPS, ids=lambda g: g.name)
@pytest.mark.parametrize("suite", _SUITES, ids=lambda s: CipherSuite(s).name)
def test_every_suite_and_group(suite: int, group: NamedGroup) -> None:
    config = server_config(
        _server_kind(suite),
        client_auth=False,
        cipher_suites_tls12=(CipherSuite(suite),),
        groups=(group,),
    )
    client = connect(config)
    event = _complete(client)
    assert (event.cipher_suite, event.group, event.peer) == (suite, group, None)
    assert client.tls.cipher()[0] == OPENSSL_NAMES[suite]


@pytest.mark.parametrize("client_kind", ["p256", "p384", "ed25519", "rsa2048"])
@pytest.mark.parametrize("server_kind", ["p256", "ed25519", "rsa2048"])
def test_client_certificates(server_kind: str, client_kind: str) -> None:
    client = connect(server_config(server_kind), client_kind)
    event = _complete(client)
    assert event.peer is not None
    assert event.peer.subjects[0] == f"CN=pinata test client {client_kind}"
    assert event.peer_signature_scheme is not None


def test_a_missing_client_certificate_is_handshake_failure() -> None:
    client = connect(server_config("p256"))
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
        client.handshake()
    refused = failure(client.events)
    assert refused is not None and refused.cause.value == "client_certificate_missing_tls12"


def test_our_preference_picks_the_suite() -> None:
    # ssl offers every suite; ours come in DEFAULT_CIPHER_SUITES_TLS12's order.
    event = _complete(connect(server_config("p256", client_auth=False)))
    assert event.cipher_suite == CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    event = _complete(connect(server_config("rsa2048", client_auth=False)))
    assert event.cipher_suite == CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256


def test_a_tls13_client_still_gets_tls13() -> None:
    client = connect(server_config("p256", client_auth=False), maximum=ssl.TLSVersion.TLSv1_3)
    assert client.handshake()
    assert client.tls.version() == "TLSv1.3" and client.server.version == TLS13
    assert ("note", "TLS 1.3") in [(e.kind, e.what) for e in client.server.trace.entries]


def test_the_trace_names_the_version_and_the_random_carries_the_sentinel() -> None:
    client = connect(server_config("p256", client_auth=False))
    _complete(client)
    assert ("note", "TLS 1.2") in [(e.kind, e.what) for e in client.server.trace.entries]
    only12 = connect(server_config("p256", client_auth=False, versions=(TLS12,)))
    _complete(only12)
    # ServerHello.random follows the record header (5), the handshake
    # header (4) and the version (2) of our first flight.
    randoms = [c.replies[0][11:43] for c in (client, only12)]
    assert all(c.replies[0][:1] == b"\x16" and c.replies[0][5] == 2 for c in (client, only12))
    # RFC 8446 §4.1.3: only a server that could have spoken 1.3 says so.
    assert randoms[0].endswith(DOWNGRADE_TLS12)
    assert not randoms[1].endswith(DOWNGRADE_TLS12)


def test_tls12_only_client_against_a_tls13_only_server_is_protocol_version() -> None:
    client = connect(server_config("p256", client_auth=False, versions=(TLS13,)))
    with pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL"):
        client.handshake()
    refused = failure(client.events)
    assert refused is not None and refused.alert.name == "protocol_version"


def test_one_byte_at_a_time_is_the_same_as_all_at_once() -> None:
    outcomes = []
    for one_byte in (False, True):
        client = connect(server_config("p256"), "p256")
        assert client.handshake(one_byte_at_a_time=one_byte)
        event = completed(client.events)
        assert event is not None
        states = [e.what for e in client.server.trace.entries if e.kind == "state"]
        outcomes.append((event.cipher_suite, event.group, event.peer_signature_scheme, states))
        assert client.round_trip(b"x" * 1000) == b"x" * 1000
    assert outcomes[0] == outcomes[1]


# ---- no secret survives the handshake ----------------------------------------


def _reachable(root: object) -> Iterator[object]:
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, types.ModuleType | type | types.FunctionType):
            continue
        seen.add(id(obj))
        assert len(seen) < 200_000, "object graph unexpectedly large"
        yield obj
        stack.extend(gc.get_referents(obj))


def _holds(root: object, secrets: list[bytes]) -> list[str]:
    found = []
    for obj in _reachable(root):
        if isinstance(obj, bytes | bytearray) and bytes(obj) in secrets:
            found.append("a handshake secret")
        if isinstance(obj, ClientKeyShare):
            found.append("an ephemeral key")
    return found


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The pre-master and master secrets our server derives, as it derives them."""
    secrets: list[bytes] = []
    original = server12.master_secret

    def master_secret(params, pre_master_secret, session_hash):  # type: ignore[no-untyped-def]
        master = original(params, pre_master_secret, session_hash)
        secrets.extend((pre_master_secret, master))
        return master

    monkeypatch.setattr(server12, "master_secret", master_secret)
    return secrets


def test_the_master_secret_does_not_survive_the_handshake(recorded: list[bytes]) -> None:
    client = connect(server_config("p256"), "p256")
    _complete(client)
    assert len(recorded) == 2
    assert _holds(client.server, recorded) == []


def test_the_walk_would_see_the_master_secret_mid_handshake(recorded: list[bytes]) -> None:
    client = connect(server_config("p256", client_auth=False))
    client.handshake()  # run to the end, then rebuild a server mid-way
    replay = connect(server_config("p256", client_auth=False))
    replay.server.receive_data(client.sent[0])
    assert "an ephemeral key" in _holds(replay.server, recorded)
    replay.server.receive_data(client.sent[1][:-40])  # ClientKeyExchange, CCS, no Finished
    assert "a handshake secret" in _holds(replay.server, [*recorded])
