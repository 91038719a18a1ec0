"""After many connections of mixed outcomes the appliance holds what it held before:
file descriptors, trio tasks, admission tables, and (roughly) objects."""

from __future__ import annotations

import gc
import os
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import trio

from tests.appliance.harness import (
    RunningAppliance,
    client_context,
    free_port,
    test_settings,
    toy_path,
)

CONNECTIONS = int(os.environ.get("PINATA_LEAK_CONNECTIONS", "10000"))
RESEARCHER = client_context(toy_path("researcher-client.pem"), toy_path("researcher-client.key"))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def count_tasks() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for nursery in task.child_nurseries
                       for child in nursery.child_tasks)

    return walk(trio.lowlevel.current_root_task())


def one(appliance: RunningAppliance, i: int) -> None:
    ports = appliance.ports
    kind = i % 8
    try:
        if kind == 0:
            with socket.create_connection(("127.0.0.1", ports["http"]), timeout=5) as sock:
                sock.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while sock.recv(65536):
                    pass
        elif kind == 1:
            with socket.create_connection(("127.0.0.1", ports["http"]), timeout=5) as sock:
                sock.sendall(b"\x00garbage\r\n\r\n")
                while sock.recv(65536):
                    pass
        elif kind in (2, 3):
            name = "tls_server" if kind == 2 else "tls_client"
            with socket.create_connection(("127.0.0.1", ports[name]), timeout=5):
                pass  # closed by peer
        elif kind == 4:
            with socket.create_connection(("127.0.0.1", ports["tls_server"]), timeout=5) as sock:
                # A ClientHello of one byte: malformed.
                sock.sendall(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00")
                while sock.recv(65536):
                    pass
        elif kind == 5:
            with socket.create_connection(("127.0.0.1", ports["connect_back"]), timeout=5) as sock:
                sock.recv(1)
        elif kind == 6 and i % 64 == 6:
            with socket.create_connection(("127.0.0.1", ports["tls_server"]), timeout=5) as raw, \
                    RESEARCHER.wrap_socket(raw) as tls:
                while tls.recv(4096):
                    pass
        else:
            with socket.create_connection(("127.0.0.1", ports["https"]), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # HTTP on the HTTPS port
                while sock.recv(65536):
                    pass
    except (OSError, ssl.SSLError):
        pass  # resets are an outcome too


def wave(appliance: RunningAppliance, start: int, count: int) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda i: one(appliance, i), range(start, start + count)))


def settle(appliance: RunningAppliance) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if appliance.call(lambda: appliance.state.caps.total) == 0:
            return
        time.sleep(0.05)
    raise AssertionError("connections still held")


@pytest.mark.slow
def test_no_fd_task_or_memory_leak(make_appliance: Callable[..., RunningAppliance]) -> None:
    settings = replace(
        test_settings(connect_back_target=free_port(), connect_back_per_second=1e6,
                      connect_back_burst=1000, max_connections_per_address=64),
    )
    appliance = make_appliance(settings)
    wave(appliance, 0, 400)  # warm up caches, imports, the journal's ring
    settle(appliance)
    gc.collect()
    before = (open_fds(), appliance.call(count_tasks), len(gc.get_objects()))
    started = time.monotonic()
    wave(appliance, 400, CONNECTIONS)
    settle(appliance)
    elapsed = time.monotonic() - started
    gc.collect()
    after = (open_fds(), appliance.call(count_tasks), len(gc.get_objects()))
    state = appliance.state
    stats = appliance.stats()
    assert after[0] == before[0], f"file descriptors {before[0]} -> {after[0]}"
    assert after[1] == before[1], f"tasks {before[1]} -> {after[1]}"
    # One leaked object per connection would add CONNECTIONS; allow noise well below it.
    assert after[2] - before[2] < CONNECTIONS // 5, f"objects {before[2]} -> {after[2]}"
    assert appliance.call(lambda: (dict(state.caps.by_address), set(state.gate.in_flight))) == (
        {}, set()
    )
    # Every table of the budgets against hostile load empties too (issue 11).
    assert appliance.call(lambda: (
        dict(state.caps.by_network), dict(state.caps.by_listener), state.live, state.handovers,
        state.gate.pending, state.validation._turns, state.preauth.in_use)) == (
        {}, {}, {}, {}, set(), {}, 0)
    assert all(listener["active"] == 0 for listener in stats["listeners"].values())
    total = sum(listener["connections"] for listener in stats["listeners"].values())
    assert total >= CONNECTIONS + 400 - 10  # a few may race the listener's backlog
    outcomes = set(stats["outcomes"])
    assert {"secret released", "served", "bad request", "closed by peer",
            "connect-back failed", "malformed message"} <= outcomes, outcomes
    print(f"{CONNECTIONS} connections in {elapsed:.1f}s")
