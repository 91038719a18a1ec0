"""Two appliances behind a real HAProxy (TCP mode, PROXY protocol v2), run
with `deploy/haproxy.cfg` itself on loopback.

Clients connect from distinct loopback addresses (127.0.0.2, 127.0.0.3, ...)
to HAProxy, which relays to the appliances from 127.0.0.1, the one address
they trust. What must hold: the secret is released on all three ports and
the logs name the real client; forged chains are refused; the connect-back
dials the real client, not HAProxy; per-address caps count the real
clients; HAProxy's health checks are LOCAL commands answered by closing;
and a header sent straight to an appliance by anyone else is not believed.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from bait_ca import forge
from pinata.appliance.proxy_protocol import V2_SIGNATURE
from pinata.appliance.settings import LISTENER_NAMES, Limits
from tests.appliance.harness import (
    SECRET,
    TOY,
    RunningAppliance,
    client_context,
    free_port,
    read_all,
    server_context,
    test_settings,
    toy_path,
    write_pem,
)

# Debian puts it in /usr/sbin, which a non-root PATH may lack.
HAPROXY = shutil.which("haproxy", path=os.pathsep.join(
    (os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin")))
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(HAPROXY is None,
                       reason="haproxy is not installed (make test installs it as root on Debian)"),
]

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"
RESEARCHER_CLIENT = (toy_path("researcher-client.pem"), toy_path("researcher-client.key"))
RESEARCHER_SERVER = (toy_path("researcher-server.pem"), toy_path("researcher-server.key"))
PROXY = "127.0.0.1"
PROBE = "127.0.0.254"
# Both appliances count at most this many connections per client address.
PER_ADDRESS = 2


@dataclass
class Deployment:
    appliances: tuple[RunningAppliance, RunningAppliance]
    front: dict[str, int]
    connect_back_target: int

    def records(self) -> list[dict[str, Any]]:
        return [r for a in self.appliances for r in a.records() if "listener" in r]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool],
                 timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records():
                if predicate(record):
                    return record
            time.sleep(0.02)
        raise AssertionError(f"no such record; latest: {self.records()[-4:]}")

    def record_of(self, listener: str, client: tuple[str, int]) -> dict[str, Any]:
        return self.wait_for(lambda r: r["listener"] == listener and r["peer"] == {
            "address": client[0], "port": client[1]})


def _wait_for_listeners(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """HAProxy binds every listener before serving any: one answering is enough.
    The probe is relayed like any client, from an address no test uses."""
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, f"haproxy exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"haproxy never listened: {log.read_text()}"
        try:
            connect_from(PROBE, port).close()
            return
        except OSError:
            time.sleep(0.05)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    target = free_port()
    settings = replace(
        test_settings(connect_back_target=target),
        limits=replace(Limits(), max_connections_per_address=PER_ADDRESS),
        trusted_proxies=(ipaddress.ip_network(f"{PROXY}/32"),),
    )
    appliances = (RunningAppliance(settings), RunningAppliance(settings))
    front = {name: free_port() for name in LISTENER_NAMES}
    env = dict(os.environ, PINATA_FRONT_ADDRESS=PROXY, PINATA_A_ADDRESS=PROXY,
               PINATA_B_ADDRESS=PROXY)
    for name in LISTENER_NAMES:
        env[f"PINATA_FRONT_{name.upper()}"] = str(front[name])
        for side, appliance in zip("AB", appliances, strict=True):
            env[f"PINATA_{side}_{name.upper()}"] = str(appliance.ports[name])
    log = tmp_path_factory.mktemp("haproxy") / "haproxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(HAPROXY), "-f", str(CONFIG), "-db"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for_listeners(process, front["http"], log)
        yield Deployment(appliances, front, target)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for appliance in appliances:
            appliance.stop()


def connect_from(source: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(15)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def forged(tmp_path: Path, role: str) -> tuple[str, str]:
    chain = forge.rogue_ca_same_subject(TOY.anchor, role)
    return write_pem(tmp_path, f"forged-{role}", chain.pem_chain, chain.private_key)


def test_the_configuration_is_valid() -> None:
    result = subprocess.run([str(HAPROXY), "-c", "-f", str(CONFIG)], capture_output=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_port_10000_releases_to_each_real_client_on_both_appliances(
    deployment: Deployment,
) -> None:
    served_by: set[int] = set()
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
        with connect_from(source, deployment.front["tls_server"]) as raw:
            client = raw.getsockname()
            with client_context(*RESEARCHER_CLIENT).wrap_socket(raw) as tls:
                assert read_all(tls) == SECRET
        record = deployment.record_of("tls_server", client)
        assert record["outcome"] == "secret released"
        served_by.update(i for i, a in enumerate(deployment.appliances)
                         if record in a.records())
    # Round robin over two appliances: four clients reach both.
    assert served_by == {0, 1}


def test_port_10000_refuses_a_forged_chain(deployment: Deployment, tmp_path: Path) -> None:
    with connect_from("127.0.0.6", deployment.front["tls_server"]) as raw:
        client = raw.getsockname()
        with pytest.raises(ssl.SSLError), \
                client_context(*forged(tmp_path, "client")).wrap_socket(raw) as tls:
            read_all(tls)
    record = deployment.record_of("tls_server", client)
    assert (record["outcome"], record["alert"]) == ("alert sent", "bad_certificate")


@pytest.mark.parametrize("valid", [True, False], ids=["researcher", "forged"])
def test_port_10002_the_appliance_is_the_client_on_the_relayed_connection(
    deployment: Deployment, tmp_path: Path, valid: bool
) -> None:
    cert, key = RESEARCHER_SERVER if valid else forged(tmp_path, "server")
    source = "127.0.0.7" if valid else "127.0.0.8"
    with connect_from(source, deployment.front["tls_client"]) as raw:
        client = raw.getsockname()
        received = b""
        try:
            with server_context(cert, key).wrap_socket(raw, server_side=True) as tls:
                received = read_all(tls)
        except (ssl.SSLError, OSError):
            assert not valid
    record = deployment.record_of("tls_client", client)
    if valid:
        assert received == SECRET and record["outcome"] == "secret released"
    else:
        assert received == b"" and record["outcome"] == "alert sent"


class TargetServer:
    """Port 40001 (shifted) of one loopback address: takes one TLS connection."""

    def __init__(self, address: str, port: int, cert: str, key: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(4)
        self.sock.settimeout(15)
        self.context = server_context(cert, key)

    def receive(self) -> tuple[bytes, str]:
        raw, (peer, _) = self.sock.accept()
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                return read_all(tls), peer
        except (ssl.SSLError, OSError):
            return b"", peer

    def nothing_pending(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.accept()[0].close()
        except BlockingIOError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("valid", [True, False], ids=["researcher", "forged"])
def test_port_10001_connects_back_to_the_real_client(
    deployment: Deployment, tmp_path: Path, valid: bool
) -> None:
    cert, key = RESEARCHER_SERVER if valid else forged(tmp_path, "server")
    source = "127.0.0.9" if valid else "127.0.0.10"
    player = TargetServer(source, deployment.connect_back_target, cert, key)
    # HAProxy's own address listens too: nothing may arrive there.
    decoy = TargetServer(PROXY, deployment.connect_back_target, cert, key)
    try:
        with connect_from(source, deployment.front["connect_back"]) as raw:
            client = raw.getsockname()
            assert raw.recv(1) == b""  # accept and close
        received, dialled_from = player.receive()
        record = deployment.record_of("connect_back", client)
        assert decoy.nothing_pending()
    finally:
        player.close()
        decoy.close()
    if valid:
        assert received == SECRET and record["outcome"] == "secret released"
    else:
        assert received == b"" and record["outcome"] == "alert sent"
    # The appliance dials from its own host, not through HAProxy.
    assert ipaddress.ip_address(dialled_from).is_loopback


def test_per_address_caps_count_the_real_clients(deployment: Deployment) -> None:
    # Stalled handshakes from one client, spread round robin: the appliance
    # that gets a third one refuses it; another client is served meanwhile
    # (were the cap the proxy's, 127.0.0.1's, it would be refused too).
    def refused() -> int:
        return sum(a.stats()["limits_hit"].get("max_connections_per_address", 0)
                   for a in deployment.appliances)

    before = refused()
    stalled = [connect_from("127.0.0.11", deployment.front["tls_server"])
               for _ in range(2 * PER_ADDRESS + 1)]
    try:
        deadline = time.monotonic() + 10
        while refused() == before:
            assert time.monotonic() < deadline, "the client's cap never refused"
            time.sleep(0.05)
        with connect_from("127.0.0.12", deployment.front["tls_server"]) as raw, \
                client_context(*RESEARCHER_CLIENT).wrap_socket(raw) as tls:
            assert read_all(tls) == SECRET
    finally:
        for sock in stalled:
            sock.close()
    assert refused() == before + 1


def test_web_page_through_haproxy(deployment: Deployment) -> None:
    with connect_from("127.0.0.13", deployment.front["http"]) as sock:
        client = sock.getsockname()
        sock.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 ")
    assert deployment.record_of("http", client)["outcome"] == "served"


def test_a_header_sent_straight_to_an_appliance_is_not_believed(
    deployment: Deployment,
) -> None:
    appliance = deployment.appliances[0]
    forged_client = ipaddress.IPv4Address("203.0.113.66").packed
    block = forged_client + ipaddress.IPv4Address(PROXY).packed + b"\x1f\x90\x27\x10"
    header = V2_SIGNATURE + b"\x21\x11" + len(block).to_bytes(2, "big") + block
    before = appliance.stats()["limits_hit"].get("untrusted_proxy_header", 0)
    with connect_from("127.0.0.14", appliance.ports["tls_server"]) as raw:
        client = raw.getsockname()
        raw.sendall(header)
        with pytest.raises(ssl.SSLError), \
                client_context(*RESEARCHER_CLIENT).wrap_socket(raw) as tls:
            read_all(tls)
    record = appliance.record_from("tls_server", client[1])
    assert record["peer"]["address"] == "127.0.0.14"
    assert record["outcome"] == "alert sent"
    assert appliance.stats()["limits_hit"]["untrusted_proxy_header"] == before + 1
    assert not [r for r in deployment.records() if r["peer"]["address"] == "203.0.113.66"]
