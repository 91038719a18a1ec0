"""Live counters: connections per listener, outcomes by statistics group,
handshakes by protocol version, limits hit, HTTP responses. Rendered as
JSON (/stats) and in the Prometheus text exposition format (/metrics)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from pinata.appliance.outcome import StatGroup
from pinata.appliance.settings import LISTENER_NAMES


def _none_dropped() -> int:
    return 0


class Fleet(Protocol):
    """The other workers of the appliance, as one worker sees them
    (`pinata.appliance.shared_counters.WorkerView`)."""

    workers: int
    # Which worker we are (0 to workers - 1).
    worker: int

    def others(self) -> list[dict[str, object]]: ...

    def restarts(self) -> int: ...

    @property
    def started(self) -> float: ...


# The plain tallies a snapshot carries under their own names.
_TALLIES = ("connect_back", "connections", "active", "limits", "selftalk_runs", "handshakes")


class Counters:
    def __init__(self, started: datetime,
                 log_lines_dropped: Callable[[], int] = _none_dropped,
                 fleet: Fleet | None = None) -> None:
        self.started = started
        # With workers, what the others counted is added to ours when shown.
        self.fleet = fleet
        self._others_dropped = 0
        # Read from the log writer when shown: lines lost to a sink that did not keep up.
        self.log_lines_dropped = log_lines_dropped
        # Knocks on the connect-back port: dialled, queued, or refused by which limit.
        self.connect_back: Counter[str] = Counter()
        self.connections: Counter[str] = Counter()
        self.active: Counter[str] = Counter()
        self.outcomes: Counter[tuple[str, StatGroup]] = Counter()
        self.limits: Counter[str] = Counter()
        self.http_responses: Counter[int] = Counter()
        self.selftalk_runs: Counter[str] = Counter()
        # Completed handshakes by negotiated version ("TLS 1.3", "TLS 1.2"): at most
        # the versions the configs speak, so a bounded key set.
        self.handshakes: Counter[str] = Counter()

    def opened(self, listener: str) -> None:
        self.connections[listener] += 1
        self.active[listener] += 1

    def finished(self, listener: str, group: StatGroup) -> None:
        self.active[listener] -= 1
        self.outcomes[(listener, group)] += 1

    def handshake_completed(self, version: str) -> None:
        """A handshake completed (bounty ports and HTTPS) with this version's name."""
        self.handshakes[version] += 1

    def refused(self, listener: str, limit: str) -> None:
        """A connection turned away by a limit before any handler ran."""
        self.connections[listener] += 1
        self.outcomes[(listener, StatGroup.limit)] += 1
        self.limits[limit] += 1

    def limit_hit(self, limit: str) -> None:
        self.limits[limit] += 1

    def http_response(self, status: int) -> None:
        self.http_responses[status] += 1

    def knock(self, verdict: str) -> None:
        self.connect_back[verdict] += 1

    def _released(self, group: StatGroup) -> int:
        return sum(n for (_, g), n in self.outcomes.items() if g is group)

    @property
    def secrets_released(self) -> int:
        """Releases to a peer that is not the piñata itself: each one is a break."""
        return self._released(StatGroup.secret_released)

    @property
    def secrets_released_to_self(self) -> int:
        """Releases to the piñata's own certificates (self-talk, relays): expected."""
        return self._released(StatGroup.released_to_self)

    def snapshot(self) -> dict[str, object]:
        """Everything counted, as JSON-ready values (for the other workers to add up)."""
        snapshot: dict[str, object] = {name: dict(getattr(self, name)) for name in _TALLIES}
        snapshot["outcomes"] = [[listener, group.value, n]
                                for (listener, group), n in self.outcomes.items()]
        snapshot["http_responses"] = {str(k): n for k, n in self.http_responses.items()}
        snapshot["log_lines_dropped"] = self._dropped()
        return snapshot

    def add(self, snapshot: Mapping[str, object], *, active: bool = True) -> None:
        """Add another worker's (or a previous life's) snapshot to these counters;
        `active=False` leaves out its live connections (they died with it).
        Entries of an unexpected shape are skipped: the slot is ours, but bounded trust
        costs one isinstance."""
        for name in _TALLIES:
            table = snapshot.get(name)
            if isinstance(table, dict) and (active or name != "active"):
                getattr(self, name).update({k: n for k, n in table.items() if isinstance(n, int)})
        outcomes = snapshot.get("outcomes")
        groups = {g.value: g for g in StatGroup}
        for entry in outcomes if isinstance(outcomes, list) else ():
            if (isinstance(entry, list) and len(entry) == 3 and entry[1] in groups
                    and isinstance(entry[2], int)):
                self.outcomes[(str(entry[0]), groups[entry[1]])] += entry[2]
        responses = snapshot.get("http_responses")
        for status, n in (responses.items() if isinstance(responses, dict) else ()):
            if status.isdigit() and isinstance(n, int):
                self.http_responses[int(status)] += n
        dropped = snapshot.get("log_lines_dropped")
        self._others_dropped += dropped if isinstance(dropped, int) else 0

    def whole(self) -> Counters:
        """The appliance's counters: ours plus every other worker's latest snapshot."""
        if self.fleet is None:
            return self
        mine = self.snapshot()
        whole = Counters(datetime.fromtimestamp(self.fleet.started, UTC))
        for snapshot in (mine, *self.fleet.others()):
            whole.add(snapshot)
        return whole

    def _dropped(self) -> int:
        return self.log_lines_dropped() + self._others_dropped

    def to_json(self, now: datetime) -> dict[str, object]:
        """The whole appliance's counters, for /stats and the page."""
        shown = self.whole()._json(now)
        if self.fleet is not None:
            shown["workers"] = {"count": self.fleet.workers, "restarts": self.fleet.restarts(),
                                "connections": self._by_worker()}
        return shown

    def _by_worker(self) -> dict[str, int]:
        """Connections each worker has accepted (how evenly the kernel spreads them)."""
        assert self.fleet is not None
        counts = {str(self.fleet.worker): sum(self.connections.values())}
        for snapshot in self.fleet.others():
            connections = snapshot.get("connections")
            if isinstance(connections, dict):
                counts[str(snapshot.get("worker"))] = sum(
                    n for n in connections.values() if isinstance(n, int))
        return dict(sorted(counts.items()))

    def _json(self, now: datetime) -> dict[str, object]:
        listeners: dict[str, object] = {}
        for name in LISTENER_NAMES:
            outcomes = {
                group.value: n for (listener, group), n in sorted(self.outcomes.items())
                if listener == name and n
            }
            listeners[name] = {
                "connections": self.connections[name],
                "active": self.active[name],
                "outcomes": outcomes,
            }
        totals: Counter[str] = Counter()
        for (_, group), n in self.outcomes.items():
            totals[group.value] += n
        return {
            "started": self.started.isoformat(),
            "uptime_seconds": round((now - self.started).total_seconds(), 3),
            "secrets_released_to_stranger": self.secrets_released,
            "secrets_released_to_self": self.secrets_released_to_self,
            "outcomes": dict(sorted(totals.items())),
            "handshakes_by_version": dict(sorted(self.handshakes.items())),
            "listeners": listeners,
            "limits_hit": dict(sorted(self.limits.items())),
            "http_responses": {str(k): v for k, v in sorted(self.http_responses.items())},
            "selftalk_runs": dict(sorted(self.selftalk_runs.items())),
            "connect_back": dict(sorted(self.connect_back.items())),
            "log_lines_dropped": self._dropped(),
        }

    def to_prometheus(self, now: datetime) -> str:
        """The whole appliance's counters in the Prometheus text exposition format 0.0.4."""
        text = self.whole()._prometheus(now)
        if self.fleet is None:
            return text
        return text + (
            "# HELP pinata_workers Worker processes serving the listeners.\n"
            "# TYPE pinata_workers gauge\n"
            f"pinata_workers {self.fleet.workers}\n"
            "# HELP pinata_worker_restarts_total Workers that died and were restarted.\n"
            "# TYPE pinata_worker_restarts_total counter\n"
            f"pinata_worker_restarts_total {self.fleet.restarts()}\n"
        )

    def _prometheus(self, now: datetime) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        family("pinata_connections_total", "counter", "Connections accepted, per listener.")
        for name in LISTENER_NAMES:
            lines.append(f'pinata_connections_total{{listener="{name}"}} {self.connections[name]}')
        family("pinata_connections_active", "gauge", "Connections being handled, per listener.")
        for name in LISTENER_NAMES:
            lines.append(f'pinata_connections_active{{listener="{name}"}} {self.active[name]}')
        family("pinata_outcomes_total", "counter", "Finished connections by outcome group.")
        for (listener, group), n in sorted(self.outcomes.items()):
            labels = f'listener="{listener}",outcome="{_label(group.value)}"'
            lines.append(f"pinata_outcomes_total{{{labels}}} {n}")
        family("pinata_handshakes_total", "counter",
               "Completed TLS handshakes, per negotiated protocol version.")
        for version, n in sorted(self.handshakes.items()):
            lines.append(f'pinata_handshakes_total{{version="{_label(version)}"}} {n}')
        family("pinata_secrets_released_total", "counter",
               "Secrets released to a peer other than the pinata itself (a break).")
        lines.append(f"pinata_secrets_released_total {self.secrets_released}")
        family("pinata_secrets_released_to_self_total", "counter",
               "Secrets released to the pinata's own certificates (self-talk, relays).")
        lines.append(f"pinata_secrets_released_to_self_total {self.secrets_released_to_self}")
        family("pinata_connect_back_knocks_total", "counter",
               "Knocks on the connect-back port: dialled, queued, or the limit that refused.")
        for verdict, n in sorted(self.connect_back.items()):
            lines.append(f'pinata_connect_back_knocks_total{{verdict="{_label(verdict)}"}} {n}')
        family("pinata_log_lines_dropped_total", "counter",
               "Log lines dropped because the log sink did not keep up.")
        lines.append(f"pinata_log_lines_dropped_total {self._dropped()}")
        family("pinata_limits_hit_total", "counter", "Connections refused or cut by a limit.")
        for limit, n in sorted(self.limits.items()):
            lines.append(f'pinata_limits_hit_total{{limit="{_label(limit)}"}} {n}')
        family("pinata_http_responses_total", "counter", "HTTP responses by status code.")
        for status, n in sorted(self.http_responses.items()):
            lines.append(f'pinata_http_responses_total{{status="{status}"}} {n}')
        family("pinata_uptime_seconds", "gauge", "Seconds since start.")
        lines.append(f"pinata_uptime_seconds {(now - self.started).total_seconds():.3f}")
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    # Exposition format: label values escape backslash, quote and newline.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
