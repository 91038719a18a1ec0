"""The appliance over TLS 1.2, with the toy credentials: all three bounty ports
and the HTTPS page, against Python's ssl and `openssl s_client` held to TLS
1.2; every chain `pinata try --forge` can send refused over 1.2 with exactly
the alert it gets over 1.3; self-talk over either version."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bait_ca import toy as bait_ca_toy
from pinata.appliance import run_selftalk
from pinata.tls.config import Credentials
from pinata.tls.constants import TLS12, TLS13
from pinata.trial.command import FORGE_KINDS, forged_chain
from pinata.trial.play import Trial, TrialResult, play
from tests.appliance.harness import (
    SECRET,
    RunningAppliance,
    client_context,
    listening_socket,
    read_all,
    server_context,
    test_settings,
    toy_path,
    written,
)
from tests.appliance.test_port_tls_client import RESEARCHER_SERVER, forged_server, knock
from tests.appliance.test_port_tls_server import RESEARCHER

pytestmark = pytest.mark.interop

V12 = ssl.TLSVersion.TLSv1_2
V13 = ssl.TLSVersion.TLSv1_3


@pytest.fixture(scope="module")
def appliance() -> Iterator[RunningAppliance]:
    """The toy's settings (both versions), with validation budget enough for every
    forged chain from one address in a row."""
    running = RunningAppliance(test_settings(validation_cpu_per_second=100.0,
                                             validation_cpu_burst=100.0))
    yield running
    running.stop()


def python_client(port: int, cert: str | None = None, key: str | None = None,
                  version: ssl.TLSVersion = V12) -> tuple[bytes, str | None, int]:
    """What a Python client held to `version` receives (or the alert it gets), with
    its source port."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        source_port = raw.getsockname()[1]
        try:
            # The handshake runs in wrap_socket: a refusal may come there or at the read.
            with client_context(cert, key, version).wrap_socket(raw) as tls:
                return read_all(tls), None, source_port
        except ssl.SSLError as exc:
            return b"", str(exc), source_port


def test_port_10000_over_tls12_gives_the_secret(appliance: RunningAppliance) -> None:
    data, error, source_port = python_client(appliance.ports["tls_server"], *RESEARCHER)
    assert error is None and data == SECRET
    record = appliance.record_from("tls_server", source_port)
    assert record["outcome"] == "secret released" and record["version"] == "TLS 1.2"
    assert record["cipher_suite"].startswith("TLS_ECDHE_")
    assert any("TLS 1.2" in str(entry.values()) for entry in record["trace"])
    assert appliance.stats()["handshakes_by_version"].get("TLS 1.2", 0) >= 1


def test_port_10000_over_tls12_without_a_certificate_is_no_certificate(
    appliance: RunningAppliance,
) -> None:
    data, error, source_port = python_client(appliance.ports["tls_server"])
    assert data == b"" and error is not None and "HANDSHAKE_FAILURE" in error.upper()
    record = appliance.record_from("tls_server", source_port)
    assert (record["alert"], record["cause"]) == ("handshake_failure",
                                                  "client_certificate_missing_tls12")
    assert record["group"] == "no certificate" and record["version"] == "TLS 1.2"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_openssl_s_client_tls1_2_gets_the_secret(appliance: RunningAppliance) -> None:
    cert, key = RESEARCHER
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{appliance.ports['tls_server']}",
         "-tls1_2", "-quiet", "-ign_eof", "-CAfile", toy_path("anchor.pem"),
         "-cert", cert, "-key", key],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)
    assert SECRET in done.stdout, done.stderr


class PythonServer12:
    """A TLS 1.2-only Python server: accepts one connection on `sock` and reads
    what the piñata sends."""

    def __init__(self, sock: socket.socket, cert: str, key: str) -> None:
        self.context = server_context(cert, key, V12)
        self.sock = sock

    def serve(self) -> tuple[bytes, str | None]:
        self.sock.settimeout(15)
        raw, _ = self.sock.accept()
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                return read_all(tls), None
        except (OSError, ssl.SSLError) as exc:
            return b"", str(exc)


@pytest.mark.parametrize("valid", [True, False], ids=["researcher", "forged"])
def test_connect_back_to_a_tls12_server(
    make_appliance: Callable[..., RunningAppliance], tmp_path: Path, valid: bool
) -> None:
    target = listening_socket()
    running = make_appliance(test_settings(connect_back_target=target.getsockname()[1]))
    cert, key = RESEARCHER_SERVER if valid else forged_server(tmp_path)
    server = PythonServer12(target, cert, key)
    source_port = knock(running.ports["connect_back"])
    received, error = server.serve()
    target.close()
    record = running.record_from("connect_back", source_port)
    assert record["version"] == "TLS 1.2"
    if valid:
        assert received == SECRET, error
        assert record["outcome"] == "secret released"
    else:
        assert received == b"" and error is not None and "BAD_CERTIFICATE" in error.upper()
        assert (record["alert"], record["group"]) == ("bad_certificate", "X.509 failure")


@pytest.mark.parametrize("valid", [True, False], ids=["researcher", "forged"])
def test_port_10002_with_a_tls12_server_on_the_client_socket(
    appliance: RunningAppliance, tmp_path: Path, valid: bool
) -> None:
    cert, key = RESEARCHER_SERVER if valid else forged_server(tmp_path)
    context = server_context(cert, key, V12)
    with socket.create_connection(("127.0.0.1", appliance.ports["tls_client"]), timeout=10) as raw:
        source_port = raw.getsockname()[1]
        received, error = b"", None
        try:
            with context.wrap_socket(raw, server_side=True) as tls:
                received = read_all(tls)
        except ssl.SSLError as exc:
            error = str(exc)
    record = appliance.record_from("tls_client", source_port)
    assert record["version"] == "TLS 1.2"
    if valid:
        assert received == SECRET, error
        assert record["outcome"] == "secret released"
    else:
        assert received == b"" and error is not None and "BAD_CERTIFICATE" in error.upper()
        assert (record["alert"], record["group"]) == ("bad_certificate", "X.509 failure")


def test_the_https_page_over_tls12(appliance: RunningAppliance) -> None:
    connection = http.client.HTTPSConnection("127.0.0.1", appliance.ports["https"], timeout=10,
                                             context=client_context(version=V12))
    try:
        connection.request("GET", "/stats")
        response = connection.getresponse()
        body = response.read()
        written(body)
        assert response.status == 200
        assert connection.sock.version() == "TLSv1.2"
        source_port = connection.sock.getsockname()[1]
    finally:
        connection.close()
    record = appliance.record_from("https", source_port)
    assert record["outcome"] == "served" and record["version"] == "TLS 1.2"


def _try(appliance: RunningAppliance, port: int, credentials: Credentials,
         version: int) -> TrialResult:
    listener = {10000: "tls_server", 10002: "tls_client"}[port]
    return play(Trial(port=port, host="127.0.0.1",
                      port_offset=appliance.ports[listener] - port,
                      credentials=credentials, timeout=20.0, versions=(version,)))


# The one `--forge` kind that is no forgery: a good leaf under the toy CA followed by
# junk CAs bearing its name, which costs the path builder but must validate.
ACCEPTED_BY_DESIGN = {"junk_bag"}
# Kinds our engine cannot present, so `pinata try --forge` cannot send them either:
# why, instead of a skip (the validator's refusal of them is tested in tests/x509).
UNPLAYABLE = {"rsa1024_leaf": "Credentials refuses a key that can sign no TLS scheme"}
PLAYABLE = [kind for kind in FORGE_KINDS if kind not in UNPLAYABLE]


@pytest.mark.parametrize("kind", PLAYABLE)
def test_every_forged_chain_is_refused_over_tls12_as_over_tls13(
    appliance: RunningAppliance, kind: str
) -> None:
    toy = bait_ca_toy.load()
    for port, role in ((10000, "client"), (10002, "server")):
        forged = forged_chain(kind, toy.anchor, role)  # type: ignore[arg-type]
        credentials = Credentials(forged.chain, forged.private_key)
        over = {version: _try(appliance, port, credentials, version)
                for version in (TLS13, TLS12)}
        # Our side's trace names the version the hellos settled on.
        assert "TLS 1.2" in str(over[TLS12].trace) and "TLS 1.2" not in str(over[TLS13].trace)
        for result in over.values():
            if kind in ACCEPTED_BY_DESIGN:
                assert result.secret_received, (port, result)
            else:
                assert not result.secret_received
                assert result.alert_sent_by == "the piñata", (port, result)
        assert over[TLS12].alert == over[TLS13].alert, (port, over)


def test_selftalk_offering_both_negotiates_tls13(appliance: RunningAppliance) -> None:
    report: dict[str, Any] = appliance.run_async(run_selftalk, appliance.state)
    assert report["both_released"] is True
    assert {side["version"] for side in report["appliance"].values()} == {"TLS 1.3"}


def test_a_tls12_only_appliance_talks_to_itself_and_refuses_tls13(
    make_appliance: Callable[..., RunningAppliance],
) -> None:
    running = make_appliance(replace(test_settings(), tls_versions=(TLS12,)))
    report: dict[str, Any] = running.run_async(run_selftalk, running.state)
    assert report["both_released"] is True and report["secret_crossed_relay_in_clear"] is False
    assert {side["version"] for side in report["appliance"].values()} == {"TLS 1.2"}
    data, error, source_port = python_client(running.ports["tls_server"], *RESEARCHER,
                                             version=V13)
    assert data == b"" and error is not None and "PROTOCOL_VERSION" in error.upper()
    assert running.record_from("tls_server", source_port)["alert"] == "protocol_version"


def test_the_unplayable_kinds_are_refused_by_pinata_try_itself() -> None:
    toy = bait_ca_toy.load()
    assert set(UNPLAYABLE) < set(FORGE_KINDS)
    for kind in UNPLAYABLE:
        forged = forged_chain(kind, toy.anchor, "client")
        with pytest.raises(ValueError, match="can sign with no"):
            Credentials(forged.chain, forged.private_key)
