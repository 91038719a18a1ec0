"""Every worker's counters in one shared memory segment, so each worker's
/stats, /metrics and page show the whole appliance.

The segment is an anonymous shared mapping made by the parent before it
forks the workers: a worker needs no system call to reach it (no
`memfd_create`, no `open`), only loads and stores. It holds a header (the
appliance's start time and each worker's restart count, written by the
parent) and one fixed-size slot per worker. A worker writes only its own
slot: a snapshot of its counters (`Counters.snapshot`, JSON, bounded by the
slot's size) behind a sequence number that is odd while the write is under
way, so a reader retries rather than reading half a snapshot (a seqlock).
"""

from __future__ import annotations

import json
import mmap
import struct
from collections.abc import Mapping

# Header: start time (float64), then one restart count (uint64) per worker.
_START = struct.Struct("<d")
_COUNT = struct.Struct("<Q")
# Slot: sequence number (uint64), snapshot length (uint32), snapshot bytes.
_SLOT_HEAD = struct.Struct("<QI")
# A snapshot holds a bounded key set (listeners x outcome groups, limit names,
# HTTP statuses, connect-back verdicts): about 3 KB; the rest is headroom.
SLOT_BYTES = 16384
# A reader that keeps meeting a write in progress gives up on that slot this time.
READ_ATTEMPTS = 100
# Each worker's latest connection records, for lookups by peer (`Journal.find`:
# the self-talk's two legs and a visitor's /connection?port= may each have
# been served by another worker). A record longer than an entry is kept
# without its handshake trace.
RECORDS_KEPT = 64
RECORD_BYTES = 8192
_RING_HEAD = struct.Struct("<Q")


class SnapshotTooLarge(Exception):
    """A worker's counters no longer fit its slot; that worker's slot keeps its last snapshot."""


class SharedCounters:
    """The segment: made once before the fork, used by the parent and every worker."""

    def __init__(self, workers: int, started: float, slot_bytes: int = SLOT_BYTES) -> None:
        if workers < 1:
            raise ValueError("at least one worker")
        self.workers = workers
        self.slot_bytes = slot_bytes
        self._header = _START.size + _COUNT.size * workers
        self._rings = self._header + workers * slot_bytes
        self._ring_bytes = _RING_HEAD.size + RECORDS_KEPT * RECORD_BYTES
        # mmap(-1, ...) is MAP_SHARED | MAP_ANONYMOUS: the children of a fork share it.
        self._map = mmap.mmap(-1, self._rings + workers * self._ring_bytes)
        _START.pack_into(self._map, 0, started)

    @property
    def started(self) -> float:
        """The appliance's start (the parent's), seconds since the epoch."""
        value: float = _START.unpack_from(self._map, 0)[0]
        return value

    def note_restart(self, worker: int) -> None:
        """The parent restarted `worker` (the parent alone writes the header)."""
        offset = _START.size + _COUNT.size * worker
        _COUNT.pack_into(self._map, offset, _COUNT.unpack_from(self._map, offset)[0] + 1)

    def restarts(self) -> list[int]:
        """How many times each worker has been restarted."""
        return [int(_COUNT.unpack_from(self._map, _START.size + _COUNT.size * k)[0])
                for k in range(self.workers)]

    def _slot(self, worker: int) -> int:
        if not 0 <= worker < self.workers:
            raise IndexError(worker)
        return self._header + worker * self.slot_bytes

    def publish(self, worker: int, snapshot: Mapping[str, object]) -> None:
        """Write `worker`'s snapshot into its slot. Raises SnapshotTooLarge."""
        data = json.dumps(snapshot, separators=(",", ":")).encode()
        if len(data) > self.slot_bytes - _SLOT_HEAD.size:
            raise SnapshotTooLarge(len(data))
        self._write(self._slot(worker), data)

    def _write(self, base: int, data: bytes) -> None:
        sequence = _SLOT_HEAD.unpack_from(self._map, base)[0]
        _SLOT_HEAD.pack_into(self._map, base, sequence + 1, len(data))
        self._map[base + _SLOT_HEAD.size:base + _SLOT_HEAD.size + len(data)] = data
        _SLOT_HEAD.pack_into(self._map, base, sequence + 2, len(data))

    def read(self, worker: int) -> dict[str, object] | None:
        """`worker`'s latest snapshot; None if it never published (or is mid-write
        for READ_ATTEMPTS reads in a row)."""
        return self._read(self._slot(worker))

    def _read(self, base: int) -> dict[str, object] | None:
        for _ in range(READ_ATTEMPTS):
            sequence, length = _SLOT_HEAD.unpack_from(self._map, base)
            if sequence % 2:
                continue
            data = bytes(self._map[base + _SLOT_HEAD.size:base + _SLOT_HEAD.size + length])
            if _SLOT_HEAD.unpack_from(self._map, base)[0] != sequence:
                continue
            if sequence == 0:
                return None
            value = json.loads(data)
            return value if isinstance(value, dict) else None
        return None

    def _ring(self, worker: int) -> int:
        if not 0 <= worker < self.workers:
            raise IndexError(worker)
        return self._rings + worker * self._ring_bytes

    def keep_record(self, worker: int, record: Mapping[str, object], line: str) -> None:
        """Add a finished connection's record to `worker`'s ring (the oldest goes);
        `line` is the record as the journal encoded it (encoded once, not twice)."""
        data = line.encode()
        if len(data) > RECORD_BYTES - _SLOT_HEAD.size:
            data = json.dumps({**record, "trace": [], "trace_omitted": True},
                              separators=(",", ":"), default=str).encode()
            if len(data) > RECORD_BYTES - _SLOT_HEAD.size:
                return
        ring = self._ring(worker)
        written = _RING_HEAD.unpack_from(self._map, ring)[0]
        self._write(ring + _RING_HEAD.size + (written % RECORDS_KEPT) * RECORD_BYTES, data)
        _RING_HEAD.pack_into(self._map, ring, written + 1)

    def records(self, worker: int) -> list[dict[str, object]]:
        """`worker`'s kept records, newest first."""
        ring = self._ring(worker)
        written = _RING_HEAD.unpack_from(self._map, ring)[0]
        found = []
        for back in range(1, min(written, RECORDS_KEPT) + 1):
            entry = (written - back) % RECORDS_KEPT
            record = self._read(ring + _RING_HEAD.size + entry * RECORD_BYTES)
            if record is not None:
                found.append(record)
        return found

    def others(self, worker: int) -> list[dict[str, object]]:
        """Every other worker's latest snapshot."""
        found = (self.read(k) for k in range(self.workers) if k != worker)
        return [snapshot for snapshot in found if snapshot is not None]


class WorkerView:
    """What one worker's `Counters` sees of the others: their snapshots, the restarts."""

    def __init__(self, shared: SharedCounters, worker: int) -> None:
        self.shared = shared
        self.worker = worker
        self.workers = shared.workers

    @property
    def started(self) -> float:
        return self.shared.started

    def others(self) -> list[dict[str, object]]:
        return self.shared.others(self.worker)

    def restarts(self) -> int:
        return sum(self.shared.restarts())

    def previous(self) -> dict[str, object] | None:
        """This worker's slot as its previous life left it (None on a first start)."""
        return self.shared.read(self.worker)

    def publish(self, snapshot: Mapping[str, object]) -> None:
        self.shared.publish(self.worker, {**snapshot, "worker": self.worker})

    def keep_record(self, record: Mapping[str, object], line: str) -> None:
        self.shared.keep_record(self.worker, record, line)

    def others_records(self) -> list[dict[str, object]]:
        """The other workers' kept records, each worker's newest first."""
        return [record for k in range(self.workers) if k != self.worker
                for record in self.shared.records(k)]
