"""The three bounty ports. Each handler gets an accepted TCP stream and the
connection's record, and leaves its verdict in the record; the accept loop
(`server`) owns admission, the connection deadline, counting and logging.

The secret leaves only in `_release`, only after a handshake whose peer chain
the validator accepted (`HandshakeComplete.peer` is set only then).
"""

from __future__ import annotations

import os

import trio

from pinata.appliance.journal import ConnectionRecord
from pinata.appliance.net import dial
from pinata.appliance.outcome import Outcome
from pinata.appliance.state import ApplianceState
from pinata.appliance.tls_stream import Engine, TLSFailed, TLSStream
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.events import HandshakeComplete


async def handshake(
    state: ApplianceState, tls: TLSStream, record: ConnectionRecord
) -> HandshakeComplete | None:
    """The handshake under its own deadline; None (with the record's verdict) if it fails."""
    with trio.move_on_after(state.settings.limits.handshake_timeout) as deadline:
        try:
            done = await tls.do_handshake()
        except TLSFailed as exc:
            record.failed(exc.failure)
            return None
        record.handshake(done)
        return done
    if deadline.cancelled_caught:
        record.finish(Outcome.timeout, "handshake deadline")
    return None


async def _release(
    state: ApplianceState, tls: TLSStream, done: HandshakeComplete, record: ConnectionRecord
) -> None:
    if done.peer is None:
        # Refuse by default: a handshake without a verified peer earns nothing.
        record.finish(Outcome.internal_error, "handshake completed without a verified peer")
        return
    await tls.send_all(state.settings.secret.reveal_for_verified_peer())
    record.finish(Outcome.secret_released)
    limits = state.settings.limits
    with trio.move_on_after(limits.linger_timeout):
        await tls.close_gracefully(limits.linger_bytes)


def _keep_trace(state: ApplianceState, engine: Engine, record: ConnectionRecord) -> None:
    record.take_trace(engine.trace.entries, state.settings.limits.max_trace_entries)


async def _bounty(state: ApplianceState, engine: Engine, stream: trio.abc.Stream,
                  record: ConnectionRecord) -> None:
    tls = TLSStream(stream, engine)
    try:
        done = await handshake(state, tls, record)
        if done is not None:
            await _release(state, tls, done, record)
    finally:
        _keep_trace(state, engine, record)


async def tls_server(state: ApplianceState, stream: trio.abc.Stream,
                     record: ConnectionRecord) -> None:
    """Port 10000: we are the TLS server and demand a client certificate."""
    engine = ServerConnection(state.server_config, random=os.urandom, now=state.now())
    await _bounty(state, engine, stream, record)


async def tls_client(state: ApplianceState, stream: trio.abc.Stream,
                     record: ConnectionRecord) -> None:
    """Port 10002: on the connection the peer opened, we are the TLS client."""
    engine = ClientConnection(state.client_config, random=os.urandom, now=state.now())
    await _bounty(state, engine, stream, record)


async def connect_back(state: ApplianceState, stream: trio.abc.Stream,
                       record: ConnectionRecord) -> None:
    """Port 10001: close at once, then dial the initiator's port 40001 as TLS client.

    Dialling out on request lets anyone aim us at a third party, so only the
    initiating address is dialled, only at the one fixed port, one at a time
    per address and at a bounded global rate.
    """
    await trio.aclose_forcefully(stream)  # unread: the original did not read either
    address = record.peer[0]
    limits = state.settings.limits
    refused = state.gate.acquire(address, trio.current_time())
    if refused is not None:
        state.counters.limit_hit(refused)
        record.finish(Outcome.limit, refused)
        return
    try:
        target = state.settings.ports.connect_back_target
        outbound: trio.SocketStream | None = None
        with trio.move_on_after(limits.connect_timeout):
            try:
                outbound = await dial(address, target)
            except OSError as exc:
                record.finish(Outcome.connect_back_failed, f"connect to port {target}: "
                              f"{exc.strerror or type(exc).__name__}")
                return
        if outbound is None:
            record.finish(Outcome.connect_back_failed, f"connect to port {target}: timeout")
            return
        try:
            await tls_client(state, outbound, record)
        finally:
            await trio.aclose_forcefully(outbound)
    finally:
        state.gate.release(address)
