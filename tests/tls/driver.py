"""Drives an engine connection over a blocking loopback socket, for interop
tests against real peers. Bounded: every call has a deadline."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field

from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.events import (
    ApplicationData,
    ConnectionFailed,
    Event,
    HandshakeComplete,
    PeerClosed,
)


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    received: bytes = b""

    @property
    def complete(self) -> HandshakeComplete | None:
        return next((e for e in self.events if isinstance(e, HandshakeComplete)), None)

    @property
    def failure(self) -> ConnectionFailed | None:
        return next((e for e in self.events if isinstance(e, ConnectionFailed)), None)


def run(
    sock: socket.socket,
    conn: ServerConnection | ClientConnection,
    *,
    send_after_handshake: bytes | None = None,
    close_after_send: bool = True,
    read_until: bytes | None = None,
    timeout: float = 10.0,
) -> Outcome:
    """Pump bytes until the peer closes, the connection fails, or the deadline."""
    deadline = time.monotonic() + timeout
    outcome = Outcome()
    sent = False
    sock.settimeout(0.2)
    try:
        while time.monotonic() < deadline:
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            if conn.closed:
                break
            if read_until is not None and read_until in outcome.received:
                conn.close()
                sock.sendall(conn.data_to_send())
                break
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            events = conn.receive_data(data)
            outcome.events += events
            for e in events:
                if isinstance(e, ApplicationData):
                    outcome.received += e.data
            if outcome.complete and send_after_handshake is not None and not sent:
                sent = True
                conn.send_application_data(send_after_handshake)
                if close_after_send:
                    conn.close()
            if any(isinstance(e, PeerClosed | ConnectionFailed) for e in events):
                break
        out = conn.data_to_send()
        if out:
            with contextlib.suppress(OSError):
                sock.sendall(out)
    finally:
        sock.close()
    return outcome
