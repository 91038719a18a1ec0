"""A bounded record of what a connection did, for logs and the web page.

It holds message types and the parameters that matter (versions, suites,
groups, schemes, certificate subjects), state changes and alerts: never a
key, a secret, a transcript hash or application data. It is bounded so a
peer that sends a thousand KeyUpdates cannot grow it.

An entry is the handlers' own `Note`, its fields kept in the trace's flat
list and the entry rebuilt and rendered only when read (issue 18). Code points
are named when the entry is made, not when it is read: the names are shared
constants, while keeping the parsed numbers would hold a ClientHello's
integers for as long as the connection stalls (measured: +550 bytes per
stalled handshake). A NamedTuple entry is cheaper to build (about 4 µs a
handshake) but 8 bytes larger than this slotted one, held per stalled
handshake; we keep the smaller. An entry's details are one flat tuple
(key, value, key, value) rather than a tuple of pairs: 338 bytes fewer per
stalled handshake (3,282 to 2,944), CPU unchanged within noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

MAX_TRACE_ENTRIES = 48

TraceValue = str | int | tuple[str, ...]
Details = tuple[tuple[str, TraceValue], ...]


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One entry. `kind` is "in" / "out" for messages, "state" for a state
    change, "alert_in" / "alert_out" for alerts, "note" for anything else
    worth knowing."""

    kind: str
    what: str
    # The details as key, value, key, value: one tuple rather than one per
    # pair, since every entry is held for as long as a handshake stalls
    # (a three-detail entry: 88 bytes instead of 232). `details` pairs them.
    flat: tuple[TraceValue, ...] = ()

    @classmethod
    def of(cls, kind: str, what: str, details: Mapping[str, TraceValue]) -> TraceEntry:
        """An entry with `details` in their given order."""
        return cls(kind, what, tuple(chain.from_iterable(details.items())) if details else ())

    @property
    def details(self) -> Details:
        """The details as (key, value) pairs, in the order given."""
        flat = self.flat
        return tuple((str(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2))

    def to_json(self) -> dict[str, object]:
        """The entry as JSON-ready values."""
        out: dict[str, object] = {"kind": self.kind, "what": self.what}
        for key, value in self.details:
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


class Trace:
    """The entries of one connection, at most `MAX_TRACE_ENTRIES`.

    They are held as one flat list (kind, what, details, kind, ...), not as
    entry objects: a trace lives as long as its connection, stalled ones
    included, and three list slots are 24 bytes where an entry is 56.
    `entries` builds the objects when the trace is read."""

    __slots__ = ("_flat", "dropped")

    def __init__(self) -> None:
        # kind, what, flat details, kind, ...: `append` is its only writer.
        self._flat: list[Any] = []
        self.dropped = 0

    def add(self, kind: str, what: str, **details: TraceValue) -> None:
        """Record one entry; dropped (and counted) once the trace is full."""
        self.append(TraceEntry.of(kind, what, details))

    def append(self, entry: TraceEntry) -> None:
        """Record an entry built elsewhere (a handler's `Note`)."""
        if len(self._flat) >= 3 * MAX_TRACE_ENTRIES:
            self.dropped += 1
            return
        self._flat += (entry.kind, entry.what, entry.flat)

    @property
    def entries(self) -> tuple[TraceEntry, ...]:
        """The entries so far, oldest first."""
        flat = self._flat
        return tuple(map(TraceEntry, flat[0::3], flat[1::3], flat[2::3]))

    def to_json(self) -> list[dict[str, object]]:
        """Every entry rendered, and a last one counting those dropped."""
        out = [e.to_json() for e in self.entries]
        if self.dropped:
            out.append({"kind": "note", "what": "trace_truncated", "dropped": self.dropped})
        return out
