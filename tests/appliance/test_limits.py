"""Each limit against hostile load: the bookkeeping alone, then live on loopback."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinata.appliance.limits import (
    CONNECT_BACK_IN_FLIGHT,
    CONNECT_BACK_NETWORK_RATE,
    CONNECT_BACK_RATE,
    GLOBAL_CAP,
    PER_ADDRESS_CAP,
    VALIDATION_BUDGET,
    ByteBudget,
    ConnectBackGate,
    ConnectionCaps,
    Knock,
    TokenBuckets,
    WorkBudget,
    network_of,
)
from tests.appliance.harness import RunningAppliance, listening_socket, test_settings

# --- bookkeeping ---------------------------------------------------------------------


@given(st.lists(st.tuples(st.booleans(), st.sampled_from("abcd")), max_size=200),
       st.integers(1, 6), st.integers(1, 4))
def test_caps_hold_and_empty_out(ops: list[tuple[bool, str]], total: int, per: int) -> None:
    caps = ConnectionCaps(total, per)
    held: list[str] = []
    for take, address in ops:
        if take:
            refused = caps.admit(address)
            if refused is None:
                held.append(address)
            elif refused == GLOBAL_CAP:
                assert len(held) == total
            else:
                assert refused == PER_ADDRESS_CAP and held.count(address) == per
        elif address in held:
            held.remove(address)
            caps.release(address)
        assert caps.total == len(held) <= total
        assert all(n <= per for n in caps.by_address.values())
    for address in held:
        caps.release(address)
    assert caps.total == 0 and not caps.by_address


def test_connect_back_gate_one_in_flight_one_pending_per_address() -> None:
    gate = ConnectBackGate(per_second=100.0, burst=10, now=0.0)
    assert gate.acquire("a", 0.0) is Knock.dial
    assert gate.acquire("a", 0.0) is Knock.queued
    assert gate.acquire("a", 0.0) == CONNECT_BACK_IN_FLIGHT  # a third is refused
    assert gate.acquire("b", 0.0) is Knock.dial
    assert gate.release("a") is True  # the queued knock takes the slot
    assert "a" in gate.in_flight and not gate.pending
    assert gate.acquire("a", 0.0) is Knock.queued
    gate.abandon("a")
    assert gate.release("a") is False
    assert gate.acquire("a", 0.0) is Knock.dial


@given(st.floats(0.1, 50.0), st.integers(1, 20),
       st.lists(st.floats(0.0, 10.0), min_size=1, max_size=100))
def test_connect_back_gate_rate(per_second: float, burst: int, gaps: list[float]) -> None:
    gate = ConnectBackGate(per_second, burst, now=0.0, network_per_second=1e9,
                           network_burst=10**6)
    now, granted = 0.0, 0
    for i, gap in enumerate(gaps):
        now += gap
        if gate.acquire(f"10.{i}.0.1", now) is Knock.dial:
            granted += 1
        else:
            assert gate.acquire(f"10.{i}.0.2", now) == CONNECT_BACK_RATE
    # A token bucket never grants more than its burst plus what the rate refilled.
    assert granted <= burst + per_second * now + 1e-6


def test_connect_back_is_fair_between_networks() -> None:
    """One network knocking 50 times a second takes its share, not everyone's."""
    gate = ConnectBackGate(5.0, 10, now=0.0, network_per_second=1.0, network_burst=3)
    granted_hog, granted_other = 0, 0
    refusals: Counter[object] = Counter()
    for tick in range(500):  # 10 seconds at 50 knocks a second
        now = tick / 50
        verdict = gate.acquire(f"198.51.100.{tick % 200}", now)
        if verdict is Knock.dial:
            granted_hog += 1
            gate.release(f"198.51.100.{tick % 200}")
        else:
            refusals[verdict] += 1
        if tick % 50 == 0:  # another network knocks once a second, within its share
            verdict = gate.acquire(f"203.0.113.{tick % 250}", now)
            if verdict is Knock.dial:
                granted_other += 1
                gate.release(f"203.0.113.{tick % 250}")
    assert 10 <= granted_hog <= 3 + 10
    assert granted_other == 10  # every knock from the other network was served
    assert set(refusals) == {CONNECT_BACK_NETWORK_RATE}  # never the global bucket


def test_networks_group_ipv4_by_24_and_ipv6_by_64() -> None:
    assert network_of("192.0.2.77") == "192.0.2.0/24"
    assert network_of("2001:db8:1:2:aaaa::1") == network_of("2001:db8:1:2:ffff::9")
    assert network_of("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:3::1") != network_of("2001:db8:1:2::1")
    assert network_of("::ffff:192.0.2.1") == "192.0.2.0/24"
    assert network_of("192.0.2.1", prefix_v4=32) == "192.0.2.1/32"
    assert network_of("2001:db8::1", prefix_v6=48) == "2001:db8::/48"


def test_ipv6_attacker_owning_a_64_meets_one_cap() -> None:
    """Reproduction 1, IPv6: 65,536 addresses of one /64 are one network."""
    caps = ConnectionCaps(1024, 32, per_network=64, listeners=["a", "b"], reserved=8)
    admitted = sum(caps.admit(f"2001:db8:0:1::{i:x}", "a") is None for i in range(5000))
    assert admitted == 64
    assert caps.admit("2001:db8:0:2::1", "a") is None


def test_reserved_capacity_per_listener() -> None:
    """Reproduction 1: a flood on one listener from many networks leaves the others theirs."""
    caps = ConnectionCaps(100, 100, per_network=100, listeners=["flooded", "page"], reserved=20)
    taken = sum(caps.admit(f"10.{i}.0.1", "flooded") is None for i in range(500))
    assert taken == 80  # its reserve and the whole shared pool
    assert caps.admit("10.200.0.1", "flooded") == GLOBAL_CAP
    assert all(caps.admit(f"10.{i}.1.1", "page") is None for i in range(20))
    assert caps.admit("10.201.0.1", "page") == GLOBAL_CAP
    assert caps.total == 100
    # At most half the total is ever reserved.
    assert ConnectionCaps(128, 8, listeners="abcde", reserved=32).reserved == 12


def test_a_full_cap_evicts_from_the_heaviest_network_only() -> None:
    caps = ConnectionCaps(6, 10, per_network=10)
    for address in ["10.0.0.1"] * 4 + ["10.0.1.1"] * 2:
        assert caps.admit(address) is None
    assert caps.admit("10.0.2.1") == GLOBAL_CAP
    assert caps.should_evict("10.0.2.1") == "10.0.0.0/24"
    assert caps.should_evict("10.0.0.9") is None  # the heaviest never evicts itself
    assert ConnectionCaps(2, 1, per_network=5).should_evict("10.0.0.1") is None  # empty
    tight = ConnectionCaps(3, 1, per_network=5)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        tight.admit(address)
    assert tight.should_evict("10.0.1.1") == "10.0.0.0/24"
    tight.admit("10.0.1.1", evicting=True)
    assert tight.should_evict("10.0.1.1") is None  # over its per-address cap anyway
    assert caps.admit("10.0.2.1", evicting=True) is None
    caps.release("10.0.0.1")
    assert caps.total == 6
    for _ in range(2):
        caps.release("10.0.0.1")
    caps.admit("10.0.0.1")
    # Two networks of 2 and one of 1: a newcomer may take from a 2, no 2 from another.
    assert caps.should_evict("10.0.3.1") in {"10.0.0.0/24", "10.0.1.0/24"}
    assert caps.should_evict("10.0.1.1") is None and caps.should_evict("10.0.2.1") is None


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.1.1"]),
                          st.sampled_from("xy")), max_size=200),
       st.integers(1, 8), st.integers(1, 4), st.integers(1, 3))
def test_network_caps_hold_and_empty_out(ops: list[tuple[bool, str, str]], total: int,
                                         per_net: int, reserved: int) -> None:
    caps = ConnectionCaps(total, 2, per_network=per_net, listeners="xy", reserved=reserved)
    held: list[tuple[str, str]] = []
    for take, address, listener in ops:
        if take:
            if caps.admit(address, listener) is None:
                held.append((address, listener))
        elif (address, listener) in held:
            held.remove((address, listener))
            caps.release(address, listener)
        assert caps.total == len(held) <= total
        assert all(n <= per_net for n in caps.by_network.values())
        assert all(n <= 2 for n in caps.by_address.values())
    for address, listener in held:
        caps.release(address, listener)
    assert caps.total == 0 and not caps.by_address and not caps.by_network


def test_token_buckets_stay_bounded() -> None:
    buckets = TokenBuckets(1.0, 2.0, max_keys=3)
    for key in "abc":
        buckets.spend(key, 2.0, 0.0)
    assert buckets.level("d", 0.5) is None  # the table is full of spent buckets
    assert buckets.level("d", 2.0) == 2.0  # refilled buckets are forgotten
    buckets.spend("d", 1.0, 2.0)
    assert len(buckets) == 1


def test_validation_budget_per_network_with_an_injected_clock() -> None:
    """Reproduction 2: a network that spends its validation budget is refused until repaid."""
    budget = WorkBudget(per_second=0.25, burst=1.0)
    now = 0.0
    spent = 0.0
    while budget.allows("192.0.2.9", now) is None:
        budget.charge("192.0.2.9", 0.2, now)  # one expensive chain: 200 ms of CPU
        spent += 0.2
        now += 0.2
    assert spent <= 1.0 + 0.25 * now + 0.2
    assert budget.allows("192.0.2.200", now) == VALIDATION_BUDGET  # the same /24
    assert budget.allows("198.51.100.1", now) is None  # another network is not touched
    # Debt is repaid at the budget's rate.
    assert budget.allows("192.0.2.9", now + 0.8) is None


def test_byte_budget() -> None:
    budget = ByteBudget(100)
    assert budget.take(60) and not budget.take(41) and budget.take(40)
    budget.give_back(100)
    assert budget.in_use == 0


# --- live ------------------------------------------------------------------------------


def trickle(port: int, data: bytes, interval: float, source: str = "127.0.0.1") -> float:
    """Send one byte per interval until the appliance cuts us off; seconds it took."""
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(source, 0)) as sock:
        started = time.monotonic()
        for byte in data:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(interval)
            sock.setblocking(False)
            try:
                if sock.recv(4096) == b"":
                    break
            except BlockingIOError:
                pass
            except OSError:
                break
            finally:
                sock.setblocking(True)
        return time.monotonic() - started


CLIENT_HELLO_START = bytes.fromhex("160301") + b"\x02\x00" + b"\x01" + b"\x00" * 400


def test_trickling_handshake_is_cut_at_the_handshake_deadline(
    make_appliance: Callable[..., RunningAppliance],
) -> None:
    appliance = make_appliance(handshake_timeout=1.0)
    took = trickle(appliance.ports["tls_server"], CLIENT_HELLO_START, 0.2)
    assert 0.9 < took < 4.0
    record = appliance.wait_for_record(lambda r: r.get("listener") == "tls_server")
    assert record["outcome"] == "timeout" and record["detail"] == "handshake deadline"


def test_trickling_http_is_cut_at_the_connection_deadline(
    make_appliance: Callable[..., RunningAppliance],
) -> None:
    appliance = make_appliance(connection_timeout=1.0)
    took = trickle(appliance.ports["http"], b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 400, 0.2)
    assert 0.9 < took < 4.0
    record = appliance.wait_for_record(lambda r: r.get("listener") == "http")
    assert record["outcome"] == "timeout" and record["detail"] == "connection deadline"


def idle(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))


def closed_at_once(sock: socket.socket) -> bool:
    sock.settimeout(2)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_global_cap_refuses_at_once_and_counts(
    make_appliance: Callable[..., RunningAppliance],
) -> None:
    appliance = make_appliance(max_connections=3, first_byte_timeout=20.0)
    port = appliance.ports["http"]
    held = [idle(port) for _ in range(3)]
    time.sleep(0.2)
    extras = [idle(appliance.ports["tls_server"]) for _ in range(5)]
    try:
        assert all(closed_at_once(extra) for extra in extras)
        summary = appliance.refusal_summary(GLOBAL_CAP)
        assert summary["count"] == 5 and summary["top_networks"] == [["127.0.0.0/24", 5]]
        assert appliance.stats()["limits_hit"][GLOBAL_CAP] == 5
        # Counted and summarised, never one line per refusal.
        assert not [r for r in appliance.records() if r.get("outcome") == "limit"]
    finally:
        for sock in (*extras, *held):
            sock.close()
    # Slots come back when connections end.
    deadline = time.monotonic() + 5
    while appliance.call(lambda: appliance.state.caps.total) and time.monotonic() < deadline:
        time.sleep(0.05)
    with idle(port) as again:
        again.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert again.recv(12) == b"HTTP/1.1 200"


def test_per_address_cap_is_per_address(make_appliance: Callable[..., RunningAppliance]) -> None:
    appliance = make_appliance(max_connections_per_address=2, first_byte_timeout=20.0)
    port = appliance.ports["http"]
    held = [idle(port) for _ in range(2)]
    time.sleep(0.2)
    third, other = idle(port), idle(port, source="127.0.0.2")
    try:
        assert closed_at_once(third)
        assert not closed_at_once(other)  # another address still gets in
        assert appliance.refusal_summary(PER_ADDRESS_CAP)["count"] == 1
    finally:
        for sock in (*held, third, other):
            sock.close()


def knock(port: int, source: str = "127.0.0.1") -> int:
    with idle(port, source) as sock:
        source_port: int = sock.getsockname()[1]
        sock.settimeout(5)
        assert sock.recv(1) == b""  # closed at once, unread
    return source_port


def hanging_listener(address: str = "127.0.0.1") -> tuple[socket.socket, socket.socket]:
    """A port whose accept queue is full, so a further connect hangs (no SYN-ACK)."""
    sock = socket.socket()
    sock.bind((address, 0))
    sock.listen(0)
    filler = socket.create_connection(sock.getsockname(), timeout=2)
    return sock, filler


def test_connect_back_second_knock_waits_its_turn_third_is_refused(
    make_appliance: Callable[..., RunningAppliance],
) -> None:
    """Reproduction 5: a researcher who knocks twice quickly is served twice, in turn."""
    target, filler = hanging_listener()
    try:
        appliance = make_appliance(test_settings(connect_back_target=target.getsockname()[1],
                                                 connect_timeout=1.0))
        first = knock(appliance.ports["connect_back"])
        time.sleep(0.2)
        second = knock(appliance.ports["connect_back"])
        knock(appliance.ports["connect_back"])  # a third, while both are taken
        failed = appliance.record_from("connect_back", first)
        assert failed["outcome"] == "connect-back failed"
        assert failed["detail"].endswith("timeout")
        assert 0.9 < failed["duration"] < 3.0
        served_after = appliance.record_from("connect_back", second)
        assert served_after["outcome"] == "connect-back failed"  # it was dialled, after the first
        assert served_after["duration"] > 1.5
        assert appliance.refusal_summary(CONNECT_BACK_IN_FLIGHT)["count"] == 1
        knocks = appliance.stats()["connect_back"]
        assert knocks == {"dial": 1, "queued": 1, CONNECT_BACK_IN_FLIGHT: 1}
        assert appliance.call(lambda: (appliance.state.gate.in_flight, appliance.state.handovers)
                              ) == (set(), {})
    finally:
        filler.close()
        target.close()


def test_connect_back_rate_limit(make_appliance: Callable[..., RunningAppliance]) -> None:
    appliance = make_appliance(connect_back_per_second=0.01, connect_back_burst=2)
    sources = ["127.0.0.2", "127.0.1.3", "127.0.2.4"]
    ports = [knock(appliance.ports["connect_back"], source) for source in sources]
    # Nothing listens on the target port: the first two dial and fail, the third may not dial.
    outcomes = [appliance.record_from("connect_back", p)["outcome"] for p in ports[:2]]
    assert outcomes == ["connect-back failed", "connect-back failed"]
    assert appliance.refusal_summary(CONNECT_BACK_RATE)["top_networks"] == [["127.0.2.0/24", 1]]
    assert appliance.stats()["limits_hit"][CONNECT_BACK_RATE] == 1
    assert appliance.stats()["connect_back"][CONNECT_BACK_RATE] == 1


def test_connect_back_dials_only_the_initiator(
    make_appliance: Callable[..., RunningAppliance],
) -> None:
    elsewhere = listening_socket("127.0.0.1")
    port = elsewhere.getsockname()[1]
    initiator = socket.socket()
    initiator.bind(("127.0.0.5", port))
    initiator.listen(4)
    try:
        appliance = make_appliance(test_settings(connect_back_target=port))
        knock(appliance.ports["connect_back"], source="127.0.0.5")
        initiator.settimeout(5)
        dialled, (address, _) = initiator.accept()
        dialled.close()
        assert address == "127.0.0.1" or address.startswith("127.")
        elsewhere.settimeout(0.3)
        with pytest.raises(TimeoutError):
            elsewhere.accept()
    finally:
        elsewhere.close()
        initiator.close()
