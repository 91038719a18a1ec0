"""The three bounty ports. Each handler gets an accepted TCP stream and the
connection's record, and leaves its verdict in the record; the accept loop
(`server`) owns admission, the connection deadline, counting and logging.

The secret leaves only in `_release`, only after a handshake whose peer chain
the validator accepted (`HandshakeComplete.peer` is set only then).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import trio

from pinata.appliance.guard import Deadlines, GuardedStream, Refused
from pinata.appliance.journal import ConnectionRecord
from pinata.appliance.limits import Knock
from pinata.appliance.outcome import Outcome
from pinata.appliance.state import ApplianceState
from pinata.appliance.tls_stream import Engine, TLSFailed, TLSStream
from pinata.appliance.transport import SocketTransport, connect
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import version_name
from pinata.tls.events import HandshakeComplete

# The names `Deadlines.expired` gives the phases' deadlines.
HANDSHAKE_DEADLINE = "handshake deadline"
LINGER = "linger"


# What follows a completed handshake: the bounty's release, or the HTTPS page.
AfterHandshake = Callable[[ApplianceState, GuardedStream, TLSStream, HandshakeComplete,
                           ConnectionRecord], Awaitable[None]]


async def session(state: ApplianceState, tls: TLSStream, stream: GuardedStream,
                  record: ConnectionRecord, then: AfterHandshake, *, keep_trace: bool) -> None:
    """A TLS connection over the guarded `stream`: the handshake under its own
    deadline, a phase of the connection's one scope (`Deadlines`: its expiry
    ends the connection, logged as a timeout), then `then`. A failed
    handshake leaves its verdict in the record, and an alert we sent is left
    for the peer to read (`linger`). With `keep_trace`, the engine's trace goes
    into the record whatever happened.

    `tls` comes from `begin`, over `stream`. The handshake and what follows
    it are one coroutine: every frame of the chain is resumed at each
    scheduler step and held while the peer stalls."""
    try:
        try:
            done = await tls.do_handshake()
        except TLSFailed as exc:
            record.failed(exc.failure)
            _note_version(tls, record)
            if exc.failure.sent:
                # Let the peer read our alert: a close with its later records
                # unread would reset the connection and could destroy it.
                await linger(state, tls, stream.deadlines)
            return
        stream.deadlines.end_phase()
        record.handshake(done)
        if record.version is not None:
            state.counters.handshake_completed(record.version)
        await then(state, stream, tls, done, record)
    finally:
        if keep_trace:
            record.take_trace(tls.engine.trace.entries, state.settings.limits.max_trace_entries)


def begin(state: ApplianceState, engine: Engine, stream: GuardedStream) -> TLSStream:
    """The TLS stream over `stream`, its handshake's deadline begun, for
    `session`. Called by the handler that hands `session`'s coroutine back:
    `session`'s frame, held while the peer stalls, then keeps the stream as
    an argument and not the engine too (issue 18)."""
    stream.deadlines.begin_phase(HANDSHAKE_DEADLINE, state.settings.limits.handshake_timeout)
    return TLSStream(stream, engine, feeder=stream)


def _note_version(tls: TLSStream, record: ConnectionRecord) -> None:
    """A failed handshake's version, if the hellos had settled one (a refused
    chain over TLS 1.2 is logged as such)."""
    engine = tls.engine
    if isinstance(engine, ServerConnection | ClientConnection) and engine.version is not None:
        record.version = version_name(engine.version)


async def _release(state: ApplianceState, stream: GuardedStream, tls: TLSStream,
                   done: HandshakeComplete, record: ConnectionRecord) -> None:
    if done.peer is None:
        # Refuse by default: a handshake without a verified peer earns nothing.
        record.finish(Outcome.internal_error, "handshake completed without a verified peer")
        return
    await tls.send_last(state.settings.secret.reveal_for_verified_peer())
    # Our own leaf (self-talk, or anyone relaying us into ourselves) is no break.
    own = done.peer.chain[0] in state.own_leaves
    record.finish(Outcome.released_to_self if own else Outcome.secret_released)
    await linger(state, tls, stream.deadlines)


async def linger(state: ApplianceState, tls: TLSStream, deadlines: Deadlines) -> None:
    """close_notify (unless failed), half-close, and drain the peer a bounded
    while (`linger_timeout`, `linger_bytes`) before the socket is closed. The
    connection's last phase, so never ended: past its deadline the connection
    simply ends (moving a deadline costs trio a heap entry)."""
    limits = state.settings.limits
    deadlines.begin_phase(LINGER, limits.linger_timeout)
    await tls.close_gracefully(limits.linger_bytes)


def guarded(state: ApplianceState, stream: trio.abc.HalfCloseableStream, address: str,
            deadlines: Deadlines, *, count_bytes: bool = True) -> GuardedStream:
    """`stream` under the per-step deadlines (kept by `deadlines`) and, unless
    `count_bytes` is False (plain HTTP, bounded by h11), the pre-authentication
    byte budgets."""
    return GuardedStream(stream, address, deadlines=deadlines, rules=state.guard_rules,
                         preauth=state.preauth if count_bytes else None)


# The two handlers below build the engine and hand back `session`'s coroutine
# rather than awaiting it: one coroutine frame (~0.3 KiB) fewer held while
# the peer stalls (issue 18).
def tls_server(state: ApplianceState, stream: GuardedStream,
               record: ConnectionRecord) -> Awaitable[None]:
    """Port 10000: we are the TLS server and demand a client certificate."""
    # The connection's start is the engine's now (for certificate validity):
    # one clock read and one datetime per connection fewer.
    engine = ServerConnection(state.server_config, random=os.urandom, now=record.started)
    return session(state, begin(state, engine, stream), stream, record, _release,
                   keep_trace=True)


def tls_client(state: ApplianceState, stream: GuardedStream,
               record: ConnectionRecord) -> Awaitable[None]:
    """Port 10002: on the connection the peer opened, we are the TLS client."""
    engine = ClientConnection(state.client_config, random=os.urandom, now=record.started)
    return session(state, begin(state, engine, stream), stream, record, _release,
                   keep_trace=True)


async def connect_back(state: ApplianceState, stream: GuardedStream,
                       record: ConnectionRecord) -> None:
    """Port 10001: close at once, then dial the initiator's port 40001 as TLS client.

    Dialling out on request lets anyone aim us at a third party, so only the
    initiating address is dialled, only at the one fixed port, one at a time
    per address (a second knock waits its turn, a third is refused), at a
    bounded rate per network and globally.
    """
    await trio.aclose_forcefully(stream)  # unread: the original did not read either
    address = record.peer[0]
    verdict = state.gate.acquire(address, trio.current_time())
    state.counters.knock(verdict.name if isinstance(verdict, Knock) else verdict)
    if not isinstance(verdict, Knock):
        raise Refused(verdict)
    if verdict is Knock.queued:
        await _wait_for_turn(state, address)
    try:
        await _dial_back(state, record, stream.deadlines)
    finally:
        _pass_on(state, address)


def _pass_on(state: ApplianceState, address: str) -> None:
    """The connect-back to `address` ended: wake the knock queued behind it, if any."""
    if state.gate.release(address):
        state.handovers.pop(address).set()


async def _wait_for_turn(state: ApplianceState, address: str) -> None:
    """Wait until the connect-back in flight to `address` hands over its slot."""
    turn = state.handovers[address] = trio.Event()
    handed_over = False
    try:
        await turn.wait()
        handed_over = True
    finally:
        if not handed_over:
            if turn.is_set():  # cancelled just as our turn came: pass it on
                _pass_on(state, address)
            else:
                state.gate.abandon(address)
                state.handovers.pop(address, None)


async def _dial_back(state: ApplianceState, record: ConnectionRecord,
                     deadlines: Deadlines) -> None:
    address = record.peer[0]
    target = state.settings.ports.connect_back_target
    outbound: SocketTransport | None = None
    with trio.move_on_after(state.settings.limits.connect_timeout):
        try:
            outbound = await connect(address, target)
        except OSError as exc:
            record.finish(Outcome.connect_back_failed, f"connect to port {target}: "
                          f"{exc.strerror or type(exc).__name__}")
            return
    if outbound is None:
        record.finish(Outcome.connect_back_failed, f"connect to port {target}: timeout")
        return
    guard = guarded(state, outbound, address, deadlines)
    try:
        await tls_client(state, guard, record)
    finally:
        # Through the guard, which gives back the bytes charged to the
        # pre-authentication budget, then closes the socket.
        await trio.aclose_forcefully(guard)
