"""What a server holds while it waits for a client's second flight (issue 18:
memory per stalled handshake): keys as bytes, an AEAD object only for a key
a record has used."""

from __future__ import annotations

import gc
import types

import pytest

from pinata.tls.constants import TLS12, TLS13
from pinata.tls.events import ApplicationData
from pinata.tls.suites import AEAD, SuiteParams
from tests.tls.pairs import client_config, completed, new_pair, server_config


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every key an AEAD object is made for, by either role, in order."""
    keys: list[bytes] = []
    make = SuiteParams.aead

    def counting(self: SuiteParams, key: bytes) -> AEAD:
        keys.append(key)
        return make(self, key)

    monkeypatch.setattr(SuiteParams, "aead", counting)
    return keys


def test_a_stalled_tls13_server_made_an_aead_only_for_its_flight(built: list[bytes]) -> None:
    client, server = new_pair()
    server.receive_data(client.data_to_send())
    flight = server.data_to_send()
    # The handshake write key sealed the flight; the client's handshake key
    # and our application write key wait as bytes (each AEAD object is
    # about 2.5 KiB of OpenSSL state, and a stalled peer never uses them).
    assert len(built) == 1
    client.receive_data(flight)
    second = client.data_to_send()
    del built[:]
    events = server.receive_data(second)
    assert completed(events) is not None
    # Now the client's handshake key has opened its flight; the client's
    # application key waits until its first record.
    assert len(built) == 1
    client.receive_data(server.data_to_send())
    client.send_application_data(b"ping")
    del built[:]
    assert ApplicationData(b"ping") in server.receive_data(client.data_to_send())
    server.send_application_data(b"pong")
    server.data_to_send()
    # One key each way, built once at first use and then reused.
    assert len(built) == 2 and built[0] != built[1]
    client.send_application_data(b"again")
    server.send_application_data(b"again")
    server.receive_data(client.data_to_send())
    server.data_to_send()
    assert len(built) == 2


def _held_bytes(root: object, shared: object) -> list[bytes]:
    """Every bytes-like object reachable from `root`, not through `shared`
    (the configuration, which every connection shares) nor through types,
    modules or functions."""
    seen: set[int] = {id(shared)}
    found: list[bytes] = []
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(obj))
        if isinstance(obj, bytes | bytearray):
            found.append(bytes(obj))
        stack.extend(gc.get_referents(obj))
    return found


@pytest.mark.parametrize("version", [TLS13, TLS12])
def test_a_stalled_server_holds_no_copy_of_its_chain(version: int) -> None:
    # The flight's fixed part (our Certificate, CertificateRequest) is the
    # configuration's, encoded once: a connection waiting for the client's
    # second flight keeps only what is its own (issue 18).
    config = server_config()
    client, server = new_pair(config, client_config(versions=(version,)))
    server.receive_data(bytearray(client.data_to_send()))
    flight = bytes(server.data_to_send())
    assert server.version == version
    leaf = config.credentials.chain[0]
    # The chain was sent: in the clear in TLS 1.2, sealed in TLS 1.3.
    assert leaf in flight if version == TLS12 else len(flight) > len(leaf)
    held = _held_bytes(server, config)
    assert held, "the walk saw no bytes at all"
    assert not [b for b in held if leaf in b]
