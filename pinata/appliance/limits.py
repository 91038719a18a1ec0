"""Admission control: how many connections, from whom, and how often we dial out.

Plain bookkeeping with the clock passed in, so each rule is testable without
sockets. Every table here shrinks back when connections end: an address with
nothing in flight has no entry.
"""

from __future__ import annotations

from collections import Counter

# Names used in logs and counters for each limit.
GLOBAL_CAP = "max_connections"
PER_ADDRESS_CAP = "max_connections_per_address"
CONNECT_BACK_IN_FLIGHT = "connect_back_in_flight"
CONNECT_BACK_RATE = "connect_back_rate"


class ConnectionCaps:
    """A global cap and a per-source-address cap on concurrent connections."""

    def __init__(self, total: int, per_address: int) -> None:
        self.total_cap = total
        self.per_address_cap = per_address
        self.total = 0
        self.by_address: Counter[str] = Counter()

    def admit(self, address: str) -> str | None:
        """Take a slot for `address`; or the name of the limit that refuses it."""
        if self.total >= self.total_cap:
            return GLOBAL_CAP
        if self.by_address[address] >= self.per_address_cap:
            return PER_ADDRESS_CAP
        self.total += 1
        self.by_address[address] += 1
        return None

    def release(self, address: str) -> None:
        self.total -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]


class ConnectBackGate:
    """At most one connect-back in flight per address, and a global token bucket."""

    def __init__(self, per_second: float, burst: int, now: float) -> None:
        self.per_second = per_second
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now
        self.in_flight: set[str] = set()

    def acquire(self, address: str, now: float) -> str | None:
        """Start a connect-back to `address`; or the name of the limit that refuses it."""
        if address in self.in_flight:
            return CONNECT_BACK_IN_FLIGHT
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.per_second)
        self._updated = now
        if self._tokens < 1.0:
            return CONNECT_BACK_RATE
        self._tokens -= 1.0
        self.in_flight.add(address)
        return None

    def release(self, address: str) -> None:
        self.in_flight.discard(address)
