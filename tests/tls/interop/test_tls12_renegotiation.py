"""Renegotiation refused, against real peers that attempt it (RFC 5746 is
checked in the first handshake; no second handshake ever starts).

Our refusal is a warning no_renegotiation followed by close_notify (RFC
5246 §7.2.2, and what tlsfuzzer's test-renegotiation-disabled scripts
expect); `alert_for(Cause.renegotiation_refused)` is the one table's word
for it. Each peer command line is first shown to do a renegotiation
attempt against OpenSSL refusing it (`-no_renegotiation`), so a failure
here is ours.

Peers that can attempt it from the command line: `openssl s_client` (`R`)
and `gnutls-cli` (`^renegotiate^`) as clients, `openssl s_server` (`R`,
a HelloRequest) as a server. tlslite-ng and Python's `ssl` have no way to
renegotiate.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pinata.tls.config import ClientConfig
from pinata.tls.connection import ClientConnection
from pinata.tls.errors import Cause, alert_for
from pinata.tls.events import LocalFailure
from tests.tls.interop.conftest import (
    PEER_TIMEOUT,
    InThread,
    OutputReader,
    Pki,
    authenticator,
    gnutls_cli,
    now,
    our_client,
    our_server,
    peer_process,
    require_tool,
    server_config,
)
from tests.tls.interop.tls12 import (
    TLS12,
    gnutls_priority12,
    s_client12,
    s_server12,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

REFUSAL = alert_for(Cause.renegotiation_refused)


def renegotiating_client(
    args: list[str], command: str, answer: str, refused: str, server_closes: bool = True
) -> str:
    """A client that says ping, waits for `answer`, asks to renegotiate with
    `command` and waits to print `refused`. When `server_closes` (we do,
    after our warning) it must then exit by itself; otherwise it is killed
    (gnutls-cli retries after a warning for as long as the connection stays
    open, and OpenSSL's server keeps it open)."""
    with peer_process(args) as process:
        assert process.stdin is not None
        reader = OutputReader(process)
        process.stdin.write("ping\n")
        process.stdin.flush()
        reader.wait_for(lambda line: line.endswith(answer))
        process.stdin.write(command + "\n")
        process.stdin.flush()
        reader.wait_for(lambda line: refused in line)
        with contextlib.suppress(OSError):
            process.stdin.close()
        if not server_closes:
            process.kill()
        try:
            process.wait(PEER_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{args[0]} did not exit:\n{reader.text}")
        return reader.wait_closed()


@contextmanager
def openssl_refusing(pki: Pki) -> Iterator[int]:
    """s_server at TLS 1.2 that refuses renegotiation, as we do."""
    args = s_server12(pki, client_auth=None, extra=("-no_renegotiation",))
    with peer_process(args) as process:
        reader = OutputReader(process)
        accept = reader.wait_for(lambda line: line.startswith("ACCEPT"))
        yield int(accept.rsplit(":", 1)[1])


def s_client_args(pki: Pki, port: int) -> list[str]:
    return s_client12(pki, port, client_kind="p256")


def gnutls_cli_args(pki: Pki, port: int) -> list[str]:
    require_tool("gnutls-cli", "gnutls-bin")
    return [*gnutls_cli(pki, port, gnutls_priority12()), "--inline-commands"]


CLIENTS = {
    "openssl": (s_client_args, "R", "RENEGOTIATING", "no renegotiation"),
    "gnutls": (gnutls_cli_args, "^renegotiate^", "", "Received alert [100]"),
}


@pytest.mark.parametrize("name", CLIENTS)
def test_harness_client_renegotiates_against_openssl_refusing(pki: Pki, name: str) -> None:
    build, command, attempt, refused = CLIENTS[name]
    with openssl_refusing(pki) as port:
        output = renegotiating_client(
            build(pki, port), command, "gnip\n", refused, server_closes=False
        )
    assert attempt in output and refused in output, output


@pytest.mark.parametrize("name", CLIENTS)
def test_peer_client_renegotiation_is_refused(pki: Pki, name: str) -> None:
    build, command, attempt, refused = CLIENTS[name]
    with our_server(
        server_config(pki), send=b"pong\n", expect_before_send=b"ping\n", close=False
    ) as (port, run):
        output = renegotiating_client(build(pki, port), command, "pong\n", refused)
    outcome = run.result()
    assert outcome.complete is not None and outcome.complete.version == TLS12
    assert outcome.received == b"ping\n"
    failure = outcome.failure
    assert failure is not None, outcome.events
    assert failure.failure == LocalFailure(Cause.renegotiation_refused, failure.failure.detail)  # type: ignore[union-attr]
    assert (failure.alert, failure.sent) == (REFUSAL, True)
    assert attempt in output and refused in output, output


# ---- a HelloRequest from openssl s_server to our client -------------------------


@contextmanager
def s_server_asking_to_renegotiate(
    pki: Pki,
) -> Iterator[tuple[int, subprocess.Popen[str], OutputReader]]:
    """s_server at TLS 1.2 in its line mode (not -rev): what the client says
    is printed, and an `R` line on its input sends a HelloRequest."""
    args = [a for a in s_server12(pki, client_auth=None) if a != "-rev"]
    with peer_process(args) as process:
        reader = OutputReader(process)
        accept = reader.wait_for(lambda line: line.startswith("ACCEPT"))
        yield int(accept.rsplit(":", 1)[1]), process, reader


def ask_to_renegotiate(process: subprocess.Popen[str], reader: OutputReader) -> bool:
    reader.wait_for(lambda line: line == "ping\n")
    assert process.stdin is not None
    process.stdin.write("R\n")
    process.stdin.flush()
    return True


def test_harness_s_server_hello_request_against_openssl_refusing(pki: Pki) -> None:
    with s_server_asking_to_renegotiate(pki) as (port, process, reader):
        args = [*s_client12(pki, port, client_kind=None), "-no_renegotiation"]
        with peer_process(args) as client:
            assert client.stdin is not None
            client_output = OutputReader(client)
            client.stdin.write("ping\n")
            client.stdin.flush()
            ask_to_renegotiate(process, reader)
            client.wait(PEER_TIMEOUT)
        process.wait(PEER_TIMEOUT)
        output = reader.wait_closed()
    assert "SSL_do_handshake -> 1" in output, output
    assert "ERROR" in output, f"{output}\n{client_output.text}"


def test_peer_server_hello_request_is_refused(pki: Pki) -> None:
    connection = ClientConnection(
        ClientConfig(authenticate_server=authenticator(), server_name="localhost"), now=now()
    )
    with s_server_asking_to_renegotiate(pki) as (port, process, reader):
        asked = InThread(lambda: ask_to_renegotiate(process, reader))
        # s_server answers nothing: we talk until its HelloRequest ends us.
        outcome = our_client(port, connection, send=b"ping\n", expect_before_close=b"never")
        assert outcome.complete is not None, outcome.events
        assert asked.result()
        process.wait(PEER_TIMEOUT)
        output = reader.wait_closed()
    assert outcome.complete.version == TLS12
    failure = outcome.failure
    assert failure is not None, f"{outcome.events}\n{output}"
    assert failure.failure == LocalFailure(Cause.renegotiation_refused, failure.failure.detail)  # type: ignore[union-attr]
    assert (failure.alert, failure.sent) == (REFUSAL, True)
    assert "ERROR" in output, output
