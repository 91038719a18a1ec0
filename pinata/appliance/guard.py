"""What one connection may cost us before its peer authenticates.

`GuardedStream` wraps the accepted socket: the peer has `first_byte_timeout`
to send anything and `step_timeout` after each of our flights to send its
next one (so a handshake cannot be dragged out step by step up to the whole
handshake deadline), and the bytes it sends before authenticating are charged
to a global budget and, until its first handshake message is complete, to a
smaller one of its own. Its `feed` runs the engine where a certificate chain
may arrive under the network's validation budget: on the loop while the
chain's bytes are few (cheap to validate, and a thread hand-off would cost
more than the work), in a worker thread under a bounded limiter past that,
so an expensive chain never stalls the event loop.
Over a budget: `Refused`, naming the limit; past a deadline, the connection's
one cancel scope (`Deadlines`) is cancelled and names it.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from pinata.appliance.limits import (
    FIRST_BYTE,
    HELLO_BYTES,
    PREAUTH_MEMORY,
    STEP,
    ByteBudget,
    WorkBudget,
    network_of,
)
from pinata.appliance.tls_stream import Engine
from pinata.appliance.transport import SocketTransport
from pinata.tls.constants import MAX_CIPHERTEXT, RECORD_HEADER_LEN
from pinata.tls.events import Event, HandshakeComplete

# Engine states in which the peer's next flight carries its first handshake
# message (ClientHello, or ServerHello when we are the client).
HELLO_STATES = frozenset({"ServerExpectClientHello", "ServerExpectSecondClientHello",
                          "ClientExpectServerHello"})
# States in which the next bytes may carry a certificate chain to validate: the
# client's second flight, or the server's whole first flight (RFC 8446 §2).
# TLS 1.2 (RFC 5246 §7.3): the client's Certificate opens its second flight,
# and the server's follows its ServerHello in the first.
VALIDATING_STATES = frozenset({"ServerExpectCertificate", "ClientExpectServerHello",
                               "ClientExpectEncryptedExtensions",
                               "ClientExpectCertificateOrRequest", "ClientExpectCertificate",
                               "Server12ExpectCertificate", "Client12ExpectCertificate"})

# How many of the peer's first bytes a guard keeps (`head`): enough for either
# PROXY protocol signature (v2's 12 bytes; v1's "PROXY " 6), which the shell
# looks for at the end. No more: a 12-byte bytes is 45 bytes (a 48-byte
# block), 16 would take a 64-byte one, held by every connection (issue 18).
HEAD_BYTES = 12
# The most one TLS record takes on the wire (RFC 8446 §5.2).
LARGEST_RECORD = RECORD_HEADER_LEN + MAX_CIPHERTEXT
# What `Deadlines.expired` names when the connection's own deadline fired.
CONNECTION_DEADLINE = "connection deadline"

# A chain that arrives in at most this many bytes (a few certificates; with the
# validator's cost budget at worst a couple of milliseconds of work) is
# validated on the loop: handing a flight to a thread costs about a fifth of a
# whole handshake's CPU (`pinata bench handshake`, the appliance scenario).
# Counted over the connection's validating states, so a chain dribbled in
# small pieces still goes to a thread once it is large.
SMALL_CHAIN_BYTES = 4096


class Refused(Exception):
    """A budget or a step deadline ended the connection; `limit` names which."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


class Validation:
    """The appliance-wide means of validating off the loop: a thread limiter, one
    validation at a time per network, and the per-network budget of CPU seconds.

    One at a time per network matters because work is charged when it is done:
    without it, a network could start many expensive validations at once on
    credit and take every worker thread from everyone else.
    """

    def __init__(self, budget: WorkBudget, threads: int) -> None:
        self.budget = budget
        # No threads: validate on the loop, still one network at a time and in budget.
        self.limiter = trio.CapacityLimiter(threads) if threads > 0 else None
        # network -> None while one of its validations runs and none waits, or
        # the queue of those waiting behind it. The queue (a ParkingLot) is made
        # only when a second validation arrives: a trio.Lock, an async context
        # manager and a tuple per validating flight cost ~3.6 µs (issue 18).
        self._turns: dict[str, trio.lowlevel.ParkingLot | None] = {}

    async def take_turn(self, address: str) -> str:
        """Wait until no other validation of `address`'s network runs, and take
        the turn; returns the network, for `end_turn`. A free turn is taken
        without yielding; a waiting one is cancellable and handed over in
        arrival order (as trio.Lock would)."""
        network = network_of(address, *self.budget.prefixes)
        turns = self._turns
        if network not in turns:
            turns[network] = None
            return network
        queue = turns[network]
        if queue is None:
            queue = turns[network] = trio.lowlevel.ParkingLot()
        await queue.park()  # unparked by end_turn: the turn is ours
        return network

    def end_turn(self, network: str) -> None:
        """Our validation of `network` ended: hand the turn to the next in line, if any."""
        queue = self._turns[network]
        if queue:
            queue.unpark()
        else:
            del self._turns[network]


def _timed_feed(engine: Engine, data: bytes,
                clock: Callable[[], float]) -> tuple[list[Event], float]:
    started = clock()
    events = engine.receive_data(data)
    return events, clock() - started


class Deadlines:
    """The one cancel scope a connection runs in, and every deadline it keeps.

    A cancel scope costs about 0.5 KiB while the peer stalls (its status with
    two sets, its entry in trio's deadline heap) and a few µs to enter and
    leave; a connection had one of its own, one for its handshake and one per
    read (issue 18). Now one, whose deadline is moved in place (trio re-files
    a changed deadline): the earliest of the connection's, the current
    phase's (handshake, linger) and, while we wait for the peer, the step's.
    When the scope catches its cancellation, `expired` names which fired.
    """

    __slots__ = ("_in_force", "connection", "phase", "phase_name", "scope", "step",
                 "step_name")

    def __init__(self, connection: float) -> None:
        self.scope = trio.CancelScope(deadline=connection)
        self.connection = connection
        self._in_force = connection
        self.phase = self.step = math.inf
        self.phase_name = self.step_name = ""

    def _apply(self) -> None:
        earliest = min(self.connection, self.phase, self.step)
        if earliest != self._in_force:  # the setter costs trio a heap entry
            self._in_force = self.scope.deadline = earliest

    def begin_phase(self, name: str, seconds: float) -> None:
        """From now on `name` ends within `seconds` (a phase begun inside
        another ends no later than the outer one)."""
        end = trio.current_time() + seconds
        if end < self.phase:
            self.phase, self.phase_name = end, name
            self._apply()

    def end_phase(self) -> None:
        """The current phase finished in time: only the connection's deadline remains."""
        self.phase = math.inf
        self._apply()

    def wait_for_peer(self, limit: str, deadline: float) -> None:
        """The peer's next bytes are due by `deadline`; past it, `limit` ended us."""
        self.step, self.step_name = deadline, limit
        self._apply()

    def peer_spoke(self) -> None:
        """The awaited bytes came: no step deadline until we wait again."""
        self.step = math.inf
        self._apply()

    def expired(self) -> str | None:
        """Which deadline ended the scope: a limit's name (the step's), a
        phase's name, or `CONNECTION_DEADLINE`; None if none did (the scope
        did not catch a cancellation, or one from `scope.cancel()`)."""
        if not self.scope.cancelled_caught:
            return None
        # On a tie the innermost deadline explains most: `min` keeps the first.
        when, name = min(((self.step, self.step_name), (self.phase, self.phase_name),
                          (self.connection, CONNECTION_DEADLINE)), key=operator.itemgetter(0))
        return name if when <= trio.current_time() else None


@dataclass(frozen=True, slots=True)
class GuardRules:
    """What every guarded connection of an appliance obeys: the deadlines for
    the peer's first bytes and for each later step, the bytes its first
    handshake message may take, and where chains are validated (None: on
    the loop, unbudgeted, as for a test). One object shared by all: a guard,
    held by every stalled connection, keeps one reference, not four (issue 18)."""

    first_byte_timeout: float
    step_timeout: float
    hello_bytes: int
    validation: Validation | None = None


class GuardedStream(trio.abc.HalfCloseableStream):
    """A socket stream with per-step deadlines and pre-authentication byte budgets.

    Its reads run under `deadlines`, whose scope the caller has entered: a
    step that overruns cancels the whole connection, and `deadlines.expired`
    then names the limit (`FIRST_BYTE` or `STEP`).
    """

    # One per connection, held through a stalled handshake: no __dict__.
    __slots__ = ("_deadline", "_preauth", "_unread", "address", "chain_bytes", "deadlines",
                 "head", "hello_done", "inner", "received", "rules")

    def __init__(self, inner: trio.abc.HalfCloseableStream, address: str, *,
                 deadlines: Deadlines, rules: GuardRules, preauth: ByteBudget | None) -> None:
        self.inner = inner
        self.address = address
        self.deadlines = deadlines
        self.rules = rules
        self._deadline = trio.current_time() + rules.first_byte_timeout
        self._preauth = preauth
        self.hello_done = False
        # The bytes the peer sent and we took; while `_preauth` is set, each
        # of them is charged to that global budget (one count for both: a
        # second int per connection is 32 bytes held while it stalls).
        self.received = 0
        self.chain_bytes = 0  # bytes received where a chain may arrive
        self._unread = b""  # what `first_bytes` received, for the handler's first read
        self.head = b""  # the peer's first `HEAD_BYTES` bytes

    @property
    def silent(self) -> bool:
        """The peer has sent nothing yet."""
        return self.received == 0

    async def first_bytes(self) -> None:
        """Wait for the peer's first bytes (under the first-byte deadline and the
        budgets, as any read) and keep them for the next `receive_some`.

        Until its peer speaks, a connection is its socket, its admission and
        this wait: the handler (engine, adapter, handshake deadline, a deeper
        chain of frames) is built only once there is something to handle, so a
        silent connection holds a few KiB less while it stalls (issue 18).
        """
        self._unread = await self.receive_some()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        # The checks and the accounting are in plain methods: this frame is
        # held while the peer stalls, and its locals and stack slots with it.
        if self._unread:
            return self._take_unread(max_bytes)
        data = await self.inner.receive_some(self._before_read(max_bytes))
        return self._after_read(data)

    def _take_unread(self, max_bytes: int | None) -> bytes:
        n = len(self._unread) if max_bytes is None else max(1, max_bytes)
        data, self._unread = self._unread[:n], self._unread[n:]
        return data

    def _before_read(self, max_bytes: int | None) -> int | None:
        """Check the hello allowance and set the peer's deadline before a read;
        the most the read may take."""
        if not self.hello_done and self._preauth is not None:
            room = self.rules.hello_bytes - self.received
            if room < 0:
                # Checked before the next read, once the engine has seen the last:
                # one read may end the hello and carry what follows it (TLS 1.2
                # packs the ServerHello and a large Certificate into the same records).
                raise Refused(HELLO_BYTES)
            # While the hello is incomplete a read takes at most the rest of the
            # allowance and one record (the one that may complete the hello),
            # whatever its reader asks for (TLSStream asks for four records): a
            # connection holds at most `hello_bytes` and one record of the
            # global budget before the check above ends it.
            if max_bytes is None or max_bytes > room + LARGEST_RECORD:
                max_bytes = room + LARGEST_RECORD
        self.deadlines.wait_for_peer(FIRST_BYTE if self.silent else STEP, self._deadline)
        return max_bytes

    def _after_read(self, received: bytes | bytearray) -> bytes:
        data = bytes(received)
        self.deadlines.peer_spoke()
        if len(self.head) < HEAD_BYTES:
            self.head += data[:HEAD_BYTES - len(self.head)]
        if self.silent and data:
            self._deadline = trio.current_time() + self.rules.step_timeout
        self._charge(len(data))
        self.received += len(data)
        return data

    def _charge(self, n: int) -> None:
        """Charge `n` more received bytes to the global budget, before they
        are counted (refused, they never are: `authenticated` gives back
        what `received` counts)."""
        if self._preauth is None or not n:
            return
        if not self._preauth.take(n):
            raise Refused(PREAUTH_MEMORY)

    def authenticated(self) -> None:
        """The peer authenticated: what it sent no longer counts against the budget."""
        if self._preauth is not None:
            self._preauth.give_back(self.received)
            self._preauth = None

    async def feed(self, engine: Engine, data: bytes) -> list[Event]:
        """Give `data` to `engine`; where a chain may arrive, in a worker thread
        under the network's validation budget (TLSStream's feed hook)."""
        validation = self.rules.validation
        if validation is not None and data and engine.state_name in VALIDATING_STATES:
            network = await validation.take_turn(self.address)
            try:
                refused = validation.budget.allows(self.address, trio.current_time())
                if refused is not None:
                    raise Refused(refused)
                self.chain_bytes += len(data)
                if validation.limiter is None or self.chain_bytes <= SMALL_CHAIN_BYTES:
                    # On the loop the wall clock is the cost (and the sandbox's
                    # filter allows no per-thread CPU clock, which is a system call).
                    events, cpu = _timed_feed(engine, data, time.perf_counter)
                else:
                    events, cpu = await trio.to_thread.run_sync(
                        _timed_feed, engine, data, time.thread_time,
                        limiter=validation.limiter)
                validation.budget.charge(self.address, cpu, trio.current_time())
            finally:
                validation.end_turn(network)
        else:
            events = engine.receive_data(data)
        if engine.state_name not in HELLO_STATES:
            self.hello_done = True
        if any(isinstance(e, HandshakeComplete) for e in events):
            self.authenticated()
        return events

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)
        # The peer's next step is due `step_timeout` after our last word.
        if not self.silent:
            self._deadline = trio.current_time() + self.rules.step_timeout

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    def close_now(self) -> bool:
        """Close at once, with no checkpoint, if the stream beneath is our own
        socket (`SocketTransport`), giving back what the peer's bytes held of
        the budget as `aclose` does; False, and nothing done, otherwise."""
        inner = self.inner
        if not isinstance(inner, SocketTransport):
            return False
        self.authenticated()
        inner.close()
        return True

    async def aclose(self) -> None:
        self.authenticated()
        await self.inner.aclose()
