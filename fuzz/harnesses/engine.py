"""Driving a connection under the invariant: the shared core of the four
engine harnesses.

`Watched` wraps the connection under test. Every byte string it is fed goes
through `receive_data`, which must never raise on peer input (a
`ProtocolError` becomes one `ConnectionFailed` and one alert); after each
call the output is framed and the alert checked, the marker secret is looked
for in everything observable, and a completed handshake must carry a
verified peer when one was asked for. On completion with a verified peer it
sends the marker secret, as the appliance does.
"""

from __future__ import annotations

from fuzz.harnesses.support import (
    MARKER_SECRET,
    FuzzFinding,
    Input,
    check_completion,
    check_events,
    check_no_secret,
)
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.errors import LocalProtocolError
from pinata.tls.events import ConnectionFailed, Event, HandshakeComplete


class Watched:
    def __init__(self, connection: ServerConnection | ClientConnection, *, peer_required: bool):
        self.connection = connection
        self.peer_required = peer_required
        self.events: list[Event] = []
        self.sent_secret = False

    def take_output(self) -> bytes:
        out = self.connection.data_to_send()
        check_no_secret(out)
        return out

    def feed(self, data: bytes) -> bytes:
        """Bytes from the peer in; bytes for the peer out."""
        conn = self.connection
        was_closed = conn.closed
        try:
            events = conn.receive_data(data)
        except Exception as error:
            raise FuzzFinding(f"receive_data raised {type(error).__name__}: {error}") from error
        if was_closed and events:
            raise FuzzFinding("events from a connection that was already closed")
        out = conn.data_to_send()
        check_events(events, out, protected=False)
        done = check_completion(events, peer_required=self.peer_required)
        self.events += events
        if isinstance(done, HandshakeComplete) and done.peer is not None and not conn.closed:
            try:
                conn.send_application_data(MARKER_SECRET)
            except LocalProtocolError as error:
                raise FuzzFinding(f"cannot send after HandshakeComplete: {error}") from error
            self.sent_secret = True
            out += conn.data_to_send()
        failed = [e for e in events if isinstance(e, ConnectionFailed)]
        check_no_secret(out, conn.trace.to_json(), events, [f.reason for f in failed])
        return out

    def finish(self) -> None:
        """The peer goes away: end of stream, then the same checks."""
        self.feed(b"")
        if not self.connection.closed:
            raise FuzzFinding("connection still open after end of stream")


MAX_ROUNDS = 8


def _record(content_type: int, body: bytes) -> bytes:
    return bytes((content_type, 3, 3)) + len(body).to_bytes(2, "big") + body


def _peer_acts(peer: ServerConnection | ClientConnection, inp: Input, data: bytes) -> bytes:
    """What the attacker does with its own next flight before sending it."""
    action = inp.below(10) if inp.remaining else 0
    if action == 1:
        # A record of any type, in the clear, before or after the flight.
        extra = _record((20, 21, 22, 23, inp.u8())[inp.below(5)], inp.blob())
        return extra + data if inp.bool() else data + extra
    if action == 2:
        return data[: inp.below(len(data) + 1)]
    if action == 3:
        return data + inp.blob()
    if action == 4 and data:
        changed = bytearray(data)
        changed[inp.below(len(changed))] ^= inp.u8() | 1
        return bytes(changed)
    if peer.handshake_complete and not peer.closed:
        try:
            if action == 5:
                peer.update_keys(request_peer_update=inp.bool())
            elif action == 6:
                peer.send_application_data(inp.blob() or b"x")
            elif action == 7:
                peer.close()
        except LocalProtocolError:
            pass  # the attacker's own misuse of its API, not the target's bug
        return data + peer.data_to_send()
    return data


def duel(target: Watched, peer: ServerConnection | ClientConnection, inp: Input) -> None:
    """Moves bytes between the target and a mutating peer for a few rounds,
    letting the input tamper with each of the peer's flights."""
    to_target = peer.data_to_send()
    for _ in range(MAX_ROUNDS):
        to_target = _peer_acts(peer, inp, to_target)
        if not to_target and not inp.remaining:
            break
        if to_target:
            to_peer = target.feed(to_target)
            if to_peer and not peer.closed:
                peer.receive_data(to_peer)
        to_target = peer.data_to_send()
        if target.connection.closed:
            break
    target.finish()
