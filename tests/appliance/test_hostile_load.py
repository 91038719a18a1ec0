"""Issue 11's seven reproductions, live on loopback: each one no longer works.

Attackers and honest peers use different loopback networks (127.0.N.0/24),
as an attacker's machine and a researcher's would be. (IPv6 /64 grouping
is tested on the bookkeeping alone, in test_limits: loopback IPv6 is ::1.)
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from pinata.appliance import serve
from pinata.appliance.guard import SMALL_CHAIN_BYTES
from pinata.appliance.limits import (
    CONNECT_BACK_IN_FLIGHT,
    HELLO_BYTES,
    PER_NETWORK_CAP,
    VALIDATION_BUDGET,
)
from pinata.bench.attacks import HUGE_HELLO_HEAD, expensive_chain
from tests.appliance.harness import (
    SECRET,
    TOY,
    RunningAppliance,
    client_context,
    free_port,
    read_all,
    test_settings,
    toy_path,
    written,
)

RESEARCHER = (toy_path("researcher-client.pem"), toy_path("researcher-client.key"))


def connect(port: int, source: str, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0))


def honest_secret(appliance: RunningAppliance, source: str) -> bytes:
    context = client_context(*RESEARCHER)
    with connect(appliance.ports["tls_server"], source) as raw, context.wrap_socket(raw) as tls:
        return read_all(tls)


def page(appliance: RunningAppliance, source: str, path: str = "/") -> bytes:
    with connect(appliance.ports["http"], source) as raw:
        raw.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := raw.recv(65536):
            data += chunk
    written(data)
    return data


def refused_total(appliance: RunningAppliance, limit: str, expected: int) -> int:
    """The sum of `limit`'s summary lines, once it reaches `expected` (or 10 s pass)."""
    deadline = time.monotonic() + 10
    while True:
        total = sum(r["refused"]["count"] for r in appliance.records()
                    if r.get("refused", {}).get("limit") == limit)
        if total >= expected or time.monotonic() > deadline:
            return total
        time.sleep(0.05)


@pytest.fixture
def stalled() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    yield held
    for sock in held:
        sock.close()


def test_1_stalled_connections_from_one_network_do_not_starve_others(
    make_appliance: Callable[..., RunningAppliance], stalled: list[socket.socket],
) -> None:
    appliance = make_appliance(max_connections=64, max_connections_per_network=16,
                               first_byte_timeout=30.0)
    for i in range(150):  # 63 addresses of one /24, on every listener
        port = appliance.ports[("tls_server", "tls_client", "http", "https")[i % 4]]
        stalled.append(connect(port, f"127.0.0.{1 + i % 63}"))
    assert honest_secret(appliance, "127.0.1.1") == SECRET
    assert page(appliance, "127.0.2.1").startswith(b"HTTP/1.1 200")
    summary = appliance.refusal_summary(PER_NETWORK_CAP)
    assert summary["top_networks"][0][0] == "127.0.0.0/24"
    assert refused_total(appliance, PER_NETWORK_CAP, 150 - 16) == 150 - 16


def test_1_a_flood_on_one_port_from_many_networks_leaves_the_others_their_reserve(
    make_appliance: Callable[..., RunningAppliance], stalled: list[socket.socket],
) -> None:
    appliance = make_appliance(max_connections=40, reserved_per_listener=4,
                               first_byte_timeout=30.0)
    for i in range(120):
        stalled.append(connect(appliance.ports["tls_server"], f"127.0.{10 + i % 40}.{1 + i // 40}"))
    time.sleep(0.3)
    assert page(appliance, "127.0.1.1").startswith(b"HTTP/1.1 200")
    assert appliance.refusal_summary("max_connections")["count"] > 0


def test_1_a_flood_from_many_networks_on_every_port_still_lets_a_new_network_in(
    make_appliance: Callable[..., RunningAppliance], stalled: list[socket.socket],
) -> None:
    appliance = make_appliance(max_connections=40, first_byte_timeout=30.0)
    for i in range(160):  # 20 networks, 8 addresses each, all four listeners
        port = appliance.ports[("tls_server", "tls_client", "http", "https")[i % 4]]
        stalled.append(connect(port, f"127.0.{30 + i % 20}.{1 + i // 20}"))
    time.sleep(0.3)
    # The cap is full of the flood; a newcomer's network holds nothing, so the
    # heaviest network's oldest stalled connection makes room for it.
    assert honest_secret(appliance, "127.0.1.1") == SECRET
    assert page(appliance, "127.0.2.1").startswith(b"HTTP/1.1 200")
    assert refused_total(appliance, "evicted_for_a_lighter_network", 1) >= 1
    assert appliance.call(lambda: appliance.state.caps.total) <= 40


def test_1_a_silent_connection_is_dropped_after_the_first_byte_deadline(
    make_appliance: Callable[..., RunningAppliance],
) -> None:
    appliance = make_appliance(first_byte_timeout=0.5)
    with connect(appliance.ports["tls_server"], "127.0.0.1") as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 5.0  # well before the handshake deadline (10 s)
    assert appliance.refusal_summary("first_byte_timeout")["count"] == 1


@pytest.fixture(scope="module")
def expensive(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return expensive_chain(TOY.anchor, tmp_path_factory.mktemp("expensive"), n=40, bits=2048)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["TLS 1.3", "TLS 1.2"])
@pytest.mark.parametrize("threads", [2, 0], ids=["worker threads", "on the loop (sandbox)"])
def test_2_expensive_chains_are_validated_off_the_loop_and_within_a_budget(
    make_appliance: Callable[..., RunningAppliance], expensive: tuple[str, str], threads: int,
    version: ssl.TLSVersion,
) -> None:
    appliance = make_appliance(validation_cpu_per_second=0.001, validation_cpu_burst=0.01,
                               validation_threads=threads)
    loop_thread = appliance._thread.ident
    ran_in: list[int | None] = []
    original = appliance.state.server_config.authenticate_client
    assert original is not None

    def watched(*args: Any) -> Any:
        ran_in.append(threading.get_ident())
        # The validator now refuses this chain cheaply (RSA exponents are
        # exactly 65537, tests/x509): burn what the 2015-style chain cost, so
        # the appliance's budget is what this test sees.
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass
        return original(*args)

    appliance.call(lambda: setattr(appliance.state, "server_config", replace(
        appliance.state.server_config, authenticate_client=watched)))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    context.load_cert_chain(*expensive)
    outcomes = []
    for i in range(4):
        try:
            with connect(appliance.ports["tls_server"], f"127.0.3.{i + 1}") as raw, \
                    context.wrap_socket(raw) as tls:
                tls.recv(1)
            outcomes.append("answered")
        except (ssl.SSLError, OSError) as exc:
            outcomes.append(type(exc).__name__)
    # With worker threads, never on the event loop's thread; without, on it.
    assert (loop_thread not in ran_in) if threads else (ran_in == [loop_thread])
    # The first chain spent the network's budget; the rest were refused before any work.
    assert len(ran_in) == 1
    assert appliance.stats()["limits_hit"][VALIDATION_BUDGET] == 3
    assert honest_secret(appliance, "127.0.4.1") == SECRET  # another network is untouched


def test_a_small_chain_is_validated_on_the_loop_even_with_worker_threads(
    make_appliance: Callable[..., RunningAppliance], expensive: tuple[str, str],
) -> None:
    """A thread hand-off costs more than validating a chain of a few hundred
    bytes; past SMALL_CHAIN_BYTES (the expensive chain) the work goes to a thread."""
    appliance = make_appliance(validation_threads=2)
    loop_thread = appliance._thread.ident
    ran_in: list[int | None] = []
    original = appliance.state.server_config.authenticate_client
    assert original is not None

    def watched(*args: Any) -> Any:
        ran_in.append(threading.get_ident())
        return original(*args)

    appliance.call(lambda: setattr(appliance.state, "server_config", replace(
        appliance.state.server_config, authenticate_client=watched)))
    assert honest_secret(appliance, "127.0.5.1") == SECRET
    assert ran_in == [loop_thread]
    assert Path(expensive[0]).stat().st_size > 2 * SMALL_CHAIN_BYTES  # PEM: DER is 3/4
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.load_cert_chain(*expensive)
    with contextlib.suppress(ssl.SSLError, OSError), \
            connect(appliance.ports["tls_server"], "127.0.6.1") as raw, \
            context.wrap_socket(raw) as tls:
        tls.recv(1)
    assert len(ran_in) == 2 and ran_in[1] != loop_thread


class StuckLog(RunningAppliance):
    """An appliance whose log sink blocks forever after the first lines (a pipe nobody reads)."""

    def __init__(self, *args: Any) -> None:
        self.unstuck = threading.Event()
        super().__init__(*args)

    def _write(self, line: str) -> None:
        super()._write(line)
        if '"listening"' not in line:
            self.unstuck.wait(60)

    def stop(self) -> None:
        self.unstuck.set()
        super().stop()


def test_3_a_log_nobody_reads_stalls_nothing() -> None:
    appliance = StuckLog(test_settings(log_queue_lines=2))
    try:
        for i in range(8):
            assert page(appliance, f"127.0.{5 + i}.1", "/software").startswith(b"HTTP/1.1 200")
        assert honest_secret(appliance, "127.0.1.1") == SECRET
        stats = appliance.stats()
        assert stats["log_lines_dropped"] >= 5
        metrics = page(appliance, "127.0.2.1", "/metrics").decode()
        shown = re.search(r"^pinata_log_lines_dropped_total (\d+)$", metrics, re.MULTILINE)
        assert shown is not None and int(shown[1]) >= stats["log_lines_dropped"]
    finally:
        appliance.stop()


def test_4_a_flood_of_refusals_writes_summaries_not_lines(
    make_appliance: Callable[..., RunningAppliance], stalled: list[socket.socket],
) -> None:
    appliance = make_appliance(max_connections_per_network=2, first_byte_timeout=30.0)
    before = len(appliance.lines)
    for i in range(300):
        stalled.append(connect(appliance.ports["http"], f"127.0.0.{1 + i % 200}"))
    assert refused_total(appliance, PER_NETWORK_CAP, 298) == 298
    new = appliance.lines[before:]
    # A summary per interval (0.25 s here) while the flood lasted, not 298 lines.
    assert len(new) <= 8 and sum(len(line) for line in new) < 4000
    assert appliance.refusal_summary(PER_NETWORK_CAP)["top_networks"][0][0] == "127.0.0.0/24"


def test_4_log_path_rotates(tmp_path: Path) -> None:
    log = tmp_path / "pinata.log"
    settings = replace(test_settings(log_max_bytes=2000, log_keep_files=2), log_path=str(log))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            state = await nursery.start(serve, settings)
            for i in range(20):
                state.journal._write_line('{"filler":"' + "x" * 200 + f'","n":{i}}}')
            await trio.sleep(0.3)
            nursery.cancel_scope.cancel()

    trio.run(main)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["pinata.log", "pinata.log.1", "pinata.log.2"]
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())


def test_5_a_second_knock_is_served_and_one_network_cannot_starve_another(
    make_appliance: Callable[..., RunningAppliance],
) -> None:
    appliance = make_appliance(test_settings(connect_back_target=free_port(),
                                             connect_back_per_second=1000.0,
                                             connect_back_burst=1000))
    for i in range(30):  # one network knocks 30 times at once
        with connect(appliance.ports["connect_back"], f"127.0.7.{1 + i}"):
            pass
    with connect(appliance.ports["connect_back"], "127.0.8.1") as sock:
        other = sock.getsockname()[1]
    record = appliance.record_from("connect_back", other)
    assert record["outcome"] == "connect-back failed"  # dialled (nobody listens there)
    knocks = appliance.stats()["connect_back"]
    assert knocks["connect_back_network_rate"] == 30 - 3
    assert CONNECT_BACK_IN_FLIGHT not in knocks


def test_6_huge_client_hellos_are_cut_and_their_memory_returned(
    make_appliance: Callable[..., RunningAppliance], stalled: list[socket.socket],
) -> None:
    appliance = make_appliance(preauth_bytes_per_connection=4096, first_byte_timeout=30.0)
    hello = HUGE_HELLO_HEAD + b"\x03\x03" + b"\x00" * 20_000
    for i in range(40):
        sock = connect(appliance.ports["tls_server"], f"127.0.{20 + i}.1")
        stalled.append(sock)
        with contextlib.suppress(OSError):  # cut off mid-send
            sock.sendall(hello)
    deadline = time.monotonic() + 10
    while appliance.stats()["limits_hit"].get(HELLO_BYTES, 0) < 40:
        assert time.monotonic() < deadline, appliance.stats()["limits_hit"]
        time.sleep(0.05)
    assert appliance.call(lambda: appliance.state.preauth.in_use) == 0


def test_7_the_page_shows_the_ports_in_use_and_both_release_counters(
    make_appliance: Callable[..., RunningAppliance],
) -> None:
    appliance = make_appliance(test_settings(connect_back_target=41234))
    assert honest_secret(appliance, "127.0.1.1") == SECRET
    appliance.wait_for_record(lambda r: r.get("outcome") == "secret released")
    body = page(appliance, "127.0.2.1").decode()
    assert "port 41234 of your address" in body and "40001" not in body
    assert f'data-port="tls_server">{appliance.ports["tls_server"]}<' in body
    assert 'data-stat="secrets_released_to_stranger">1<' in body
    assert 'data-stat="secrets_released_to_self">0<' in body
    metrics = page(appliance, "127.0.2.1", "/metrics").decode()
    assert "pinata_secrets_released_total 1" in metrics
    assert "pinata_secrets_released_to_self_total 0" in metrics
