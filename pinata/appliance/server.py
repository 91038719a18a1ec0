"""The shell: listeners, accept loops, admission, deadlines, logging, signals.

Each accepted connection runs in its own task under the connection deadline;
its handler (ports, web) decides the outcome, and this module counts it,
writes its JSON line and releases its admission slot whatever happened.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping

import trio

from pinata.appliance import ports
from pinata.appliance.guard import CONNECTION_DEADLINE, Deadlines, GuardedStream, Refused
from pinata.appliance.journal import ConnectionRecord, FdLogWriter, LogWriter, RotatingFile
from pinata.appliance.limits import EVICTED, FIRST_BYTE, GLOBAL_CAP, SILENT, STEP
from pinata.appliance.outcome import Outcome
from pinata.appliance.proxied import (
    UNTRUSTED_PROXY_HEADER,
    began_with_proxy_header,
    receive_proxy_header,
    trusts,
)
from pinata.appliance.selftalk import relay
from pinata.appliance.settings import LISTENER_NAMES, ApplianceSettings
from pinata.appliance.shared_counters import SnapshotTooLarge, WorkerView
from pinata.appliance.state import ApplianceState, Slot, build_state, utc_now
from pinata.appliance.tls_stream import TLSFailed, TLSStream
from pinata.appliance.transport import accept
from pinata.appliance.web import serve_http
from pinata.tls.connection import ServerConnection
from pinata.tls.events import HandshakeComplete

Handler = Callable[[ApplianceState, GuardedStream, ConnectionRecord], Awaitable[None]]

# accept() failures that mean "out of resources for now", not "listener broken".
_BACK_OFF_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
SELFTALK_FIRST_DELAY = 0.5
SELFTALK_TIMEOUT = 10.0
# Listeners whose peer speaks first: the handler starts at its first bytes.
PEER_SPEAKS_FIRST = frozenset({"tls_server", "http", "https"})
# Listeners whose peers may make us validate a certificate chain.
VALIDATING_LISTENERS = frozenset({"tls_server", "tls_client"})
# Pending connections the kernel queues for accept(): under a flood, a short
# queue drops honest SYNs, which cost their senders a 1 s and then 3 s retry.
LISTEN_BACKLOG = 1024
# How long a stopping appliance waits for its log writer to finish.
LOG_CLOSE_TIMEOUT = 2.0
# Connection tasks' names, given rather than derived: trio otherwise formats a
# new string for every task, held as long as the connection.
CONNECTION_TASK = "pinata connection"
PROXIED_TASK = "pinata proxied connection"
# How often a worker copies its counters where the other workers read them:
# another worker's page is at most this much behind this worker's counts.
PUBLISH_INTERVAL = 0.1


def _http(state: ApplianceState, stream: GuardedStream, record: ConnectionRecord
          ) -> Awaitable[None]:
    return serve_http(state, stream, record)


def _https(state: ApplianceState, stream: GuardedStream, record: ConnectionRecord
           ) -> Awaitable[None]:
    engine = ServerConnection(state.https_config, random=os.urandom, now=record.started)
    return ports.session(state, ports.begin(state, engine, stream), stream, record,
                         _serve_over_tls, keep_trace=False)


async def _serve_over_tls(state: ApplianceState, stream: GuardedStream, tls: TLSStream,
                          done: HandshakeComplete, record: ConnectionRecord) -> None:
    try:
        await serve_http(state, tls, record)
    except TLSFailed as exc:
        record.failed(exc.failure)
        return
    await ports.linger(state, tls, stream.deadlines)


HANDLERS: Mapping[str, Handler] = {
    "tls_server": ports.tls_server,
    "connect_back": ports.connect_back,
    "tls_client": ports.tls_client,
    "http": _http,
    "https": _https,
}


def _refused(state: ApplianceState, limit: str, address: str) -> None:
    """Counted and summarised per interval (`RefusalTally`), never one line each."""
    state.counters.limit_hit(limit)
    state.refusals.note(limit, state.caps.network(address))


def _evict_for(state: ApplianceState, address: str) -> bool:
    """The global cap is full: end the oldest unauthenticated connection of the
    network holding the most slots, if it holds clearly more than `address`'s."""
    heaviest = state.caps.should_evict(address)
    for slot in state.live.get(heaviest or "", {}):
        if slot.evictable:
            slot.evicted = True
            slot.stream.deadlines.scope.cancel()
            return True
    return False


def _run_connection(state: ApplianceState, listener: str,
                    stream: trio.abc.HalfCloseableStream, peer: tuple[str, int],
                    untrusted: bool = False) -> Awaitable[None]:
    """One admitted connection, start to end: the listener's handler under the
    connection's one scope, its verdict, counters, log line, close and release.
    `untrusted`: straight from a peer outside `trusted_proxies`, whose PROXY
    header (if it began with one) is counted, never believed (`proxied`).

    The connection is opened here and its coroutine handed back: the task's
    outermost frame, which trio also materialises as a frame object, then
    holds three slots fewer (each held twice) while the peer stalls (issue 18)."""
    return _connection(state, _opened(state, listener, stream, peer), untrusted)


async def _connection(state: ApplianceState, slot: Slot, untrusted: bool) -> None:
    """`_run_connection`'s coroutine. One coroutine, not a handler runner inside
    a bookkeeper: each frame of the chain is resumed at every step and held
    while the peer stalls. For the same reason it keeps no local beyond its
    arguments and its verdict (the slot holds the record and the stream), and
    its calls are short: a frame's size is its locals and its deepest stack,
    and this one is held twice (issue 18)."""
    logged = True
    try:
        # One scope for every way a connection is cut short: its deadlines
        # (connection, phase, step) and eviction (`Deadlines`).
        with slot.stream.deadlines.scope:
            if slot.record.listener in PEER_SPEAKS_FIRST:
                await slot.stream.first_bytes()
            await HANDLERS[slot.record.listener](state, slot.stream, slot.record)
        _cut_short(slot, slot.record)
        slot.record.finish(Outcome.closed_by_peer)  # a handler that returned without a verdict
    except Exception as exc:
        logged = _verdict(state, slot.record, exc)
    finally:
        await _ended(state, slot, logged, untrusted)


def _verdict(state: ApplianceState, record: ConnectionRecord, exc: Exception) -> bool:
    """What ended the connection by raising `exc`, as its record's verdict;
    whether it gets a log line (a limit's refusals are summarised)."""
    if isinstance(exc, Refused):
        return _refusal(state, record, exc)
    if isinstance(exc, TLSFailed):
        record.failed(exc.failure)
    elif isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError | OSError):
        record.finish(Outcome.closed_by_peer, type(exc).__name__)
    else:
        # A bug of ours. Only the exception's type is logged: its message
        # could quote anything, and logs are public-ish.
        record.finish(Outcome.internal_error, type(exc).__name__)
    return True


async def _ended(state: ApplianceState, slot: Slot, logged: bool, untrusted: bool) -> None:
    """The connection ended: accounted (`_account`), then its stream closed by
    its owner, whose task ends right after, and its admission slot released
    (it stands for the socket: released once it is closed, whatever happened).

    Our own socket closes at once, with no checkpoint: the task's last step
    is the one that ends it (`aclose`'s checkpoint cost each connection one
    more trip through the scheduler). Anything else (a proxied client's
    replay wrapper, a test's memory stream) by `aclose`, which under the
    guard closes first and then checkpoints (not `aclose_forcefully`: a
    cancel scope and a Cancelled more)."""
    guarded = slot.stream
    _account(state, guarded, slot, logged, untrusted)
    try:
        # Here, not in the handlers (which leave it open): its owner closes it.
        if not guarded.close_now():
            await guarded.aclose()
    finally:
        state.caps.release(slot.record.peer[0], slot.record.listener)


def _opened(state: ApplianceState, listener: str, stream: trio.abc.HalfCloseableStream,
            peer: tuple[str, int]) -> Slot:
    """An admitted connection's record, counted, and its slot (with its guarded
    stream) in the live table. Here rather than in `_run_connection`: every
    local and stack slot of its frame is held twice (coroutine and the frame
    object trio makes) for as long as the peer stalls (issue 18)."""
    started = trio.current_time()
    record = ConnectionRecord(listener, state.bound[listener][1], peer, state.now())
    state.counters.opened(listener)
    deadlines = Deadlines(started + state.settings.limits.connection_timeout)
    guarded = ports.guarded(state, stream, peer[0], deadlines, count_bytes=listener != "http")
    slot = Slot(guarded, record, started)
    state.live.setdefault(state.caps.network(peer[0]), {})[slot] = None
    return slot


def _cut_short(slot: Slot, record: ConnectionRecord) -> None:
    """If the connection's scope ended it, the verdict that explains why; raises
    `Refused` for an eviction or a step deadline (limits, summarised)."""
    deadlines = slot.stream.deadlines
    if not deadlines.scope.cancelled_caught:
        return
    expired = deadlines.expired()
    if slot.evicted:
        raise Refused(EVICTED)
    if expired in (FIRST_BYTE, STEP):
        raise Refused(expired)
    if expired != ports.LINGER:  # a linger cut short leaves the verdict as it was
        record.finish(Outcome.timeout, expired or CONNECTION_DEADLINE)


def _refusal(state: ApplianceState, record: ConnectionRecord, exc: Refused) -> bool:
    """A limit ended the connection: its verdict; whether it gets a log line."""
    if exc.limit == STEP and record.http_requests:
        # An idle keep-alive connection after its requests: served, not refused.
        record.finish(Outcome.served)
        return True
    record.finish(Outcome.limit, exc.limit)
    _refused(state, exc.limit, record.peer[0])
    # A limit's refusals are summarised, never logged one by one.
    return False


def _account(state: ApplianceState, guarded: GuardedStream, slot: Slot, logged: bool,
             untrusted: bool) -> None:
    """The connection ended: out of the live table, counted, and logged unless
    it was refused by a limit or its peer never said a word."""
    record = slot.record
    network = state.caps.network(record.peer[0])
    live = state.live[network]
    del live[slot]
    if not live:
        del state.live[network]
    record.duration = trio.current_time() - slot.started
    if untrusted and began_with_proxy_header(guarded.head):
        state.counters.limit_hit(UNTRUSTED_PROXY_HEADER)
    state.counters.finished(record.listener, record.stat_group)
    if logged and guarded.silent and record.listener != "connect_back":
        # Nothing was said, so there is nothing to read in a line of its own.
        logged = False
        state.refusals.note(SILENT, network)
    if logged:
        state.journal.write(record)


async def _accept_loop(state: ApplianceState, name: str, listener: socket.socket,
                       nursery: trio.Nursery) -> None:
    while True:
        try:
            stream, peer = await accept(listener)
        except OSError as exc:
            if exc.errno in _BACK_OFF_ERRNOS:
                await trio.sleep(0.1)
                continue
            raise
        if trusts(state.settings.trusted_proxies, peer[0]):
            # Admission waits for the header: the caps are the client's, not the proxy's.
            nursery.start_soon(_run_proxied, state, name, stream, peer, name=PROXIED_TASK)
        elif _admitted(state, name, peer):
            nursery.start_soon(_run_connection, state, name, stream, peer, True,
                               name=CONNECTION_TASK)
        else:
            stream.close()


def _admitted(state: ApplianceState, name: str, peer: tuple[str, int]) -> bool:
    """Take an admission slot for `peer`, evicting a heavier network's idle
    connection when the global cap is full; False: refused, counted and
    summarised (never a line each)."""
    refused = state.caps.admit(peer[0], name)
    if refused == GLOBAL_CAP and _evict_for(state, peer[0]):
        refused = state.caps.admit(peer[0], name, evicting=True)
    if refused is None and name in VALIDATING_LISTENERS:
        # A network that spent its validation budget gets no new handshake.
        refused = state.validation.budget.allows(peer[0], trio.current_time())
        if refused is not None:
            state.caps.release(peer[0], name)
    if refused is None:
        return True
    state.counters.refused(name, refused)
    state.refusals.note(refused, state.caps.network(peer[0]))
    return False


async def _run_proxied(state: ApplianceState, name: str, stream: trio.abc.HalfCloseableStream,
                       proxy: tuple[str, int]) -> None:
    """A trusted proxy's connection: the PROXY header, then the client it names."""
    relayed = None
    try:
        relayed = await receive_proxy_header(state, name, stream, proxy)
    finally:
        if relayed is None:
            await trio.aclose_forcefully(stream)
    if relayed is None:
        return
    client_stream, client = relayed
    if _admitted(state, name, client):
        await _run_connection(state, name, client_stream, client)
    else:
        await trio.aclose_forcefully(client_stream)


def _loopback_for(address: str) -> str:
    if address in ("", "0.0.0.0"):
        return "127.0.0.1"
    if address == "::":
        return "::1"
    return address


async def run_selftalk(state: ApplianceState) -> dict[str, object]:
    """One self-talk through our own listeners; the report also goes to the log."""
    address = _loopback_for(state.bound["tls_client"][0])
    report: dict[str, object] = {"time": state.now().isoformat()}
    try:
        result = await relay(address, state.bound["tls_client"][1],
                             state.bound["tls_server"][1], SELFTALK_TIMEOUT,
                             proxy_header=trusts(state.settings.trusted_proxies, address))
    except OSError as exc:
        report["error"] = exc.strerror or type(exc).__name__
        state.counters.selftalk_runs["failed"] += 1
        state.selftalk_reports.append(report)
        return report
    report.update(result.to_json())
    report["secret_crossed_relay_in_clear"] = result.carried(state.settings.secret)
    # Our own two connections finish a moment after the relay sees EOF.
    sides: dict[str, object] = {}
    with trio.move_on_after(2.0):
        while len(sides) < 2:
            for listener, port in (("tls_client", result.client_leg_port),
                                   ("tls_server", result.server_leg_port)):
                found = state.journal.find(address, port, listener)
                if found is not None:
                    sides[listener] = found
            await trio.sleep(0.02)
    report["appliance"] = sides
    released = all(
        isinstance(r, dict) and r.get("outcome") == Outcome.released_to_self.value
        for r in sides.values()
    ) and len(sides) == 2
    report["both_released"] = released
    state.counters.selftalk_runs["completed" if released else "failed"] += 1
    state.selftalk_reports.append(report)
    return report


async def _selftalk_loop(state: ApplianceState, write_line: Callable[[str], None]) -> None:
    await trio.sleep(SELFTALK_FIRST_DELAY)
    while True:
        report = await run_selftalk(state)
        write_line(json.dumps({"selftalk": report}, separators=(",", ":"), default=str))
        await trio.sleep(state.settings.selftalk_interval)


async def _publish_counters(state: ApplianceState, fleet: WorkerView) -> None:
    while True:
        _publish(state, fleet)
        await trio.sleep(PUBLISH_INTERVAL)


def _publish(state: ApplianceState, fleet: WorkerView) -> None:
    try:
        fleet.publish(state.counters.snapshot())
    except SnapshotTooLarge:
        # Bounded key sets make this unreachable; if not, the others see our last
        # snapshot, never a torn one.
        state.counters.limit_hit("counters_snapshot_too_large")


async def _refusal_summaries(state: ApplianceState, write_line: Callable[[str], None]) -> None:
    """Every interval, one line per limit that refused anything, with its top networks."""
    since = state.now()
    while True:
        await trio.sleep(state.settings.budgets.refusal_summary_interval)
        until = state.now()
        for summary in state.refusals.summaries(since, until):
            write_line(json.dumps(summary, separators=(",", ":")))
        since = until


def _log_writer(settings: ApplianceSettings, write_line: Callable[[str], None] | None,
                ) -> tuple[LogWriter | FdLogWriter, RotatingFile | None]:
    """Standard output by a task on the loop (no thread: the sandbox allows none);
    `log_path` or a caller's sink by a writer thread."""
    budgets = settings.budgets
    if write_line is None and settings.log_path is not None:
        log_file = RotatingFile(settings.log_path, budgets.log_max_bytes, budgets.log_keep_files)
        return LogWriter(log_file.write_line, budgets.log_queue_lines), log_file
    if write_line is None:
        fd = _stdout_fd()
        if fd is not None:
            sys.stdout.flush()
            return FdLogWriter(fd, budgets.log_queue_lines), None
        write_line = _print_line  # a standard output without a descriptor
    return LogWriter(write_line, budgets.log_queue_lines), None


def _stdout_fd() -> int | None:
    try:
        return sys.stdout.fileno()
    except (OSError, ValueError):
        return None


def _print_line(line: str) -> None:
    print(line, flush=True)


def _open_listener(address: str, port: int) -> socket.socket:
    """A non-blocking listening socket (`address` numeric, as the sandbox's
    resolver-free start needs)."""
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET,
                         socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve(
    settings: ApplianceSettings,
    *,
    preopened: Mapping[str, socket.socket] | None = None,
    write_line: Callable[[str], None] | None = None,
    fleet: WorkerView | None = None,
    task_status: trio.TaskStatus[ApplianceState] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the appliance until cancelled. `task_status.started` gets the live state.

    As one of several workers (`fleet`), it starts from what its slot of the shared
    counters holds (a previous life's counts) and keeps that slot current, so every
    worker shows the whole appliance.

    Lines go to `write_line` (default: `log_path`, rotated, or standard output)
    through a bounded queue, so a sink that does not keep up costs dropped
    lines, never a stalled loop.
    """
    writer, log_file = _log_writer(settings, write_line)
    write_line = writer.put
    listeners: dict[str, socket.socket] = {}
    state: ApplianceState | None = None
    try:
        state = build_state(settings, write_line, trio.current_time(), utc_now,
                            log_lines_dropped=lambda: writer.dropped, fleet=fleet)
        previous = fleet.previous() if fleet is not None else None
        if previous is not None:
            # Counters only grow, across restarts too; the dead life's live connections died.
            state.counters.add(previous, active=False)
        # Everything built so far lives as long as we do: keep it out of the
        # collector's way, so a flood's garbage is collected without rescanning it.
        gc.freeze()
        for name in LISTENER_NAMES:
            if preopened is not None and name in preopened:
                listeners[name] = preopened[name]
                listeners[name].setblocking(False)
            else:
                listeners[name] = _open_listener(settings.address,
                                                 settings.ports.listener_port(name))
            host, port = listeners[name].getsockname()[:2]
            state.bound[name] = (str(host), int(port))
        write_line(json.dumps({"listening": {
            name: {"address": host, "port": port} for name, (host, port) in state.bound.items()
        }}, separators=(",", ":")))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            for name, listener in listeners.items():
                nursery.start_soon(_accept_loop, state, name, listener, nursery)
            if settings.selftalk_interval > 0:
                nursery.start_soon(_selftalk_loop, state, write_line)
            nursery.start_soon(_refusal_summaries, state, write_line)
            if fleet is not None:
                nursery.start_soon(_publish_counters, state, fleet)
            task_status.started(state)
    finally:
        if fleet is not None and state is not None:
            _publish(state, fleet)
        for listener in listeners.values():
            if listener.fileno() != -1:
                trio.lowlevel.notify_closing(listener)  # as trio's own close does
            listener.close()
        if writer.close(LOG_CLOSE_TIMEOUT) and log_file is not None:
            log_file.close()


async def _serve_until_signalled(settings: ApplianceSettings,
                                 preopened: Mapping[str, socket.socket] | None,
                                 fleet: WorkerView | None) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(_serve_task, settings, preopened, fleet)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


async def _serve_task(settings: ApplianceSettings, preopened: Mapping[str, socket.socket] | None,
                      fleet: WorkerView | None,
                      task_status: trio.TaskStatus[ApplianceState] = trio.TASK_STATUS_IGNORED,
                      ) -> None:
    await serve(settings, preopened=preopened, fleet=fleet, task_status=task_status)


def run(settings: ApplianceSettings, *,
        preopened: Mapping[str, socket.socket] | None = None,
        fleet: WorkerView | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly (blocking).

    `settings.workers` above 1 is `pinata.appliance.workers.run`'s to honour: this
    serves in this process, as one worker of `fleet` when given.
    """
    trio.run(_serve_until_signalled, settings, preopened, fleet)
