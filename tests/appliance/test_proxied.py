"""Listeners behind a trusted proxy, with headers written by the test itself:
whom a header is believed from, what a bad one costs, and that admission,
logs and counters see the client it names. (`test_haproxy.py` does the same
through a real HAProxy.)"""

from __future__ import annotations

import ipaddress
import json
import signal
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from pinata.appliance import proxied, run_selftalk
from pinata.appliance.guard import Deadlines, GuardedStream, GuardRules
from pinata.appliance.proxy_protocol import V2_SIGNATURE
from pinata.appliance.settings import LISTENER_NAMES, ConfigError, Limits, load_config
from pinata.cli import main
from tests.appliance.harness import (
    SECRET,
    RunningAppliance,
    client_context,
    read_all,
    test_settings,
    toy_path,
    written,
)
from tests.appliance.test_cli import free_offset, listening, start, stop
from tests.appliance.test_settings import GOOD, write_config

RESEARCHER = (toy_path("researcher-client.pem"), toy_path("researcher-client.key"))
TRUSTED = "127.0.0.1"
UNTRUSTED = "127.0.0.3"


def v2_header(client: str, client_port: int, command: int = 0x1) -> bytes:
    block = (ipaddress.IPv4Address(client).packed + ipaddress.IPv4Address("127.0.0.1").packed
             + client_port.to_bytes(2, "big") + (10000).to_bytes(2, "big"))
    return V2_SIGNATURE + bytes([0x20 | command, 0x11]) + len(block).to_bytes(2, "big") + block


def connect_from(source: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def closed_without_a_byte(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def wait_until(appliance: RunningAppliance, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not appliance.call(condition):
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.02)


def behind_proxy(**limits: Any) -> RunningAppliance:
    settings = replace(test_settings(), limits=replace(Limits(), **limits),
                       trusted_proxies=(ipaddress.ip_network(f"{TRUSTED}/32"),))
    return RunningAppliance(settings)


@pytest.fixture
def appliance() -> Iterator[RunningAppliance]:
    running = behind_proxy()
    yield running
    running.stop()


def secret_through(sock: socket.socket) -> bytes:
    with client_context(*RESEARCHER).wrap_socket(sock) as tls:
        return read_all(tls)


@pytest.mark.parametrize("version", [1, 2])
def test_the_client_named_by_a_trusted_proxy_is_the_peer(
    appliance: RunningAppliance, version: int
) -> None:
    header = (b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 10000\r\n" if version == 1
              else v2_header("203.0.113.7", 5555))
    sock = connect_from(TRUSTED, appliance.ports["tls_server"])
    sock.sendall(header)
    assert secret_through(sock) == SECRET
    record = appliance.record_from("tls_server", 5555)
    assert record["peer"] == {"address": "203.0.113.7", "port": 5555}
    assert record["outcome"] == "secret released"


def test_http_through_a_trusted_proxy_shows_the_client_its_own_record(
    appliance: RunningAppliance,
) -> None:
    with connect_from(TRUSTED, appliance.ports["tls_server"]) as sock:
        sock.sendall(v2_header("198.51.100.9", 4242))
        assert secret_through(sock) == SECRET
    appliance.record_from("tls_server", 4242)
    with connect_from(TRUSTED, appliance.ports["http"]) as sock:
        # The header and the request in one segment: the bytes after the
        # header must reach the HTTP parser intact.
        sock.sendall(v2_header("198.51.100.9", 4243)
                     + b"GET /connection?port=4242 HTTP/1.1\r\nHost: x\r\n"
                     b"Connection: close\r\n\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 ")
    assert b'"address": "198.51.100.9"' in response


@pytest.mark.parametrize(("header", "detail"), [
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "PROXY header: v1_bad_port"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "PROXY header: no_signature"),
    (V2_SIGNATURE + b"\x21\x12\x00\x0c" + b"\x00" * 12, "PROXY header: v2_not_stream"),
    (b"PROXY UNKNOWN\r\n", "PROXY header: names no IP client"),
    (b"PROXY TCP4 1.2.3.4 5.6", "PROXY header: closed before a complete header"),
])
def test_a_trusted_proxy_without_a_valid_header_is_closed_and_counted(
    appliance: RunningAppliance, header: bytes, detail: str
) -> None:
    with connect_from(TRUSTED, appliance.ports["tls_server"]) as sock:
        proxy_port = sock.getsockname()[1]
        sock.sendall(header)
        if detail.endswith("complete header"):
            sock.shutdown(socket.SHUT_WR)
        assert closed_without_a_byte(sock)
    record = appliance.record_from("tls_server", proxy_port)
    assert record["peer"]["address"] == TRUSTED
    assert record["outcome"] == "PROXY header refused"
    assert record["detail"].startswith(detail)
    outcomes = appliance.stats()["listeners"]["tls_server"]["outcomes"]
    assert outcomes == {"PROXY header refused": 1}


def test_a_silent_trusted_proxy_is_cut_at_the_header_deadline(
    appliance: RunningAppliance,
) -> None:
    # The real figure (3 s, the spec's "at least 3 seconds to cover a TCP
    # retransmit"), as the README states it.
    with connect_from(TRUSTED, appliance.ports["https"]) as sock:
        proxy_port = sock.getsockname()[1]
        started = time.monotonic()
        assert closed_without_a_byte(sock)
        waited = time.monotonic() - started
    record = appliance.record_from("https", proxy_port)
    assert (record["outcome"], record["detail"]) == ("PROXY header refused",
                                                     "PROXY header: none within 3 s")
    assert 3.0 <= waited < 9.0


def test_a_local_command_is_a_health_check_answered_by_closing(
    appliance: RunningAppliance,
) -> None:
    # The LOCAL header exactly as HAProxy 2.6 sends it on its checks.
    local = V2_SIGNATURE + b"\x20\x00\x00\x00"
    for listener in ("tls_server", "connect_back", "http"):
        with connect_from(TRUSTED, appliance.ports[listener]) as sock:
            proxy_port = sock.getsockname()[1]
            sock.sendall(local)
            assert closed_without_a_byte(sock)
        record = appliance.record_from(listener, proxy_port)
        assert (record["outcome"], record["detail"]) == ("health check", "PROXY LOCAL")
    # HAProxy's layer-4 check may also just connect and close.
    with connect_from(TRUSTED, appliance.ports["tls_client"]) as sock:
        proxy_port = sock.getsockname()[1]
        sock.shutdown(socket.SHUT_WR)
        assert closed_without_a_byte(sock)
    record = appliance.record_from("tls_client", proxy_port)
    assert (record["outcome"], record["detail"]) == ("health check", "closed before a byte")
    assert appliance.stats()["outcomes"] == {"health check": 4}


def test_a_header_from_an_untrusted_address_is_never_believed(
    appliance: RunningAppliance,
) -> None:
    with connect_from(UNTRUSTED, appliance.ports["tls_server"]) as sock:
        sock.sendall(v2_header("203.0.113.50", 6000))
        # The header is taken as TLS and fails as TLS: with an alert.
        with pytest.raises(ssl.SSLError), client_context(*RESEARCHER).wrap_socket(sock) as tls:
            read_all(tls)
    with connect_from(UNTRUSTED, appliance.ports["http"]) as sock:
        source_port = sock.getsockname()[1]
        sock.sendall(b"PROXY TCP4 203.0.113.50 127.0.0.1 6001 8080\r\n"
                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(12) == b"HTTP/1.1 400"
    record = appliance.record_from("http", source_port)
    assert record["peer"]["address"] == UNTRUSTED
    records = appliance.records()
    assert not any(r.get("peer", {}).get("address") == "203.0.113.50" for r in records)
    assert appliance.stats()["limits_hit"] == {"untrusted_proxy_header": 2}


def test_caps_apply_to_the_clients_not_to_the_proxy() -> None:
    appliance = behind_proxy(max_connections_per_address=1)
    try:
        first = connect_from(TRUSTED, appliance.ports["tls_server"])
        first.sendall(v2_header("203.0.113.1", 1001))  # then stalls in the handshake
        wait_until(appliance, lambda: appliance.state.caps.by_address["203.0.113.1"] == 1)
        second = connect_from(TRUSTED, appliance.ports["tls_server"])
        second.sendall(v2_header("203.0.113.1", 1002))
        assert closed_without_a_byte(second)
        # Refused by the client's cap, counted, and summarised (never a line each).
        wait_until(appliance, lambda: appliance.state.counters.limits[
            "max_connections_per_address"] == 1)
        # Another client behind the same proxy is not affected by the first.
        with connect_from(TRUSTED, appliance.ports["tls_server"]) as third:
            third.sendall(v2_header("203.0.113.2", 1003))
            assert secret_through(third) == SECRET
        first.close()
        second.close()
    finally:
        appliance.stop()


def test_headers_awaited_at_once_are_bounded() -> None:
    appliance = behind_proxy(max_connections=2)
    try:
        silent = [connect_from(TRUSTED, appliance.ports["http"]) for _ in range(2)]
        wait_until(appliance, lambda: appliance.state.proxy_headers_pending == 2)
        with connect_from(TRUSTED, appliance.ports["http"]) as third:
            proxy_port = third.getsockname()[1]
            assert closed_without_a_byte(third)
        record = appliance.record_from("http", proxy_port)
        assert (record["outcome"], record["detail"]) == ("limit", "proxy_headers_pending")
        for sock in silent:
            sock.close()
    finally:
        appliance.stop()


def test_nobody_is_trusted_by_default() -> None:
    assert test_settings().trusted_proxies == ()
    assert not proxied.trusts((), "127.0.0.1")
    networks = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert proxied.trusts(networks, "10.1.2.3")
    assert proxied.trusts(networks, "::ffff:10.1.2.3")  # dual-stack listener
    assert proxied.trusts(networks, "::1")
    assert not proxied.trusts(networks, "11.0.0.1")
    assert not proxied.trusts(networks, "not an address")


def test_only_a_signature_at_the_start_is_counted() -> None:
    """The guard keeps the peer's first bytes however they were split; only
    either PROXY signature at their start counts."""
    cases: list[tuple[list[bytes], bool]] = [
        ([b"PRO", b"XY ", b"TCP4"], True),
        ([V2_SIGNATURE[:5], V2_SIGNATURE[5:]], True),
        ([b"POST / HTTP/1.1\r\n"], False),
        ([b"PROXY"], False),  # then the stream ended
        ([b"\x16\x03\x01"], False),
        ([b"\x16\x03\x01\x02\x00", b"PROXY TCP4"], False),  # not at the start
    ]
    for chunks, counted in cases:

        async def head(chunks: list[bytes] = chunks) -> bytes:
            stream = GuardedStream(_Chunks(chunks), "192.0.2.1",  # type: ignore[arg-type]
                                   deadlines=Deadlines(trio.current_time() + 30.0),
                                   rules=GuardRules(first_byte_timeout=2.0, step_timeout=5.0,
                                                    hello_bytes=100),
                                   preauth=None)
            with stream.deadlines.scope:
                while await stream.receive_some(100):
                    pass
            return stream.head

        assert proxied.began_with_proxy_header(trio.run(head)) is counted, chunks


class _Chunks:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""



# --- the setting, from serve's TOML to a running `pinata serve` ----------------------


def test_trusted_proxies_from_the_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'trusted_proxies = ["10.0.0.0/8", "::1", "192.0.2.7"]\n' + GOOD)
    assert load_config(path).trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("192.0.2.7/32"))
    assert load_config(write_config(tmp_path, GOOD)).trusted_proxies == ()


@pytest.mark.parametrize("value", [
    '"127.0.0.1"', '["127.0.0.1/8"]', '["localhost"]', "[1]", '["10.0.0.0/33"]',
    "[" + ", ".join(['"10.0.0.1"'] * 65) + "]",
])
def test_a_bad_trusted_proxies_entry_is_refused_by_name(tmp_path: Path, value: str) -> None:
    path = write_config(tmp_path, f"trusted_proxies = {value}\n" + GOOD)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.field == "trusted_proxies"


def test_pinata_serve_believes_the_proxy_its_config_trusts(tmp_path: Path) -> None:
    ports = "\n".join(f"{name} = 0" for name in LISTENER_NAMES)
    body = GOOD.split("[ports]")[0] + f"[ports]\n{ports}\n[credentials]" + \
        GOOD.split("[credentials]")[1]
    path = write_config(tmp_path, f'trusted_proxies = ["{TRUSTED}/32"]\n' + body)
    process = start(["serve", "--config", str(path)])
    try:
        assert process.stdout is not None
        bound = listening(process.stdout)
        with connect_from(TRUSTED, bound["tls_server"]) as sock:
            sock.sendall(b"PROXY TCP4 192.0.2.44 127.0.0.1 7777 10000\r\n")
            assert secret_through(sock) == b"the secret"
        record = json.loads(process.stdout.readline())
        written(json.dumps(record))
        assert record["peer"] == {"address": "192.0.2.44", "port": 7777}
        assert record["outcome"] == "secret released"
    finally:
        code, _, err = stop(process, signal.SIGTERM)
    assert code == 0, err


def test_pinata_toy_trusts_the_proxies_it_is_told(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["toy", "--trusted-proxy", "10.0.0.1/8"]) == 2
    assert "--trusted-proxy" in capsys.readouterr().err
    offset = free_offset()
    process = start(["toy", "--port-offset", str(offset), "--trusted-proxy", f"{TRUSTED}/32"])
    try:
        assert process.stdout is not None
        bound = listening(process.stdout)
        with connect_from(TRUSTED, bound["tls_server"]) as sock:
            sock.sendall(v2_header("192.0.2.45", 7778))
            assert secret_through(sock) == SECRET
        record = json.loads(process.stdout.readline())
        written(json.dumps(record))
        assert record["peer"] == {"address": "192.0.2.45", "port": 7778}
    finally:
        code, _, err = stop(process, signal.SIGINT)
    assert code == 0, err


def test_selftalk_announces_itself_when_its_own_address_is_a_trusted_proxy(
    appliance: RunningAppliance,
) -> None:
    report: dict[str, Any] = appliance.run_async(run_selftalk, appliance.state)
    assert report["both_released"] is True
    assert report["secret_crossed_relay_in_clear"] is False
    assert appliance.stats()["outcomes"] == {"secret released to itself": 2}


def test_the_guard_keeps_enough_of_the_first_bytes_for_either_signature() -> None:
    from pinata.appliance.guard import HEAD_BYTES
    from pinata.appliance.proxied import began_with_proxy_header
    from pinata.appliance.proxy_protocol import V1_PREFIX, V2_SIGNATURE

    assert max(len(V1_PREFIX), len(V2_SIGNATURE)) <= HEAD_BYTES
    assert began_with_proxy_header(V2_SIGNATURE[:HEAD_BYTES])
    assert not began_with_proxy_header(V2_SIGNATURE[:HEAD_BYTES - 1])
