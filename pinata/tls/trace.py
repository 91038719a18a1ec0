"""A bounded record of what a connection did, for logs and the web page.

It holds message types and the parameters that matter (versions, suites,
groups, schemes, certificate subjects), state changes and alerts: never a
key, a secret, a transcript hash or application data. It is bounded so a
peer that sends a thousand KeyUpdates cannot grow it.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_TRACE_ENTRIES = 48

TraceValue = str | int | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TraceEntry:
    # "in" / "out" for messages, "state" for a state change, "alert_in" /
    # "alert_out" for alerts, "note" for anything else worth knowing.
    kind: str
    what: str
    details: tuple[tuple[str, TraceValue], ...] = ()

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "what": self.what}
        for key, value in self.details:
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


class Trace:
    __slots__ = ("_entries", "dropped")

    def __init__(self) -> None:
        self._entries: list[TraceEntry] = []
        self.dropped = 0

    def add(self, kind: str, what: str, **details: TraceValue) -> None:
        self.append(kind, what, tuple(details.items()))

    def append(self, kind: str, what: str, details: tuple[tuple[str, TraceValue], ...]) -> None:
        if len(self._entries) >= MAX_TRACE_ENTRIES:
            self.dropped += 1
            return
        self._entries.append(TraceEntry(kind, what, details))

    @property
    def entries(self) -> tuple[TraceEntry, ...]:
        return tuple(self._entries)

    def to_json(self) -> list[dict[str, object]]:
        out = [e.to_json() for e in self._entries]
        if self.dropped:
            out.append({"kind": "note", "what": "trace_truncated", "dropped": self.dropped})
        return out
