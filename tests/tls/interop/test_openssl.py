"""Our engine against OpenSSL's command line: `openssl s_client` talks to our
server, `openssl s_server` to our client, on loopback.

Each test checks what both sides report: the suite, group and signature
scheme in our HandshakeComplete and in OpenSSL's printed summary, data both
ways, and close_notify both ways (RFC 8446 §6.1). OpenSSL names groups and
schemes its own way; the tables below translate.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pinata.tls.config import ClientConfig
from pinata.tls.connection import ClientConnection
from pinata.tls.constants import CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.errors import AlertDescription
from pinata.tls.events import HandshakeComplete, PeerClosed
from tests.tls import peers
from tests.tls.interop.conftest import (
    GROUPS,
    PEER_TIMEOUT,
    SCHEMES,
    SUITES,
    OutputReader,
    Pki,
    authenticator,
    key_kind,
    now,
    our_client,
    our_server,
    peer_process,
    server_config,
    traced,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

# -groups names, and how s_client prints the server's key share ("Server Temp Key").
OPENSSL_GROUP = {
    NamedGroup.x25519: ("X25519", "X25519"),
    NamedGroup.secp256r1: ("P-256", "ECDH, prime256v1"),
    NamedGroup.secp384r1: ("P-384", "ECDH, secp384r1"),
}


def openssl_signature(scheme: SignatureScheme) -> tuple[str, str | None]:
    """(signature type, digest) as OpenSSL prints them for `scheme`."""
    if scheme == SignatureScheme.ed25519:
        return "ed25519", None
    digest = scheme.name.rsplit("_", 1)[1].upper()
    return ("ECDSA" if scheme.name.startswith("ecdsa") else "RSA-PSS"), digest


def s_client(
    pki: Pki,
    port: int,
    *options: str,
    client_kind: str | None = "p256",
    ca_path: Path | None = None,
) -> list[str]:
    args = [
        "openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3",
        "-CAfile", str(ca_path or pki.ca_path), "-verify_return_error",
        "-servername", "localhost",
    ]  # fmt: skip
    if client_kind is not None:
        party = pki.party("client", client_kind)
        args += ["-cert", str(party.cert_path), "-key", str(party.key_path)]
    return args + list(options)


def run_s_client(args: list[str], stdin: str = "ping\n") -> str:
    """s_client with `stdin` as input; -ign_eof keeps it until the server closes."""
    with peer_process([*args, "-ign_eof"]) as process:
        output, _ = process.communicate(stdin, timeout=PEER_TIMEOUT)
    return output


def s_client_summary(output: str) -> dict[str, str]:
    found = {
        "cipher": re.search(r"Cipher is (\S+)", output),
        "temp_key": re.search(r"Server Temp Key: (.+?), \d+ bits", output),
        "sig_type": re.search(r"Peer signature type: (\S+)", output),
        "digest": re.search(r"Peer signing digest: (\S+)", output),
    }
    return {key: m.group(1) for key, m in found.items() if m is not None}


# ---- openssl s_client against our server -----------------------------------


def converse_with_s_client(
    pki: Pki,
    options: tuple[str, ...] = (),
    server_kind: str = "p256",
    client_kind: str = "p256",
    **config: Any,
) -> tuple[str, HandshakeComplete]:
    with our_server(
        server_config(pki, server_kind, **config), send=b"pong\n", expect_before_send=b"ping\n"
    ) as (port, run):
        output = run_s_client(s_client(pki, port, *options, client_kind=client_kind))
    outcome = run.result()
    assert outcome.received == b"ping\n", output
    assert "pong" in output
    # The server's close_notify made s_client stop; it answered with its own.
    assert outcome.closed_by_peer == PeerClosed(clean=True)
    assert outcome.complete is not None
    return output, outcome.complete


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_s_client_each_suite(pki: Pki, suite: CipherSuite) -> None:
    output, complete = converse_with_s_client(pki, ("-ciphersuites", suite.name))
    assert complete is not None and complete.cipher_suite == suite
    assert s_client_summary(output)["cipher"] == suite.name


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_s_client_each_group(pki: Pki, group: NamedGroup) -> None:
    name, printed = OPENSSL_GROUP[group]
    output, complete = converse_with_s_client(pki, ("-groups", name))
    assert complete is not None and complete.group == group
    assert s_client_summary(output)["temp_key"] == printed


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_s_client_each_scheme(pki: Pki, scheme: SignatureScheme) -> None:
    kind = key_kind(scheme)
    output, complete = converse_with_s_client(
        pki,
        ("-sigalgs", scheme.name),
        server_kind=kind,
        client_kind=kind,
        signature_schemes=(scheme,),
    )
    assert complete is not None
    assert complete.signature_scheme == scheme
    assert complete.peer_signature_scheme == scheme
    summary = s_client_summary(output)
    sig_type, digest = openssl_signature(scheme)
    assert summary["sig_type"] == sig_type
    assert summary.get("digest") == digest


def test_s_client_without_certificate_gets_certificate_required(pki: Pki) -> None:
    with our_server(server_config(pki), send=b"pong\n") as (port, run):
        output = run_s_client(s_client(pki, port, client_kind=None))
    failure = run.result().failure
    assert failure is not None
    assert (failure.alert, failure.sent) == (AlertDescription.certificate_required, True)
    assert "alert certificate required" in output
    assert "pong" not in output


def test_s_client_from_another_ca_gets_unknown_ca(pki: Pki) -> None:
    stranger, _ = peers.leaf("client", "p256", ca_label="Not The Pinata CA")
    cert, key = pki.directory / "stranger.pem", pki.directory / "stranger.key"
    cert.write_bytes(peers.cert_pem(stranger))
    key.write_bytes(peers.key_pem(stranger))
    with our_server(server_config(pki), send=b"pong\n") as (port, run):
        args = s_client(pki, port, "-cert", str(cert), "-key", str(key), client_kind=None)
        output = run_s_client(args)
    failure = run.result().failure
    assert failure is not None
    assert (failure.alert, failure.sent) == (AlertDescription.unknown_ca, True)
    assert "alert unknown ca" in output


def test_s_client_refusing_our_certificate_fails_us(pki: Pki) -> None:
    # s_client trusts another CA, so it refuses our chain with unknown_ca (§6.2).
    other_ca = pki.directory / "other-ca.pem"
    other_ca.write_bytes(peers.test_ca("Not The Pinata CA").pem)
    with our_server(server_config(pki), send=b"pong\n") as (port, run):
        output = run_s_client(s_client(pki, port, ca_path=other_ca))
    failure = run.result().failure
    assert failure is not None
    assert (failure.alert, failure.sent) == (AlertDescription.unknown_ca, False)
    assert "verify error" in output


def test_s_client_hello_retry_request(pki: Pki) -> None:
    # s_client sends a key share for its first group only; we accept only
    # P-384, so we must ask again (§4.1.4).
    output, complete = converse_with_s_client(
        pki, ("-groups", "X25519:P-384"), groups=(NamedGroup.secp384r1,)
    )
    assert complete is not None and complete.group == NamedGroup.secp384r1
    assert s_client_summary(output)["temp_key"] == "ECDH, secp384r1"


def test_s_client_key_update_both_ways(pki: Pki) -> None:
    """s_client's `K` command sends KeyUpdate(update_requested) with its next
    record; we answer in kind (§4.6.3) and also start one of our own."""
    with (
        our_server(
            server_config(pki), send=b"pong\n", expect_before_send=b"ping\n", key_update=True
        ) as (port, run),
        # Without -ign_eof s_client reads commands from stdin.
        peer_process(s_client(pki, port)) as process,
    ):
        assert process.stdin is not None
        reader = OutputReader(process)
        reader.wait_for(lambda line: line.startswith("Verify return code"))
        process.stdin.write("K\n")
        process.stdin.flush()
        reader.wait_for(lambda line: line.startswith("KEYUPDATE"))
        process.stdin.write("ping\n")
        process.stdin.flush()
        reader.wait_for(lambda line: line.startswith("pong"))
        process.wait(PEER_TIMEOUT)
        output = reader.wait_closed()
    outcome = run.result()
    connection = run.connection
    assert connection is not None
    assert outcome.received == b"ping\n", output
    assert outcome.closed_by_peer == PeerClosed(clean=True)
    updates_in = [e.get("request_update") for e in traced(connection, "in", "KeyUpdate")]
    updates_out = [e.get("request_update") for e in traced(connection, "out", "KeyUpdate")]
    # We asked (1) and answered s_client's request (0), in either order: its
    # request may arrive with its Finished, before our own goes out. Its
    # answer to ours (0) comes before or after its own request (1), or not
    # at all: OpenSSL keeps one pending KeyUpdate, and a request covers it.
    assert sorted(updates_out) == [0, 1], updates_out
    assert sorted(updates_in) in ([0, 1], [1]), updates_in


# ---- openssl s_server against our client -----------------------------------


def s_server(pki: Pki, *options: str, server_kind: str = "p256") -> list[str]:
    party = pki.party("server", server_kind)
    return [
        "openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-tls1_3",
        "-CAfile", str(pki.ca_path), "-cert", str(party.cert_path), "-key", str(party.key_path),
        "-Verify", "1", "-verify_return_error", "-rev", *options,
    ]  # fmt: skip


def client_connection(pki: Pki, kind: str | None = "p256", **config: Any) -> ClientConnection:
    credentials = pki.party("client", kind).credentials if kind is not None else None
    cfg = ClientConfig(
        authenticate_server=authenticator(),
        credentials=credentials,
        server_name="localhost",
        **config,
    )
    return ClientConnection(cfg, now=now())


def converse_with_s_server(
    args: list[str], connection: ClientConnection, **options: Any
) -> tuple[str, HandshakeComplete]:
    """Our client says ping; s_server -rev answers gnip; then both close."""
    with peer_process(args) as process:
        reader = OutputReader(process)
        accept = reader.wait_for(lambda line: line.startswith("ACCEPT"))
        port = int(accept.rsplit(":", 1)[1])
        outcome = our_client(
            port, connection, send=b"ping\n", expect_before_close=b"gnip", **options
        )
        try:
            process.wait(PEER_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"s_server did not finish:\n{reader.text}")
        output = reader.wait_closed()
    assert outcome.received == b"gnip\n", output
    assert outcome.closed_by_peer == PeerClosed(clean=True), output
    assert "CONNECTION CLOSED" in output
    assert outcome.complete is not None
    return output, outcome.complete


def s_server_summary(output: str) -> dict[str, str]:
    found = {
        "cipher": re.search(r"^Ciphersuite: (\S+)", output, re.M),
        "sig_type": re.search(r"^Signature type: (\S+)", output, re.M),
        "digest": re.search(r"^Hash used: (\S+)", output, re.M),
    }
    return {key: m.group(1) for key, m in found.items() if m is not None}


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_s_server_each_suite(pki: Pki, suite: CipherSuite) -> None:
    output, complete = converse_with_s_server(
        s_server(pki, "-ciphersuites", suite.name), client_connection(pki)
    )
    assert complete is not None and complete.cipher_suite == suite
    assert s_server_summary(output)["cipher"] == suite.name


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_s_server_each_group(pki: Pki, group: NamedGroup) -> None:
    # s_server prints no group; it is given only this one, so only this one can work.
    _, complete = converse_with_s_server(
        s_server(pki, "-groups", OPENSSL_GROUP[group][0]),
        client_connection(pki, groups=(group,), key_share_groups=(group,)),
    )
    assert complete is not None and complete.group == group


def test_s_server_hello_retry_request(pki: Pki) -> None:
    connection = client_connection(pki)  # one key share: x25519
    _, complete = converse_with_s_server(s_server(pki, "-groups", "P-384"), connection)
    assert complete is not None and complete.group == NamedGroup.secp384r1
    assert traced(connection, "in", "HelloRetryRequest")


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_s_server_each_scheme(pki: Pki, scheme: SignatureScheme) -> None:
    kind = key_kind(scheme)
    output, complete = converse_with_s_server(
        s_server(pki, "-sigalgs", scheme.name, "-client_sigalgs", scheme.name, server_kind=kind),
        client_connection(pki, kind, signature_schemes=(scheme,)),
    )
    assert complete is not None
    assert complete.signature_scheme == scheme
    assert complete.peer_signature_scheme == scheme
    summary = s_server_summary(output)
    sig_type, digest = openssl_signature(scheme)
    assert summary["sig_type"] == sig_type
    assert summary["digest"] == (digest or "UNDEF")


def test_s_server_refuses_client_without_certificate(pki: Pki) -> None:
    with peer_process(s_server(pki)) as process:
        reader = OutputReader(process)
        port = int(reader.wait_for(lambda line: line.startswith("ACCEPT")).rsplit(":", 1)[1])
        outcome = our_client(port, client_connection(pki, None), send=b"ping\n")
        process.wait(PEER_TIMEOUT)
        output = reader.wait_closed()
    assert outcome.failure is not None
    assert outcome.failure.alert == AlertDescription.certificate_required
    assert not outcome.failure.sent
    assert "peer did not return a certificate" in output


def test_s_server_key_update(pki: Pki) -> None:
    connection = client_connection(pki)
    converse_with_s_server(s_server(pki), connection, key_update=True)
    # s_server decrypted our ping under the updated keys, and answered our
    # request with a KeyUpdate of its own before its reply (§4.6.3).
    assert [e.get("request_update") for e in traced(connection, "out", "KeyUpdate")] == [1]
    assert [e.get("request_update") for e in traced(connection, "in", "KeyUpdate")] == [0]
