"""Each limit against hostile load: the bookkeeping alone, then live on loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinata.appliance.limits import (
    CONNECT_BACK_IN_FLIGHT,
    CONNECT_BACK_RATE,
    GLOBAL_CAP,
    PER_ADDRESS_CAP,
    ConnectBackGate,
    ConnectionCaps,
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


def test_connect_back_gate_one_in_flight_per_address() -> None:
    gate = ConnectBackGate(per_second=100.0, burst=10, now=0.0)
    assert gate.acquire("a", 0.0) is None
    assert gate.acquire("a", 0.0) == CONNECT_BACK_IN_FLIGHT
    assert gate.acquire("b", 0.0) is None
    gate.release("a")
    assert gate.acquire("a", 0.0) is None


@given(st.floats(0.1, 50.0), st.integers(1, 20),
       st.lists(st.floats(0.0, 10.0), min_size=1, max_size=100))
def test_connect_back_gate_rate(per_second: float, burst: int, gaps: list[float]) -> None:
    gate = ConnectBackGate(per_second, burst, now=0.0)
    now, granted = 0.0, 0
    for i, gap in enumerate(gaps):
        now += gap
        if gate.acquire(f"address {i}", now) is None:
            granted += 1
        else:
            assert gate.acquire(f"address {i}", now) == CONNECT_BACK_RATE
    # A token bucket never grants more than its burst plus what the rate refilled.
    assert granted <= burst + per_second * now + 1e-6


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
    appliance = make_appliance(max_connections=3)
    port = appliance.ports["http"]
    held = [idle(port) for _ in range(3)]
    time.sleep(0.2)
    extra = idle(appliance.ports["tls_server"])
    try:
        assert closed_at_once(extra)
        record = appliance.wait_for_record(lambda r: r.get("outcome") == "limit")
        assert record["detail"] == GLOBAL_CAP and record["listener"] == "tls_server"
        assert appliance.stats()["limits_hit"][GLOBAL_CAP] == 1
    finally:
        extra.close()
        for sock in held:
            sock.close()
    # Slots come back when connections end.
    deadline = time.monotonic() + 5
    while appliance.call(lambda: appliance.state.caps.total) and time.monotonic() < deadline:
        time.sleep(0.05)
    with idle(port) as again:
        again.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert again.recv(12) == b"HTTP/1.1 200"


def test_per_address_cap_is_per_address(make_appliance: Callable[..., RunningAppliance]) -> None:
    appliance = make_appliance(max_connections_per_address=2)
    port = appliance.ports["http"]
    held = [idle(port) for _ in range(2)]
    time.sleep(0.2)
    third, other = idle(port), idle(port, source="127.0.0.2")
    try:
        assert closed_at_once(third)
        assert not closed_at_once(other)  # another address still gets in
        record = appliance.wait_for_record(lambda r: r.get("outcome") == "limit")
        assert record["detail"] == PER_ADDRESS_CAP and record["peer"]["address"] == "127.0.0.1"
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


def test_connect_back_one_in_flight_and_connect_timeout(
    make_appliance: Callable[..., RunningAppliance],
) -> None:
    target, filler = hanging_listener()
    try:
        appliance = make_appliance(test_settings(connect_back_target=target.getsockname()[1],
                                                 connect_timeout=1.0))
        first = knock(appliance.ports["connect_back"])
        time.sleep(0.2)
        second = knock(appliance.ports["connect_back"])
        refused = appliance.record_from("connect_back", second)
        assert refused["outcome"] == "limit" and refused["detail"] == CONNECT_BACK_IN_FLIGHT
        failed = appliance.record_from("connect_back", first)
        assert failed["outcome"] == "connect-back failed"
        assert failed["detail"].endswith("timeout")
        assert 0.9 < failed["duration"] < 3.0
    finally:
        filler.close()
        target.close()


def test_connect_back_rate_limit(make_appliance: Callable[..., RunningAppliance]) -> None:
    appliance = make_appliance(connect_back_per_second=0.01, connect_back_burst=2)
    sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    ports = [knock(appliance.ports["connect_back"], source) for source in sources]
    outcomes = [appliance.record_from("connect_back", p)["outcome"] for p in ports]
    # Nothing listens on the target port: the first two dial and fail, the third may not dial.
    assert outcomes == ["connect-back failed", "connect-back failed", "limit"]
    assert appliance.stats()["limits_hit"][CONNECT_BACK_RATE] == 1


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
