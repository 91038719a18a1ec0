"""Our client against `openssl s_server -tls1_2` on loopback: each suite,
each group, client authentication (`-Verify`), and a HelloRequest (s_server's
`R` command), which we refuse."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from pinata.tls.config import ClientConfig
from pinata.tls.connection import ClientConnection
from pinata.tls.constants import TLS12, CipherSuite, NamedGroup
from pinata.tls.errors import AlertDescription, Cause
from pinata.tls.events import HandshakeComplete, LocalFailure, PeerClosed
from tests.tls.driver import run
from tests.tls.interop.conftest import (
    PEER_TIMEOUT,
    OutputReader,
    authenticator,
    now,
    our_client,
    peer_process,
    require_tool,
)
from tests.tls.peers import leaf
from tests.tls.tls12_client_peers import (
    OPENSSL_GROUP_NAMES,
    OPENSSL_SUITE_NAMES,
    write_server_files,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

SUITES = tuple(CipherSuite(s) for s in OPENSSL_SUITE_NAMES)
GROUPS = (NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1)


@pytest.fixture(autouse=True)
def _openssl() -> None:
    require_tool("openssl", "openssl")


def s_server(directory: Path, kind: str, *options: str) -> list[str]:
    ca, cert, key = write_server_files(directory, kind)
    return [
        "openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-tls1_2",
        "-CAfile", str(ca), "-cert", str(cert), "-key", str(key), *options,
    ]  # fmt: skip


def client(kind: str | None = None, **config: object) -> ClientConnection:
    credentials = leaf("client", kind)[0] if kind is not None else None
    cfg = ClientConfig(
        authenticate_server=authenticator(),
        credentials=credentials,
        server_name="localhost",
        **config,  # type: ignore[arg-type]
    )
    return ClientConnection(cfg, now=now())


def port_of(reader: OutputReader) -> int:
    return int(reader.wait_for(lambda line: line.startswith("ACCEPT")).rsplit(":", 1)[1])


def converse(args: list[str], connection: ClientConnection) -> tuple[str, HandshakeComplete]:
    """Our client says ping; s_server -rev answers gnip; then both close."""
    with peer_process([*args, "-rev"]) as process:
        reader = OutputReader(process)
        outcome = our_client(
            port_of(reader), connection, send=b"ping\n", expect_before_close=b"gnip"
        )
        try:
            process.wait(PEER_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"s_server did not finish:\n{reader.text}")
        output = reader.wait_closed()
    assert outcome.received == b"gnip\n", output
    assert outcome.closed_by_peer == PeerClosed(clean=True), output
    assert outcome.complete is not None, outcome.events
    assert outcome.complete.version == TLS12
    return output, outcome.complete


def cipher_line(output: str) -> str:
    found = re.search(r"^Ciphersuite: (\S+)", output, re.M)
    assert found, output
    return found.group(1)


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_each_suite(tmp_path: Path, suite: CipherSuite) -> None:
    kind = "rsa2048" if "_RSA_" in suite.name else "p256"
    output, complete = converse(s_server(tmp_path, kind), client(cipher_suites_tls12=(suite,)))
    assert complete.cipher_suite == suite
    assert cipher_line(output) == OPENSSL_SUITE_NAMES[suite]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_each_group(tmp_path: Path, group: NamedGroup) -> None:
    # We offer every group; s_server may use only this one.
    args = s_server(tmp_path, "p256", "-groups", OPENSSL_GROUP_NAMES[group])
    _, complete = converse(args, client())
    assert complete.group == group


@pytest.mark.parametrize("kind", ["p256", "rsa2048", "ed25519"])
def test_client_certificate_verified(tmp_path: Path, kind: str) -> None:
    args = s_server(tmp_path, "p384", "-Verify", "1", "-verify_return_error")
    output, complete = converse(args, client(kind))
    assert complete.signature_scheme is not None
    assert f"depth=0 CN = pinata test client {kind}" in output


def test_without_certificate_s_server_refuses(tmp_path: Path) -> None:
    args = s_server(tmp_path, "p256", "-Verify", "1", "-verify_return_error")
    with peer_process(args) as process:
        reader = OutputReader(process)
        outcome = our_client(port_of(reader), client(None), send=b"ping\n")
        process.wait(PEER_TIMEOUT)
        output = reader.wait_closed()
    assert outcome.failure is not None and not outcome.failure.sent
    assert outcome.failure.alert == AlertDescription.handshake_failure
    assert "peer did not return a certificate" in output


def test_hello_request_is_refused(tmp_path: Path) -> None:
    # RFC 5746 §4.2 lets a client ignore a HelloRequest or answer with a
    # no_renegotiation warning; we send that warning, then close_notify, and
    # end the connection (RFC 5246 §7.2.2; the one table in errors.py).
    with peer_process(s_server(tmp_path, "p256")) as process:
        reader = OutputReader(process)
        port = port_of(reader)

        def renegotiate() -> None:
            reader.wait_for(lambda line: line.startswith("CIPHER is"))
            assert process.stdin is not None
            process.stdin.write("R\n")
            process.stdin.flush()

        asker = threading.Thread(target=renegotiate, daemon=True)
        asker.start()
        connection = client()
        sock = socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT)
        outcome = run(sock, connection, timeout=PEER_TIMEOUT)
        asker.join(PEER_TIMEOUT)
    assert outcome.complete is not None and outcome.complete.version == TLS12
    assert outcome.failure is not None
    failure = outcome.failure.failure
    assert isinstance(failure, LocalFailure), failure
    assert failure.cause == Cause.renegotiation_refused
    assert failure.alert == AlertDescription.no_renegotiation
    alerts = [e["what"] for e in connection.trace.to_json() if e["kind"] == "alert_out"]
    assert alerts == ["no_renegotiation"]
