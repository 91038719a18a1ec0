"""One JSON line per connection, and a bounded memory of the latest ones.

A `ConnectionRecord` is filled in while a connection runs and written once
when it ends. It holds only what the engine's events and trace expose (which
never include keys, secrets or application data), the peer's address and our
own verdict; nothing in it comes from `Secret`.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pinata.appliance.outcome import Outcome, StatGroup, group_of
from pinata.tls.constants import TLS12, TLS13, CipherSuite, NamedGroup, SignatureScheme, enum_name
from pinata.tls.errors import alert_name
from pinata.tls.events import ConnectionFailed, HandshakeComplete

MAX_REASON = 200


class TraceEntry(Protocol):
    def to_json(self) -> Mapping[str, object]: ...


def version_name(version: int) -> str:
    return {TLS13: "TLS 1.3", TLS12: "TLS 1.2"}.get(version, f"0x{version:04x}")


@dataclass
class ConnectionRecord:
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
    trace: list[Mapping[str, object]] = field(default_factory=list)
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

    def take_trace(self, entries: Sequence[TraceEntry], limit: int) -> None:
        self.trace = [dict(e.to_json()) for e in entries[:limit]]
        self.trace_dropped = max(0, len(entries) - limit)

    @property
    def stat_group(self) -> StatGroup:
        return group_of(self.outcome or Outcome.internal_error, self.alert_code)

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


class Journal:
    """Writes each finished record as one JSON line and keeps the latest few."""

    def __init__(self, write_line: Callable[[str], None], keep: int,
                 observe: Callable[[ConnectionRecord], None] | None = None) -> None:
        self._write_line = write_line
        self._observe = observe
        self.recent: deque[dict[str, object]] = deque(maxlen=keep)
        # Records written since start: record n (from 1) is the n-th log line
        # of its kind, which gives the page a stable number to link to.
        self.written = 0

    def write(self, record: ConnectionRecord) -> dict[str, object]:
        as_json = record.to_json()
        self._write_line(json.dumps(as_json, separators=(",", ":"), default=str))
        self.recent.append(as_json)
        self.written += 1
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
        """The latest record of a connection from (address, port)."""
        for record in reversed(self.recent):
            peer = record["peer"]
            assert isinstance(peer, dict)
            if peer["address"] == address and peer["port"] == port and (
                listener is None or record["listener"] == listener
            ):
                return record
        return None
