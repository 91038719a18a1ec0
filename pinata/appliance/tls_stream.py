"""A trio Stream that speaks TLS through our sans-I/O engine.

The engine takes bytes and returns events; this adapter is the only place
they meet a socket. Reads are bounded (four records' worth at a time), every
write drains whatever the engine queued, so several records share one socket
write: a whole flight costs one receive and one send, and nothing else
yields to the event loop (trio's `Lock` does, on every acquire, even when
free: two extra scheduler round trips per flight, about a fifth of the
adapter's cost, issue 18). Failures surface as `TLSFailed` carrying the
engine's `ConnectionFailed` event, after the alert it queued has been sent.

Concurrency, as trio's stream contract puts it: at most one task sends and
one receives at a time. Until the handshake completes, one task drives it
(`do_handshake`, or the first `send_all` or `receive_some`); a second task
entering then gets `trio.BusyResourceError`. Afterwards a sender and a
receiver may run together: whoever holds the transport's send side drains
everything the engine queued before it lets go, so a receiver that finds it
taken leaves its bytes (a KeyUpdate answer, an alert) to that sender.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol

import trio

from pinata.tls.constants import MAX_CIPHERTEXT, MAX_PLAINTEXT, RECORD_HEADER_LEN
from pinata.tls.errors import Cause
from pinata.tls.events import (
    ApplicationData,
    ConnectionFailed,
    Ended,
    Event,
    HandshakeComplete,
    PeerClosed,
)

# Four full records per read: we read again only once the application has
# taken what we hold, so the buffered plaintext never exceeds what one read
# can carry (64 KiB). One record per read would suffice for progress, but
# each read is an event-loop step: bulk receiving cost about twice the CPU
# per MB with one record per read (issue 18).
RECEIVE_SIZE = 4 * (MAX_CIPHERTEXT + RECORD_HEADER_LEN)
# Sixteen full records per socket write (about 256 KiB), sealed into the
# write key's reused buffer (`RecordProtector.seal_reusing`): no fresh memory
# per write, so the size is a trade between system calls and event-loop
# steps per MB (fewer as it grows) and the buffer a bulk sender keeps.
SEND_SLICE = 16 * MAX_PLAINTEXT


class TraceEntryLike(Protocol):
    def to_json(self) -> dict[str, object]: ...  # a fresh dict per call, the caller's to keep


class TraceLike(Protocol):
    @property
    def entries(self) -> Sequence[TraceEntryLike]: ...


class Engine(Protocol):
    """What `ServerConnection` and `ClientConnection` have in common."""

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]: ...

    def data_to_send(self) -> bytes | memoryview: ...

    def send_application_data(self, data: bytes | memoryview) -> None: ...

    def close(self) -> None: ...

    @property
    def handshake_complete(self) -> bool: ...

    @property
    def state_name(self) -> str: ...

    @property
    def closed(self) -> bool: ...

    @property
    def trace(self) -> TraceLike: ...


class Feeder(Protocol):
    """How received bytes reach the engine; by default directly, on the loop.
    The appliance passes its guard, which validates large chains in a worker
    thread. An object rather than a callable: the stream keeps a reference to
    one that exists anyway, where a bound method is an object per connection
    held while the peer stalls (issue 18)."""

    async def feed(self, engine: Engine, data: bytes) -> list[Event]: ...



class TLSFailed(Exception):
    """The TLS connection failed; `failure` says who sent which alert."""

    def __init__(self, failure: ConnectionFailed) -> None:
        super().__init__(failure.reason)
        self.failure = failure


class TLSStream(trio.abc.Stream):
    # One per connection, held through a stalled handshake: no __dict__.
    __slots__ = (
        "_eof_fed",
        "_feeder",
        "_incoming",
        "_receiving",
        "_sending",
        "_sent",
        "_taken",
        "engine",
        "failure",
        "handshake",
        "peer_closed",
        "transport",
    )

    def __init__(self, transport: trio.abc.Stream, engine: Engine,
                 feeder: Feeder | None = None) -> None:
        self.transport = transport
        self.engine = engine
        self._feeder = feeder
        self.handshake: HandshakeComplete | None = None
        self.failure: ConnectionFailed | None = None
        self.peer_closed: PeerClosed | None = None
        # Plaintext the application has not taken yet, as the engine gave it
        # (one bytes object per record): handed out whole, without a copy,
        # when the reader asks for as much; `_taken` bytes of the first are gone.
        # None until the first record arrives: an empty list is 56 bytes
        # that every stalled handshake would hold (issue 18).
        self._incoming: list[bytes] | None = None
        self._taken = 0
        # Who holds each side right now: checked and set with no await
        # between, which is all trio's single-threaded scheduling needs.
        self._sending = False
        self._receiving = False
        self._sent: trio.Event | None = None  # made only when a sender must wait
        self._eof_fed = False

    # --- driving the engine -------------------------------------------------------

    async def _flush(self, *, wait: bool = True) -> None:
        """Send everything the engine has queued, including what another task
        queues while we write. If another task holds the send side, it will
        send ours too: a receiver (`wait=False`) leaves it at that; a sender
        waits until it is written, so `send_all` keeps its back-pressure."""
        while self._sending:
            if not wait:
                return
            if self._sent is None:
                self._sent = trio.Event()
            await self._sent.wait()
        self._sending = True
        try:
            while data := self.engine.data_to_send():
                await self.transport.send_all(data)
        finally:
            self._sending = False
            if self._sent is not None:
                self._sent.set()
                self._sent = None

    def _absorb(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, HandshakeComplete):
                self.handshake = event
            elif isinstance(event, ApplicationData) and event.data:
                # An empty one would read as EOF.
                if self._incoming is None:
                    self._incoming = []
                self._incoming.append(event.data)
            elif isinstance(event, PeerClosed):
                self.peer_closed = event
            elif isinstance(event, ConnectionFailed) and self.failure is None:
                self.failure = event

    def _claim_receive(self) -> None:
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this TLSStream")
        self._receiving = True

    async def _take(self, data: bytes | bytearray) -> None:
        """Feed what one socket read returned to the engine, holding the
        receive claim while it does, and send what the engine answers.

        The read itself is awaited by `do_handshake` and `receive_some`, not
        here: a stalled handshake then holds no frame between `do_handshake`
        and the transport's (one coroutine, ~250 bytes, fewer: issue 18)."""
        self._claim_receive()
        try:
            if not data:
                self._eof_fed = True
            if self._feeder is None:
                self._absorb(self.engine.receive_data(data))
            else:
                self._absorb(await self._feeder.feed(self.engine, bytes(data)))
            if not data and self.peer_closed is None and self.failure is None:
                # The engine saw EOF and had nothing to say: the peer is gone.
                self.peer_closed = PeerClosed(clean=False)
        finally:
            self._receiving = False
        try:
            await self._flush(wait=False)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            if self.failure is None and self.peer_closed is None:
                raise

    def _raise_if_failed(self) -> None:
        if self.failure is not None:
            raise TLSFailed(self.failure)

    def _raise_if_ended(self) -> None:
        """`TLSFailed` if the handshake can no longer complete (a plain method:
        `do_handshake`'s frame, held while the peer stalls, stays small)."""
        self._raise_if_failed()
        if self.peer_closed is not None or self._eof_fed:
            raise TLSFailed(ConnectionFailed(Ended(Cause.closed_during_handshake)))

    async def do_handshake(self) -> HandshakeComplete:
        """Run the handshake to completion; `TLSFailed` if it cannot complete."""
        await self._flush()  # a client's ClientHello is queued at construction
        while self.handshake is None:
            self._raise_if_ended()
            self._claim_receive()
            try:
                data = await self.transport.receive_some(RECEIVE_SIZE)
            finally:
                self._receiving = False
            await self._take(data)
            del data  # not held while the next read waits
        return self.handshake

    # --- trio.abc.Stream ----------------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._send(data, last=False)

    async def send_last(self, data: bytes | bytearray | memoryview) -> None:
        """`data` and then our close_notify (RFC 8446 §6.1), in the same socket
        write: one system call and one event-loop step fewer than `send_all`
        followed by `close_gracefully`, which then only half-closes and drains."""
        await self._send(data, last=True)

    async def _send(self, data: bytes | bytearray | memoryview, *, last: bool) -> None:
        if self.handshake is None:
            await self.do_handshake()
        self._raise_if_failed()
        # Seal and write in slices: each is sealed into the same buffer,
        # written, and released (the engine's `data_to_send` view) before
        # the next is sealed, so bulk sending touches no fresh memory.
        view = memoryview(data)
        # With nothing to send, `last` still has its close_notify to write.
        for start in range(0, max(len(view), 1) if last else len(view), SEND_SLICE):
            piece = view[start : start + SEND_SLICE]
            if piece:
                self.engine.send_application_data(piece)
            if last and start + SEND_SLICE >= len(view):
                self.engine.close()
            await self._flush()

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self.handshake is None:
            await self.do_handshake()
        while not self._incoming:
            self._raise_if_failed()
            if self.peer_closed is not None or self._eof_fed:
                return b""
            self._claim_receive()
            try:
                data = await self.transport.receive_some(RECEIVE_SIZE)
            finally:
                self._receiving = False
            await self._take(data)
            del data  # not held while the next read waits
        incoming = self._incoming
        first, taken = incoming[0], self._taken
        if max_bytes is None or max_bytes >= len(first) - taken:
            del incoming[0]
            self._taken = 0
            return first[taken:] if taken else first
        # Part of a record: slices of bytes are copies, of what is asked only.
        self._taken = taken + max(1, max_bytes)
        return first[taken : self._taken]

    async def close_gracefully(self, linger_bytes: int) -> None:
        """close_notify, half-close, then drop what the peer still sends; the
        transport stays open for its owner to close (the appliance's connection
        task always does: closing it here too cost a second close of every
        layer and one more event-loop step per connection, issue 18).

        Closing a socket with unread data makes the kernel send a reset, which
        can destroy our last records in flight; reading until the peer's EOF
        (bounded in bytes here, in time by the caller's deadline) avoids it.
        """
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            if not self.engine.closed:
                self.engine.close()
            await self._flush()
            if isinstance(self.transport, trio.abc.HalfCloseableStream):
                await self.transport.send_eof()
                drained = 0
                while drained < linger_bytes and not self._eof_fed:
                    data = await self.transport.receive_some(RECEIVE_SIZE)
                    if not data:
                        break
                    drained += len(data)

    async def aclose(self) -> None:
        try:
            if not self.engine.closed:
                self.engine.close()
                await self._flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(self.transport)
