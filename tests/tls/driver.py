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

    @property
    def closed_by_peer(self) -> PeerClosed | None:
        return next((e for e in self.events if isinstance(e, PeerClosed)), None)


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


def converse(
    sock: socket.socket,
    conn: ServerConnection | ClientConnection,
    *,
    send: bytes = b"",
    expect_before_send: bytes | None = None,
    expect_before_close: bytes | None = None,
    key_update: bool = False,
    close: bool = True,
    timeout: float = 10.0,
) -> Outcome:
    """One scripted exchange after the handshake, then close_notify both ways.

    Once the handshake completes: optionally a KeyUpdate asking the peer to
    update too (RFC 8446 §4.6.3); once `expect_before_send` has arrived, send
    `send`; once `expect_before_close` has arrived, queue close_notify (§6.1)
    unless `close` is false. Then keep reading until the peer closes or fails,
    or the deadline passes; a peer's close_notify is always answered.
    The socket is closed on return.
    """
    deadline = time.monotonic() + timeout
    outcome = Outcome()
    updated = sent = closed = False
    sock.settimeout(0.05)
    try:
        while time.monotonic() < deadline:
            if outcome.complete and not conn.closed:
                if key_update and not updated:
                    updated = True
                    conn.update_keys(request_peer_update=True)
                if not sent and (
                    expect_before_send is None or expect_before_send in outcome.received
                ):
                    sent = True
                    if send:
                        conn.send_application_data(send)
                if (
                    close
                    and sent
                    and not closed
                    and (expect_before_close is None or expect_before_close in outcome.received)
                ):
                    closed = True
                    conn.close()
            out = conn.data_to_send()
            if out:
                # If the peer hung up, what it said before that is still to be read.
                with contextlib.suppress(OSError):
                    sock.sendall(out)
            if conn.closed:
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
            if not closed and outcome.closed_by_peer:
                # §6.1: answer the peer's close_notify with our own.
                closed = True
                conn.close()
        out = conn.data_to_send()
        if out:
            with contextlib.suppress(OSError):
                sock.sendall(out)
    finally:
        sock.close()
    return outcome
