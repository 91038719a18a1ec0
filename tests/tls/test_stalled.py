"""What a server holds while it waits for a client's second flight (issue 18:
memory per stalled handshake): keys as bytes, an AEAD object only for a key
a record has used."""

from __future__ import annotations

import pytest

from pinata.tls.events import ApplicationData
from pinata.tls.suites import AEAD, SuiteParams
from tests.tls.pairs import completed, new_pair


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
