"""One JSON line per connection, and a bounded memory of the latest ones.

A `ConnectionRecord` is filled in while a connection runs and written once
when it ends. It holds only what the engine's events and trace expose (which
never include keys, secrets or application data), the peer's address and our
own verdict; nothing in it comes from `Secret`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import trio

from pinata.appliance.outcome import Outcome, StatGroup, group_of
from pinata.tls.constants import (
    CipherSuite,
    NamedGroup,
    SignatureScheme,
    enum_name,
    version_name,
)
from pinata.tls.errors import alert_name
from pinata.tls.events import ConnectionFailed, HandshakeComplete

if TYPE_CHECKING:
    from pinata.appliance.tls_stream import TraceEntryLike

MAX_REASON = 200
# Every record's line: one encoder, built once (json.dumps with options builds
# one per call). A record is a tree that `to_json` builds afresh, so the
# encoder's cycle check (a dict of ids per container) has nothing to find.
_encode_line = json.JSONEncoder(separators=(",", ":"), default=str,
                                check_circular=False).encode




@dataclass(slots=True)
class ConnectionRecord:
    """One connection as its log line will tell it. One per live connection,
    held while its peer stalls: slotted, and no list until there is a trace."""

    listener: str
    port: int
    peer: tuple[str, int]
    started: datetime
    outcome: Outcome | None = None
    alert: str | None = None
    alert_code: int | None = None
    # The engine's typed cause (`pinata.tls.errors.Cause`) when it ended the connection.
    cause: str | None = None
    # Our words for why (a limit's name, the engine's failure reason).
    detail: str | None = None
    version: str | None = None
    cipher_suite: str | None = None
    group: str | None = None
    signature_scheme: str | None = None
    peer_signature_scheme: str | None = None
    peer_subjects: tuple[str, ...] = ()
    peer_fingerprints: tuple[str, ...] = ()
    duration: float | None = None
    trace: Sequence[Mapping[str, object]] = ()
    trace_dropped: int = 0
    http_requests: int = 0

    def handshake(self, event: HandshakeComplete) -> None:
        self.version = version_name(event.version)
        self.cipher_suite = enum_name(CipherSuite, event.cipher_suite)
        self.group = enum_name(NamedGroup, event.group)
        if event.signature_scheme is not None:
            self.signature_scheme = enum_name(SignatureScheme, event.signature_scheme)
        if event.peer_signature_scheme is not None:
            self.peer_signature_scheme = enum_name(SignatureScheme, event.peer_signature_scheme)
        if event.peer is not None:
            self.peer_subjects = tuple(event.peer.subjects)
            self.peer_fingerprints = tuple(
                hashlib.sha256(der).hexdigest() for der in event.peer.chain
            )

    @property
    def handshake_completed(self) -> bool:
        """Whether a handshake completed (a failed one may have named its version)."""
        return self.cipher_suite is not None

    def failed(self, failure: ConnectionFailed) -> None:
        if failure.alert is None:
            self.outcome = Outcome.closed_by_peer
        else:
            self.outcome = Outcome.alert_sent if failure.sent else Outcome.alert_received
            self.alert_code = int(failure.alert)
            self.alert = alert_name(int(failure.alert))
        if failure.cause is not None:
            self.cause = failure.cause.value
        self.detail = failure.reason[:MAX_REASON]

    def finish(self, outcome: Outcome, detail: str | None = None) -> None:
        """Set the outcome unless one is already known (the first verdict wins)."""
        if self.outcome is None:
            self.outcome = outcome
            if detail is not None:
                self.detail = detail[:MAX_REASON]

    def take_trace(self, entries: Sequence[TraceEntryLike], limit: int) -> None:
        # Each entry's to_json is a dict of its own: kept as it is, not copied.
        self.trace = [e.to_json() for e in entries[:limit]]
        self.trace_dropped = max(0, len(entries) - limit)

    @property
    def stat_group(self) -> StatGroup:
        return group_of(self.outcome or Outcome.internal_error, self.alert_code, self.cause)

    def to_json(self) -> dict[str, object]:
        record: dict[str, object] = {
            "time": self.started.isoformat(),
            "listener": self.listener,
            "port": self.port,
            "peer": {"address": self.peer[0], "port": self.peer[1]},
            "outcome": (self.outcome or Outcome.internal_error).value,
            "group": self.stat_group.value,
        }
        optional: dict[str, object | None] = {
            "alert": self.alert,
            "cause": self.cause,
            "detail": self.detail,
            "version": self.version,
            "cipher_suite": self.cipher_suite,
            "named_group": self.group,
            "signature_scheme": self.signature_scheme,
            "peer_signature_scheme": self.peer_signature_scheme,
        }
        record.update({k: v for k, v in optional.items() if v is not None})
        if self.peer_fingerprints:
            subjects = self.peer_subjects
            record["peer_chain"] = [
                {"subject": subjects[i] if i < len(subjects) else None, "sha256": f}
                for i, f in enumerate(self.peer_fingerprints)
            ]
        if self.http_requests:
            record["http_requests"] = self.http_requests
        record["duration"] = round(self.duration or 0.0, 6)
        if self.trace or self.trace_dropped:
            record["trace"] = self.trace
            if self.trace_dropped:
                record["trace_dropped"] = self.trace_dropped
        return record


class SharedRecords(Protocol):
    """The other workers' records (`pinata.appliance.shared_counters.WorkerView`)."""

    def keep_record(self, record: Mapping[str, object], line: str) -> None: ...

    def others_records(self) -> list[dict[str, object]]: ...


class Journal:
    """Writes each finished record as one JSON line and keeps the latest few."""

    def __init__(self, write_line: Callable[[str], None], keep: int,
                 observe: Callable[[ConnectionRecord], None] | None = None,
                 fleet: SharedRecords | None = None) -> None:
        self._write_line = write_line
        self._observe = observe
        # With workers: where the others' records are, for `find`.
        self._fleet = fleet
        self.recent: deque[dict[str, object]] = deque(maxlen=keep)
        # Records written since start: record n (from 1) is the n-th log line
        # of its kind, which gives the page a stable number to link to.
        self.written = 0

    def write(self, record: ConnectionRecord) -> dict[str, object]:
        as_json = record.to_json()
        line = _encode_line(as_json)
        self._write_line(line)
        self.recent.append(as_json)
        self.written += 1
        if self._fleet is not None:
            self._fleet.keep_record(as_json, line)
        if self._observe is not None:
            self._observe(record)
        return as_json

    def numbered(self) -> list[tuple[int, dict[str, object]]]:
        """The records still held, oldest first, each with its number since start."""
        return list(enumerate(self.recent, self.written - len(self.recent) + 1))

    def by_number(self, number: int) -> dict[str, object] | None:
        """Record `number` (as given by `numbered`), if it is still held."""
        index = number - (self.written - len(self.recent) + 1)
        return self.recent[index] if 0 <= index < len(self.recent) else None

    def find(
        self, address: str, port: int, listener: str | None = None
    ) -> dict[str, object] | None:
        """The latest record of a connection from (address, port), served by any worker."""
        others = self._fleet.others_records() if self._fleet is not None else []
        for record in (*reversed(self.recent), *others):
            peer = record["peer"]
            assert isinstance(peer, dict)
            if peer["address"] == address and peer["port"] == port and (
                listener is None or record["listener"] == listener
            ):
                return record
        return None


# --- writing lines without ever blocking the event loop -------------------------

_STOP = object()
# After writing what was queued, a writer rests this long before it waits
# again: the lines queued meanwhile wake nobody (a thread's wake-up is a futex
# call and a hand-over of the GIL, a task's is a trip through the scheduler),
# so under load it is one wake-up per interval instead of one per connection
# (issue 18). The first line after a quiet spell is written at once.
WRITE_INTERVAL = 0.05


class _Dropping:
    """A bounded queue's bookkeeping: lines dropped when it is full are counted,
    and the next line that gets in carries how many were lost before it
    (`"log_lines_dropped"`), so a reader of the log sees the gap."""

    def __init__(self) -> None:
        self.dropped = 0
        self._unreported = 0

    def _marked(self, line: str) -> str:
        if self._unreported and line.endswith("}"):
            return f'{line[:-1]},"log_lines_dropped":{self._unreported}}}'
        return line

    def _accepted(self, accepted: bool) -> None:
        if accepted:
            self._unreported = 0
        else:
            self.dropped += 1
            self._unreported += 1


class LogWriter(_Dropping):
    """A bounded queue of lines drained by one writer thread, for any blocking sink
    (a `log_path` file, a test's collector). `put` never blocks: a sink that
    stalls stalls only the writer thread."""

    def __init__(self, sink: Callable[[str], None], max_lines: int) -> None:
        super().__init__()
        self._sink = sink
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_lines)
        self._thread = threading.Thread(target=self._drain, name="pinata-log", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        """Queue one JSON-object line; drop it (counted) if the queue is full."""
        try:
            self._queue.put_nowait(self._marked(line))
        except queue.Full:
            self._accepted(False)
            return
        self._accepted(True)

    async def run(self) -> None:
        """Nothing to do on the loop: the thread drains."""

    def _drain(self) -> None:
        while True:
            line = self._queue.get()
            while line is not _STOP:
                assert isinstance(line, str)
                # A closed or broken sink: the line is lost, the appliance is not.
                with contextlib.suppress(OSError, ValueError):
                    self._sink(line)
                try:
                    line = self._queue.get_nowait()
                except queue.Empty:
                    break
            if line is _STOP:
                return
            time.sleep(WRITE_INTERVAL)

    def close(self, timeout: float) -> bool:
        """Let the writer finish what is queued, waiting at most `timeout` seconds;
        True if it did (a sink that never drains leaves the thread parked)."""
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()


class FdLogWriter(_Dropping):
    """Standard output (the default log) without threads or blocking: the file
    descriptor is made non-blocking and a task on the loop writes to it, waiting
    for room when a pipe is full. Threads are impossible in the sandboxed
    image (no clone(2) in its filter), so this is the writer it uses."""

    def __init__(self, fd: int, max_lines: int) -> None:
        super().__init__()
        self.fd = fd
        self._send, self._receive = trio.open_memory_channel[str](max_lines)
        self._flags: int | None = None

    def put(self, line: str) -> None:
        """Queue one JSON-object line; drop it (counted) if the queue is full."""
        try:
            self._send.send_nowait(self._marked(line))
        except trio.WouldBlock:
            self._accepted(False)
            return
        self._accepted(True)

    async def run(self) -> None:
        """Write queued lines until cancelled."""
        self._flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        fcntl.fcntl(self.fd, fcntl.F_SETFL, self._flags | os.O_NONBLOCK)
        async for line in self._receive:
            while True:
                await self._write_all((line + "\n").encode("utf-8"))
                try:
                    line = self._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            await trio.sleep(WRITE_INTERVAL)

    async def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.fd)
            except OSError:
                return  # the reader is gone: the line is lost, the appliance is not

    def close(self, timeout: float) -> bool:
        """Write what is queued if the descriptor takes it now; restore its flags."""
        done = True
        try:
            while True:
                line = self._receive.receive_nowait()
                os.write(self.fd, (line + "\n").encode("utf-8"))
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            pass
        except OSError:
            done = False
        if self._flags is not None:
            fcntl.fcntl(self.fd, fcntl.F_SETFL, self._flags)
        return done


class RotatingFile:
    """`log_path` as a sink: appends lines, and at `max_bytes` renames the file to
    `.1` (older ones to `.2`, ...), keeping `keep` old files and deleting the rest."""

    def __init__(self, path: str, max_bytes: int, keep: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._size = self._file.tell()

    def write_line(self, line: str) -> None:
        data = line + "\n"
        size = len(data.encode("utf-8"))
        if self._size and self._size + size > self.max_bytes:
            self._rotate()
        self._file.write(data)
        self._file.flush()
        self._size += size

    def _rotate(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{self.path}.{self.keep}")
        for n in range(self.keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
        os.replace(self.path, f"{self.path}.1")
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        self._file.close()


class RefusalTally:
    """Refusals by a limit, aggregated: one summary line per limit per interval
    with the count and the networks that were refused most, instead of a line
    per refusal (which a flood would turn into gigabytes)."""

    def __init__(self, top: int, max_networks: int = 4096) -> None:
        self.top = top
        self.max_networks = max_networks
        self._by_limit: dict[str, Counter[str]] = {}
        self._counts: Counter[str] = Counter()

    def note(self, limit: str, network: str) -> None:
        self._counts[limit] += 1
        networks = self._by_limit.setdefault(limit, Counter())
        if network in networks or len(networks) < self.max_networks:
            networks[network] += 1

    def summaries(self, since: datetime, until: datetime) -> list[dict[str, object]]:
        """One summary per limit that refused anything since the last call; resets."""
        lines: list[dict[str, object]] = [
            {"refused": {
                "limit": limit,
                "count": count,
                "from": since.isoformat(),
                "until": until.isoformat(),
                "top_networks": [[net, n] for net, n in
                                 self._by_limit.get(limit, Counter()).most_common(self.top)],
            }}
            for limit, count in sorted(self._counts.items())
        ]
        self._by_limit.clear()
        self._counts.clear()
        return lines
