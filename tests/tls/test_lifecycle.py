"""The connection as states: per-direction key stages, the early-data skip
as a stage, Established owning KeyUpdate and close_notify, Closed accepting
nothing; and no handshake secret left in a finished connection."""

from __future__ import annotations

import gc
import types
from collections.abc import Iterator

import pytest

from pinata.tls import keyschedule
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import ContentType
from pinata.tls.errors import AlertDescription, LocalProtocolError
from pinata.tls.established import (
    MAX_WARNING_ALERTS_IN_A_ROW,
    ClientEstablished,
    Idle,
    ServerEstablished,
)
from pinata.tls.events import ApplicationData, PeerClosed
from pinata.tls.key_exchange import ClientKeyShare
from pinata.tls.stages import (
    ReadClosed,
    ReadHandshake,
    ReadPlaintext,
    ReadTraffic,
    WriteClosed,
    WriteHandshake,
    WritePlaintext,
    WriteTraffic,
)
from tests.tls.pairs import completed, failure, new_pair, pump


def test_the_key_stages_follow_the_handshake() -> None:
    client, server = new_pair()
    assert isinstance(server._read, ReadPlaintext) and isinstance(server._write, WritePlaintext)
    server.receive_data(client.data_to_send())
    # The server's whole flight is out: it writes under application keys
    # and still reads the client's handshake under handshake keys.
    assert isinstance(server._read, ReadHandshake) and isinstance(server._write, WriteTraffic)
    client.receive_data(server.data_to_send())
    assert isinstance(client._read, ReadTraffic) and isinstance(client._write, WriteTraffic)
    server.receive_data(client.data_to_send())
    assert isinstance(server._read, ReadTraffic)
    assert isinstance(server._state, ServerEstablished)
    assert isinstance(client._state, ClientEstablished)


def test_half_close_then_close() -> None:
    client, server = new_pair()
    pump(client, server)
    client.close()
    assert isinstance(client._write, WriteClosed) and isinstance(client._read, ReadTraffic)
    _, server_events = pump(client, server)
    assert PeerClosed(clean=True) in server_events
    assert isinstance(server._read, ReadClosed) and isinstance(server._write, WriteTraffic)
    server.send_application_data(b"still open this way")
    client_events, _ = pump(client, server)
    assert ApplicationData(b"still open this way") in client_events


def test_a_failed_connection_closes_both_ways_and_accepts_nothing() -> None:
    client, server = new_pair()
    pump(client, server)
    events = server.receive_data(b"\x17\x03\x03\x00\x20" + bytes(32))
    assert failure(events) is not None
    assert isinstance(server._read, ReadClosed) and isinstance(server._write, WriteClosed)
    assert server.receive_data(b"\x17\x03\x03\x00\x20" + bytes(32)) == []
    server.data_to_send()
    server.close()
    assert server.data_to_send() == b""


# ---- no handshake secret survives the handshake ---------------------------


def _reachable(root: object, limit: int = 200_000) -> Iterator[object]:
    """Every object reachable from `root`, not following into modules,
    classes or functions (the process's globals are not the connection's)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, types.ModuleType | type | types.FunctionType):
            continue
        seen.add(id(obj))
        assert len(seen) < limit, "object graph unexpectedly large"
        yield obj
        stack.extend(gc.get_referents(obj))


@pytest.fixture
def recorded_secrets(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every handshake-stage secret the key schedule derives, as it derives them."""
    secrets: list[bytes] = []
    original_hs = keyschedule.KeySchedule.handshake_secrets
    original_app = keyschedule.KeySchedule.application_secrets

    def handshake_secrets(self, shared_secret, hello_hash):  # type: ignore[no-untyped-def]
        hs = original_hs(self, shared_secret, hello_hash)
        secrets.extend(
            (
                shared_secret,
                hs.handshake_secret,
                hs.client_handshake_traffic_secret,
                hs.server_handshake_traffic_secret,
            )
        )
        return hs

    def application_secrets(self, handshake_secret, server_finished_hash):  # type: ignore[no-untyped-def]
        app = original_app(self, handshake_secret, server_finished_hash)
        secrets.append(app.master_secret)  # the exporter secret is never derived
        return app

    monkeypatch.setattr(keyschedule.KeySchedule, "handshake_secrets", handshake_secrets)
    monkeypatch.setattr(keyschedule.KeySchedule, "application_secrets", application_secrets)
    return secrets


def _holds(connection: ClientConnection | ServerConnection, secrets: list[bytes]) -> list[str]:
    wanted = set(secrets)
    found = []
    for obj in _reachable(connection):
        if isinstance(obj, bytes | bytearray) and bytes(obj) in wanted:
            found.append("a handshake secret")
        if isinstance(obj, ClientKeyShare):
            found.append("an ephemeral key share")
    return found


def test_a_finished_connection_holds_no_handshake_secret(recorded_secrets: list[bytes]) -> None:
    client, server = new_pair()
    client_events, server_events = pump(client, server)
    assert completed(client_events) and completed(server_events)
    # Both sides derived: shared, handshake, two handshake traffic, master
    # (the exporter secret is derived only on demand, and nothing asks).
    assert len(recorded_secrets) == 10
    # The walk does find secrets where they are: the traffic secrets the
    # Established state keeps for KeyUpdate (a guard that the walk reaches it).
    assert isinstance(server._state, ServerEstablished)
    assert server._state.write_secret is not None
    assert any(o is server._state.write_secret for o in _reachable(server))
    assert _holds(client, recorded_secrets) == []
    assert _holds(server, recorded_secrets) == []


def test_the_walk_would_see_a_handshake_secret_mid_handshake(
    recorded_secrets: list[bytes],
) -> None:
    client, server = new_pair()
    server.receive_data(client.data_to_send())
    # The server waits for the client's Finished: it must still hold the
    # client's handshake traffic secret, and the walk must find it.
    assert isinstance(server._write, WriteTraffic | WriteHandshake)
    assert _holds(server, recorded_secrets) == ["a handshake secret"]


def test_key_update_drops_the_previous_traffic_secret() -> None:
    client, server = new_pair()
    pump(client, server)
    state = client._state
    assert isinstance(state, ClientEstablished)
    old = state.write_secret
    assert old is not None
    client.update_keys(request_peer_update=True)
    client.send_application_data(b"x")
    pump(client, server)
    for connection in (client, server):
        assert not any(isinstance(o, bytes) and o == old for o in _reachable(connection)), (
            connection
        )


# ---- Established owns KeyUpdate and close_notify ---------------------------


def test_key_update_moves_the_established_state_not_a_counter() -> None:
    client, server = new_pair()
    pump(client, server)
    before = server._state
    assert isinstance(before, ServerEstablished) and before.idle == Idle()
    client.update_keys()
    pump(client, server)
    after = server._state
    assert isinstance(after, ServerEstablished)
    assert after.idle == Idle(key_updates=1)
    assert after.read_secret != before.read_secret
    assert after.write_secret == before.write_secret  # not requested: ours stays
    client.send_application_data(b"x")
    pump(client, server)
    assert server._state.idle == Idle()  # type: ignore[union-attr]


def test_each_direction_drops_its_secret_when_it_closes() -> None:
    client, server = new_pair()
    pump(client, server)
    client.close()
    state = client._state
    assert isinstance(state, ClientEstablished)
    assert state.write_secret is None and state.read_secret is not None
    pump(client, server)
    peer = server._state
    assert isinstance(peer, ServerEstablished)
    assert peer.read_secret is None and peer.write_secret is not None
    with pytest.raises(LocalProtocolError):
        client.update_keys()


def test_a_failure_drops_both_secrets() -> None:
    client, server = new_pair()
    pump(client, server)
    assert failure(server.receive_data(b"\x17\x03\x03\x00\x20" + bytes(32))) is not None
    state = server._state
    assert isinstance(state, ServerEstablished)
    assert state.read_secret is None and state.write_secret is None


def test_the_connection_keeps_no_flag_or_counter_of_its_own() -> None:
    client, server = new_pair()
    pump(client, server)
    # The handshake state, two key stages, the reassembly buffer (with its
    # budget) and the output queues; nothing that must agree with a state.
    # `_version` is set once, when the ServerHello is sent or read, and says
    # how every later message and ChangeCipherSpec is read.
    expected = {
        "_ctx",
        "_version",
        "_state",
        "_read",
        "_write",
        "_deframer",
        "_handshake_buffer",
        "_handshake_total",
        "_pending_handshake",
        "_out",
        "trace",
    }
    for connection in (server, client):
        # Slotted (issue 18): its fields are its classes' slots, and nothing
        # can be added beside them.
        assert not hasattr(connection, "__dict__")
        fields = {name for cls in type(connection).__mro__
                  for name in getattr(cls, "__slots__", ())}
        assert fields == expected
        assert all(hasattr(connection, name) for name in fields)


def test_warning_alerts_during_the_handshake_are_limited_by_the_read_stage() -> None:
    _, server = new_pair()
    user_canceled = bytes((ContentType.alert, 3, 3, 0, 2, 1, 90))
    for _ in range(MAX_WARNING_ALERTS_IN_A_ROW):
        assert server.receive_data(user_canceled) == []
    assert isinstance(server._read, ReadPlaintext)
    assert server._read.warnings == MAX_WARNING_ALERTS_IN_A_ROW
    f = failure(server.receive_data(user_canceled))
    assert f is not None and f.alert == AlertDescription.unexpected_message
