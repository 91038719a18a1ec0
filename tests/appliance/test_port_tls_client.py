"""Ports 10001 (connect-back) and 10002 (the piñata as TLS client), against
Python's ssl and `openssl s_server` acting as the researcher's server."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bait_ca import forge
from tests.appliance.harness import (
    SECRET,
    TOY,
    RunningAppliance,
    listening_socket,
    read_all,
    server_context,
    test_settings,
    toy_path,
    write_pem,
)

pytestmark = pytest.mark.interop

RESEARCHER_SERVER = (toy_path("researcher-server.pem"), toy_path("researcher-server.key"))


def forged_server(tmp_path: Path) -> tuple[str, str]:
    forged = forge.rogue_ca_same_subject(TOY.anchor, "server")
    return write_pem(tmp_path, "forged-server", forged.pem_chain, forged.private_key)


class PythonServer:
    """Accepts one connection on `sock` and reads what the piñata sends."""

    def __init__(self, sock: socket.socket, cert: str, key: str) -> None:
        self.sock = sock
        self.context = server_context(cert, key)
        self.received = b""
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(15)
        try:
            raw, _ = self.sock.accept()
            with self.context.wrap_socket(raw, server_side=True) as tls:
                self.received = read_all(tls)
        except (OSError, ssl.SSLError) as exc:
            self.error = exc

    def join(self) -> bytes:
        self.thread.join(20)
        assert not self.thread.is_alive()
        return self.received


def knock(port: int) -> int:
    """Open and drop a connection to port 10001; our source port."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        source_port: int = sock.getsockname()[1]
        sock.recv(1)  # the piñata closes at once
    return source_port


@pytest.mark.parametrize("valid", [True, False], ids=["researcher", "forged"])
def test_connect_back_to_python_server(
    make_appliance: Callable[..., RunningAppliance], tmp_path: Path, valid: bool
) -> None:
    target = listening_socket()
    appliance = make_appliance(test_settings(connect_back_target=target.getsockname()[1]))
    cert, key = RESEARCHER_SERVER if valid else forged_server(tmp_path)
    server = PythonServer(target, cert, key)
    source_port = knock(appliance.ports["connect_back"])
    received = server.join()
    target.close()
    record = appliance.record_from("connect_back", source_port)
    if valid:
        assert received == SECRET, server.error
        assert record["outcome"] == "secret released"
    else:
        assert received == b""
        assert record["outcome"] == "alert sent"
        assert record["group"] == "X.509 failure"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
@pytest.mark.parametrize("valid", [True, False], ids=["researcher", "forged"])
def test_connect_back_to_openssl_server(
    make_appliance: Callable[..., RunningAppliance], tmp_path: Path, valid: bool
) -> None:
    probe = listening_socket()
    port = probe.getsockname()[1]
    probe.close()  # s_server binds it next; a tiny window another test could take
    appliance = make_appliance(test_settings(connect_back_target=port))
    cert, key = RESEARCHER_SERVER if valid else forged_server(tmp_path)
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-naccept", "1", "-tls1_3",
         "-cert", cert, "-key", key, "-CAfile", toy_path("anchor.pem"), "-Verify", "1"],
        # s_server ends the session when its stdin ends: keep it open.
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        assert server.stdout is not None
        banner = b""
        while b"ACCEPT" not in banner:
            line = server.stdout.readline()
            assert line, "openssl s_server did not start"
            banner += line
        source_port = knock(appliance.ports["connect_back"])
        record = appliance.record_from("connect_back", source_port)
        output, _ = server.communicate(timeout=20)
    finally:
        server.kill()
        server.wait()
    if valid:
        assert SECRET in output
        assert record["outcome"] == "secret released"
    else:
        assert SECRET not in output
        assert record["outcome"] == "alert sent"


@pytest.mark.parametrize("valid", [True, False], ids=["researcher", "forged"])
def test_port_10002_python_server_on_the_client_socket(
    appliance: RunningAppliance, tmp_path: Path, valid: bool
) -> None:
    cert, key = RESEARCHER_SERVER if valid else forged_server(tmp_path)
    context = server_context(cert, key)
    with socket.create_connection(("127.0.0.1", appliance.ports["tls_client"]), timeout=10) as raw:
        source_port = raw.getsockname()[1]
        received, error = b"", None
        try:
            with context.wrap_socket(raw, server_side=True) as tls:
                received = read_all(tls)
        except (OSError, ssl.SSLError) as exc:
            error = exc
    record = appliance.record_from("tls_client", source_port)
    if valid:
        assert received == SECRET, error
        assert record["outcome"] == "secret released"
        assert record["peer_chain"][0]["subject"] == "CN=toy researcher server"
    else:
        assert received == b""
        assert record["outcome"] == "alert sent"
        assert record["group"] == "X.509 failure"
