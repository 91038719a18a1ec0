"""A bounded record of what a connection did, for logs and the web page.

It holds message types and the parameters that matter (versions, suites,
groups, schemes, certificate subjects), state changes and alerts: never a
key, a secret, a transcript hash or application data. It is bounded so a
peer that sends a thousand KeyUpdates cannot grow it.

An entry is the handlers' own `Note`; the trace keeps its fields in one
flat tuple and rebuilds the entries only when read (issue 18), so what a
stalled handshake holds is three tuple slots per entry (24 bytes, where an
entry object is 56 or more), and an entry's details are one flat tuple
(key, value, key, value) rather than a tuple of pairs. Measured, 200
server connections waiting for the client's second flight: 3,447 bytes
each before, 2,944 with flat details, 2,537 with the flat list. Entries are
NamedTuples, the cheapest immutable value to rebuild (reading a 16-entry
trace to JSON: 18 µs; 21 µs with slotted frozen dataclasses). A single
code point is named when the entry is made: the names are shared constants,
while keeping the parsed numbers would hold a ClientHello's integers for as
long as the connection stalls (measured: +550 bytes). A list of them (the
ClientHello's suites and extensions) is kept as the wire has it, two bytes
each in one `bytes` (`code_points`), and named when the entry is read: one
object of 33 + 2n bytes where a tuple of names is 40 + 8n (issue 18).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any, NamedTuple

from pinata.tls.constants import CipherSuite, ExtensionType, enum_names

MAX_TRACE_ENTRIES = 48

# `bytes` only as `code_points` makes them, under a key of `CODE_POINT_KEYS`.
TraceValue = str | int | tuple[str, ...] | bytes
# The registry that names a detail's packed code points, by the detail's key.
CODE_POINT_KEYS: Mapping[str, type[enum.IntEnum]] = {
    "cipher_suites": CipherSuite,
    "extensions": ExtensionType,
}


def code_points(values: Sequence[int]) -> bytes:
    """16-bit code points (suites, extension types: two bytes on the wire,
    RFC 8446 §4.1.2, §4.2) packed two bytes each, big-endian; `named` reads
    them back. Raises struct.error for a value outside 0..65535."""
    return struct.pack(f">{len(values)}H", *values)


def named(key: str, value: TraceValue) -> TraceValue:
    """`value` as read: packed code points (`code_points`) named by the
    registry of their `key` (hex for values it does not know); any other
    value as it is."""
    if not isinstance(value, bytes):
        return value
    codes = struct.unpack(f">{len(value) // 2}H", value[: len(value) // 2 * 2])
    kind = CODE_POINT_KEYS.get(key)
    if kind is None:
        return tuple(f"0x{code:04x}" for code in codes)
    return enum_names(kind, codes)
Details = tuple[tuple[str, TraceValue], ...]


def flatten(details: Mapping[str, TraceValue]) -> tuple[TraceValue, ...]:
    """`details` as one flat tuple, key, value, key, value, in their order."""
    return tuple(chain.from_iterable(details.items())) if details else ()


class TraceEntry(NamedTuple):
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
        return cls(kind, what, flatten(details))

    @property
    def details(self) -> Details:
        """The details as (key, value) pairs, in the order given."""
        flat = self.flat
        return tuple(
            (str(flat[i]), named(str(flat[i]), flat[i + 1])) for i in range(0, len(flat), 2)
        )

    def to_json(self) -> dict[str, object]:
        """The entry as JSON-ready values."""
        out: dict[str, object] = {"kind": self.kind, "what": self.what}
        for key, value in self.details:
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


class Trace:
    """The entries of one connection, at most `MAX_TRACE_ENTRIES`.

    They are held as one flat tuple (kind, what, details, kind, ...), not as
    entry objects: a trace lives as long as its connection, stalled ones
    included, and three slots are 24 bytes where an entry is 56. A tuple
    rebuilt per entry rather than a list: one exact block instead of a list
    object and its over-allocated array (a stalled TLS 1.3 server's nine
    entries: 256 bytes, not 288), for copies bounded by `MAX_TRACE_ENTRIES`.
    `entries` builds the objects when the trace is read."""

    __slots__ = ("_flat", "dropped")

    def __init__(self) -> None:
        # kind, what, flat details, kind, ...: `record` and `append` write it.
        self._flat: tuple[Any, ...] = ()
        self.dropped = 0

    def add(self, kind: str, what: str, **details: TraceValue) -> None:
        """Record one entry; dropped (and counted) once the trace is full."""
        self.record(kind, what, flatten(details))

    def record(self, kind: str, what: str, flat: tuple[TraceValue, ...] = ()) -> None:
        """Record one entry from its fields (`flat` as in `TraceEntry`), with
        no entry object made; dropped (and counted) once the trace is full."""
        if len(self._flat) >= 3 * MAX_TRACE_ENTRIES:
            self.dropped += 1
            return
        self._flat += (kind, what, flat)

    def append(self, entry: TraceEntry) -> None:
        """Record an entry built elsewhere (a handler's `Note`)."""
        if len(self._flat) >= 3 * MAX_TRACE_ENTRIES:
            self.dropped += 1
            return
        # An entry is the tuple (kind, what, flat): its fields go in as they are.
        self._flat += entry

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
