"""Admission control: how many connections, from whom, how often we dial out,
and how much work and memory a peer may make us spend before it authenticates.

Plain bookkeeping with the clock passed in, so each rule is testable without
sockets. Limits are kept per *network* (an IPv4 /24, an IPv6 /64 by default)
as well as per address, because whoever holds one address usually holds its
whole network: an IPv6 peer is handed a /64, so a cap per /128 is no cap.
Every table here is bounded and shrinks back: an address with nothing in
flight has no entry, and a token bucket that has refilled is forgotten.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
from collections import Counter
from collections.abc import Iterable

# Names used in logs and counters for each limit.
GLOBAL_CAP = "max_connections"
PER_ADDRESS_CAP = "max_connections_per_address"
PER_NETWORK_CAP = "max_connections_per_network"
CONNECT_BACK_IN_FLIGHT = "connect_back_in_flight"
CONNECT_BACK_RATE = "connect_back_rate"
CONNECT_BACK_NETWORK_RATE = "connect_back_network_rate"
VALIDATION_BUDGET = "validation_budget"
PREAUTH_MEMORY = "preauth_bytes_total"
HELLO_BYTES = "preauth_bytes_per_connection"
FIRST_BYTE = "first_byte_timeout"
STEP = "step_timeout"
TRACKED_NETWORKS = "tracked_networks"
EVICTED = "evicted_for_a_lighter_network"
# Not a limit: a connection whose peer sent nothing and left, summarised with them.
SILENT = "silent_connection"


# Each connection asks about its address about seven times (caps, live
# slots, guard, validation budget), and `ipaddress` parsing was the largest
# share of the appliance's bookkeeping in the port-10000 profile (issue 18).
# Bounded: a flood from many addresses only cycles it.
NETWORK_CACHE = 1024


@functools.lru_cache(maxsize=NETWORK_CACHE)
def network_of(address: str, prefix_v4: int = 24, prefix_v6: int = 64) -> str:
    """The network `address` is counted in, as CIDR text ("192.0.2.0/24").

    An IPv4-mapped IPv6 address counts as the IPv4 address it carries; text
    that is not an address is its own network (it cannot come from a socket).
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = prefix_v4 if isinstance(ip, ipaddress.IPv4Address) else prefix_v6
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class ConnectionCaps:
    """Concurrent connections: a global cap, a cap per network and per address
    beneath it, and a reserve per listener that a flood elsewhere cannot take.

    Each listener may always use its reserve; beyond it, listeners share what
    is left of the global cap. At most half the global cap is reserved, so a
    small cap (the unikernel's 128) still leaves a shared pool.
    """

    def __init__(self, total: int, per_address: int, *, per_network: int | None = None,
                 listeners: Iterable[str] = (), reserved: int = 0,
                 prefix_v4: int = 24, prefix_v6: int = 64) -> None:
        self.total_cap = total
        self.per_address_cap = per_address
        self.per_network_cap = per_network if per_network is not None else total
        names = tuple(listeners)
        self.listeners = frozenset(names)
        self.reserved = min(reserved, total // (2 * len(names))) if names else 0
        self.shared_cap = total - self.reserved * len(names)
        self.prefixes = (prefix_v4, prefix_v6)
        self.total = 0
        self.by_address: Counter[str] = Counter()
        self.by_network: Counter[str] = Counter()
        self.by_listener: Counter[str] = Counter()

    def network(self, address: str) -> str:
        return network_of(address, *self.prefixes)

    def _shared_in_use(self) -> int:
        return sum(max(0, n - self.reserved) for n in self.by_listener.values())

    def admit(self, address: str, listener: str = "", *, evicting: bool = False) -> str | None:
        """Take a slot for `address` on `listener`; or the name of the limit that refuses it.

        `evicting`: a connection of a heavier network is being ended to make
        room (`should_evict`), so the global cap is passed by one until it is.
        """
        in_reserve = listener in self.listeners and self.by_listener[listener] < self.reserved
        if not in_reserve and not evicting and (
            self._shared_in_use() >= self.shared_cap or self.total >= self.total_cap
        ):
            return GLOBAL_CAP
        network = self.network(address)
        if self.by_network[network] >= self.per_network_cap:
            return PER_NETWORK_CAP
        if self.by_address[address] >= self.per_address_cap:
            return PER_ADDRESS_CAP
        self.total += 1
        self.by_address[address] += 1
        self.by_network[network] += 1
        self.by_listener[listener] += 1
        return None

    def should_evict(self, address: str) -> str | None:
        """When the global cap is reached: the network that holds the most slots, if
        it holds at least two more than `address`'s own; one of its connections
        should make room. A flood from many networks then shares the cap with
        everyone instead of owning it."""
        own = self.by_network[self.network(address)]
        if not self.by_network or own >= self.per_network_cap or (
            self.by_address[address] >= self.per_address_cap
        ):
            return None  # it would be refused anyway: nobody is evicted for nothing
        heaviest, held = max(self.by_network.items(), key=lambda item: item[1])
        if held >= own + 2:
            return heaviest
        return None

    def release(self, address: str, listener: str = "") -> None:
        self.total -= 1
        for table, key in ((self.by_address, address), (self.by_network, self.network(address)),
                           (self.by_listener, listener)):
            table[key] -= 1
            if table[key] <= 0:
                del table[key]


class TokenBuckets:
    """One token bucket per key (a network, or "" for everyone), in a bounded table.

    A bucket that has refilled to its burst is the same as no bucket, so it is
    forgotten; if the table is still full, a new key is refused rather than
    letting the table grow (the caller names that `TRACKED_NETWORKS`).
    """

    def __init__(self, per_second: float, burst: float, max_keys: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)

    def level(self, key: str, now: float) -> float | None:
        """Tokens `key` holds at `now`; None if it has no room in the table."""
        found = self._buckets.get(key)
        if found is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_full(now)
                if len(self._buckets) >= self.max_keys:
                    return None
            return self.burst
        tokens, updated = found
        return min(self.burst, tokens + max(0.0, now - updated) * self.per_second)

    def spend(self, key: str, amount: float, now: float) -> None:
        """Take `amount` (the balance may go negative: work is charged after it is done)."""
        tokens = self.level(key, now)
        self._buckets[key] = ((self.burst if tokens is None else tokens) - amount, now)

    def _forget_full(self, now: float) -> None:
        for key in [k for k, (t, u) in self._buckets.items()
                    if t + max(0.0, now - u) * self.per_second >= self.burst]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class Knock(enum.Enum):
    """What happens to a knock on the connect-back port that no limit refused."""

    dial = "dial now"
    queued = "queued behind the connect-back in flight"


class ConnectBackGate:
    """Connect-back: one in flight and one pending per address, a token bucket
    per network (so one network cannot spend another's share) and a global one.

    A knock while one is in flight for the same address is remembered and
    served when the first finishes; a third is refused. The network's bucket is
    asked first, so a refused network never drains the global bucket.
    """

    def __init__(self, per_second: float, burst: int, now: float, *,
                 network_per_second: float | None = None, network_burst: int | None = None,
                 prefix_v4: int = 24, prefix_v6: int = 64, max_networks: int = 4096) -> None:
        self.per_second = per_second
        self.burst = burst
        self._global = TokenBuckets(per_second, burst, 1)
        self._global.spend("", 0.0, now)
        self._networks = TokenBuckets(
            network_per_second if network_per_second is not None else per_second,
            network_burst if network_burst is not None else burst, max_networks)
        self.prefixes = (prefix_v4, prefix_v6)
        self.in_flight: set[str] = set()
        self.pending: set[str] = set()

    def acquire(self, address: str, now: float) -> Knock | str:
        """Admit a knock from `address`: dial, queue, or the name of the limit that refuses it."""
        if address in self.pending:
            return CONNECT_BACK_IN_FLIGHT
        network = network_of(address, *self.prefixes)
        network_tokens = self._networks.level(network, now)
        if network_tokens is None:
            return TRACKED_NETWORKS
        if network_tokens < 1.0:
            return CONNECT_BACK_NETWORK_RATE
        global_tokens = self._global.level("", now)
        if global_tokens is None or global_tokens < 1.0:
            return CONNECT_BACK_RATE
        self._networks.spend(network, 1.0, now)
        self._global.spend("", 1.0, now)
        if address in self.in_flight:
            self.pending.add(address)
            return Knock.queued
        self.in_flight.add(address)
        return Knock.dial

    def release(self, address: str) -> bool:
        """The connect-back to `address` ended. True: a pending knock now takes its
        place (the address stays in flight for it)."""
        if address in self.pending:
            self.pending.discard(address)
            return True
        self.in_flight.discard(address)
        return False

    def abandon(self, address: str) -> None:
        """A pending knock gave up before its turn (its deadline passed)."""
        self.pending.discard(address)


class WorkBudget:
    """Validation work per network: CPU seconds spent validating a network's
    certificates, refilled at `per_second` up to `burst`.

    Work is charged after it is done (its cost is known only then); a network
    in debt is refused new handshakes until the debt is repaid.
    """

    def __init__(self, per_second: float, burst: float, *, prefix_v4: int = 24,
                 prefix_v6: int = 64, max_networks: int = 4096) -> None:
        self._buckets = TokenBuckets(per_second, burst, max_networks)
        self.prefixes = (prefix_v4, prefix_v6)

    def allows(self, address: str, now: float) -> str | None:
        """None if `address`'s network may start validation work; else the limit's name."""
        level = self._buckets.level(network_of(address, *self.prefixes), now)
        if level is None:
            return TRACKED_NETWORKS
        return None if level > 0.0 else VALIDATION_BUDGET

    def charge(self, address: str, seconds: float, now: float) -> None:
        self._buckets.spend(network_of(address, *self.prefixes), seconds, now)


class ByteBudget:
    """A global budget of bytes held for peers that have not authenticated."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0

    def take(self, n: int) -> bool:
        """Reserve `n` bytes; False (nothing reserved) if that would pass the budget."""
        if self.in_use + n > self.total:
            return False
        self.in_use += n
        return True

    def give_back(self, n: int) -> None:
        self.in_use -= n
