"""Our engine against GnuTLS's command line: `gnutls-cli` talks to our server,
`gnutls-serv` to our client, on loopback.

A priority string narrows GnuTLS to one suite, group or signature scheme;
both tools print a description of what was negotiated, and `gnutls-serv`
also names the signature each side made. `gnutls-serv` cannot be told an
address nor print an ephemeral port: it is started on port 0 and its IPv4
listening port is read from /proc. Skipped without Debian's gnutls-bin.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from pinata.tls.config import ClientConfig
from pinata.tls.connection import ClientConnection
from pinata.tls.constants import CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.errors import AlertDescription
from pinata.tls.events import HandshakeComplete, PeerClosed
from tests.tls.driver import Outcome
from tests.tls.interop.conftest import (
    GROUPS,
    PEER_TIMEOUT,
    SCHEMES,
    SUITES,
    OutputReader,
    Pki,
    authenticator,
    gnutls_cli,
    key_kind,
    listening_port,
    now,
    our_client,
    our_server,
    peer_process,
    require_tool,
    server_config,
    traced,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

GNUTLS_CIPHER = {
    CipherSuite.TLS_AES_128_GCM_SHA256: "AES-128-GCM",
    CipherSuite.TLS_AES_256_GCM_SHA384: "AES-256-GCM",
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: "CHACHA20-POLY1305",
}
GNUTLS_GROUP = {
    NamedGroup.x25519: "X25519",
    NamedGroup.secp256r1: "SECP256R1",
    NamedGroup.secp384r1: "SECP384R1",
}
GNUTLS_SIGN = {
    SignatureScheme.ecdsa_secp256r1_sha256: "ECDSA-SECP256R1-SHA256",
    SignatureScheme.ecdsa_secp384r1_sha384: "ECDSA-SECP384R1-SHA384",
    SignatureScheme.rsa_pss_rsae_sha256: "RSA-PSS-RSAE-SHA256",
    SignatureScheme.rsa_pss_rsae_sha384: "RSA-PSS-RSAE-SHA384",
    SignatureScheme.rsa_pss_rsae_sha512: "RSA-PSS-RSAE-SHA512",
    SignatureScheme.rsa_pss_pss_sha256: "RSA-PSS-SHA256",
    SignatureScheme.rsa_pss_pss_sha384: "RSA-PSS-SHA384",
    SignatureScheme.rsa_pss_pss_sha512: "RSA-PSS-SHA512",
    SignatureScheme.ed25519: "EdDSA-Ed25519",
}
_SIGN_PRIORITY = {s: "SIGN-" + n.upper() for s, n in GNUTLS_SIGN.items()}


def priority(
    suite: CipherSuite | None = None,
    group: NamedGroup | None = None,
    scheme: SignatureScheme | None = None,
) -> str:
    parts = ["NORMAL", "-VERS-ALL", "+VERS-TLS1.3"]
    if suite is not None:
        parts += ["-CIPHER-ALL", "+" + GNUTLS_CIPHER[suite]]
    if group is not None:
        parts += ["-GROUP-ALL", "+GROUP-" + GNUTLS_GROUP[group]]
    if scheme is not None:
        parts += ["-SIGN-ALL", "+" + _SIGN_PRIORITY[scheme]]
    return ":".join(parts)


def description(output: str) -> tuple[str, str, str]:
    """(group, signature, cipher) from "- Description: (TLS1.3-X.509)-(...)"."""
    found = re.search(
        r"Description: \(TLS1\.3-X\.509\)-\(ECDHE-(\S+?)\)-\((\S+?)\)-\((\S+?)\)", output
    )
    assert found is not None, output
    return found.group(1), found.group(2), found.group(3)


@pytest.fixture(autouse=True)
def _gnutls_installed() -> None:
    require_tool("gnutls-cli", "gnutls-bin")


# ---- gnutls-cli against our server -----------------------------------------


def converse_with_gnutls_cli(
    pki: Pki, prio: str, kind: str = "p256", **config: Any
) -> tuple[str, HandshakeComplete]:
    """gnutls-cli says ping, we answer pong; then gnutls-cli, told so by the
    end of its input, sends close_notify and we answer it (RFC 8446 §6.1)."""
    with (
        our_server(
            server_config(pki, kind, **config),
            send=b"pong\n",
            expect_before_send=b"ping\n",
            close=False,
        ) as (port, run),
        peer_process(gnutls_cli(pki, port, prio, kind)) as process,
    ):
        assert process.stdin is not None
        reader = OutputReader(process)
        process.stdin.write("ping\n")
        process.stdin.flush()
        reader.wait_for(lambda line: line.startswith("pong"))
        process.stdin.close()
        process.wait(PEER_TIMEOUT)
        output = reader.wait_closed()
    outcome = run.result()
    assert outcome.received == b"ping\n"
    assert outcome.closed_by_peer == PeerClosed(clean=True), output
    assert process.returncode == 0, output
    assert outcome.complete is not None
    return output, outcome.complete


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_gnutls_cli_each_suite(pki: Pki, suite: CipherSuite) -> None:
    output, complete = converse_with_gnutls_cli(pki, priority(suite=suite))
    assert complete.cipher_suite == suite
    assert description(output)[2] == GNUTLS_CIPHER[suite]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_gnutls_cli_each_group(pki: Pki, group: NamedGroup) -> None:
    output, complete = converse_with_gnutls_cli(pki, priority(group=group))
    assert complete.group == group
    assert description(output)[0] == GNUTLS_GROUP[group]


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_gnutls_cli_each_scheme(pki: Pki, scheme: SignatureScheme) -> None:
    output, complete = converse_with_gnutls_cli(
        pki, priority(scheme=scheme), key_kind(scheme), signature_schemes=(scheme,)
    )
    assert complete.signature_scheme == scheme
    assert complete.peer_signature_scheme == scheme
    assert description(output)[1] == GNUTLS_SIGN[scheme]


def test_gnutls_cli_hello_retry_request(pki: Pki) -> None:
    # GnuTLS sends shares for its first group of each kind (X25519, SECP256R1);
    # we take only P-384, so we must ask again (§4.1.4).
    output, complete = converse_with_gnutls_cli(pki, priority(), groups=(NamedGroup.secp384r1,))
    assert complete.group == NamedGroup.secp384r1
    assert description(output)[0] == "SECP384R1"


def test_gnutls_cli_without_certificate_gets_certificate_required(pki: Pki) -> None:
    with (
        our_server(server_config(pki), send=b"pong\n") as (port, run),
        peer_process(gnutls_cli(pki, port, priority(), client_kind=None)) as process,
    ):
        output, _ = process.communicate("ping\n", timeout=PEER_TIMEOUT)
    failure = run.result().failure
    assert failure is not None
    assert (failure.alert, failure.sent) == (AlertDescription.certificate_required, True)
    assert "Received alert [116]: Certificate is required" in output, output
    assert "pong" not in output


def test_gnutls_cli_key_update(pki: Pki) -> None:
    """gnutls-cli's ^rekey^ sends KeyUpdate(update_requested); we answer with
    ours (§4.6.3), and the ping and pong after it use the new keys."""
    with our_server(
        server_config(pki), send=b"pong\n", expect_before_send=b"ping\n", close=False
    ) as (port, run):
        args = [*gnutls_cli(pki, port, priority()), "--inline-commands"]
        with peer_process(args) as process:
            assert process.stdin is not None
            reader = OutputReader(process)
            reader.wait_for(lambda line: "Simple Client Mode" in line)
            process.stdin.write("^rekey^\n")
            process.stdin.flush()
            reader.wait_for(lambda line: "Rekey was completed" in line)
            process.stdin.write("ping\n")
            process.stdin.flush()
            reader.wait_for(lambda line: line.startswith("pong"))
            process.stdin.close()
            process.wait(PEER_TIMEOUT)
    outcome = run.result()
    assert outcome.received == b"ping\n"
    assert outcome.closed_by_peer == PeerClosed(clean=True)
    assert run.connection is not None
    assert [e.get("request_update") for e in traced(run.connection, "in", "KeyUpdate")] == [1]
    assert [e.get("request_update") for e in traced(run.connection, "out", "KeyUpdate")] == [0]


# ---- gnutls-serv against our client ----------------------------------------


def gnutls_serv(pki: Pki, prio: str, kind: str = "p256") -> list[str]:
    party = pki.party("server", kind)
    return [
        "gnutls-serv", "-p", "0", "--echo", "--require-client-cert", "--verify-client-cert",
        "--x509cafile", str(pki.ca_path), "--x509certfile", str(party.cert_path),
        "--x509keyfile", str(party.key_path), "--priority", prio,
    ]  # fmt: skip


def converse_with_gnutls_serv(
    pki: Pki, prio: str, kind: str = "p256", client_kind: str | None = "p256", **config: Any
) -> tuple[str, Outcome, ClientConnection]:
    """We say ping, the echo server says it back, we close; it answers."""
    credentials = pki.party("client", client_kind).credentials if client_kind else None
    connection = ClientConnection(
        ClientConfig(authenticate_server=authenticator(), credentials=credentials, **config),
        now=now(),
    )
    with peer_process(gnutls_serv(pki, prio, kind)) as process:
        reader = OutputReader(process)
        reader.wait_for(lambda line: "listening on IPv4" in line)
        outcome = our_client(
            listening_port(process.pid), connection, send=b"ping\n", expect_before_close=b"ping\n"
        )
        if outcome.complete is not None:
            reader.wait_for(lambda line: "Processing" in line or "Error" in line)
        else:
            reader.wait_for(lambda line: "Error" in line)
    output = reader.wait_closed()
    return output, outcome, connection


def gnutls_serv_summary(output: str) -> dict[str, str]:
    found = {
        "cipher": re.search(r"^- Cipher: (\S+)", output, re.M),
        "curve": re.search(r"Using curve: (\S+)", output),
        "server_signature": re.search(r"^- Server Signature: (\S+)", output, re.M),
        "client_signature": re.search(r"^- Client Signature: (\S+)", output, re.M),
    }
    return {key: m.group(1) for key, m in found.items() if m is not None}


def assert_clean(outcome: Outcome, output: str) -> None:
    assert outcome.received == b"ping\n", output
    assert outcome.closed_by_peer == PeerClosed(clean=True), output
    assert "Peer's certificate was NOT verified" not in output


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_gnutls_serv_each_suite(pki: Pki, suite: CipherSuite) -> None:
    output, outcome, _ = converse_with_gnutls_serv(pki, priority(suite=suite))
    assert_clean(outcome, output)
    assert outcome.complete is not None and outcome.complete.cipher_suite == suite
    assert gnutls_serv_summary(output)["cipher"] == GNUTLS_CIPHER[suite]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_gnutls_serv_each_group(pki: Pki, group: NamedGroup) -> None:
    # Our client sends an x25519 share only: the others take a HelloRetryRequest.
    output, outcome, connection = converse_with_gnutls_serv(pki, priority(group=group))
    assert_clean(outcome, output)
    assert outcome.complete is not None and outcome.complete.group == group
    assert gnutls_serv_summary(output)["curve"] == GNUTLS_GROUP[group]
    retried = bool(traced(connection, "in", "HelloRetryRequest"))
    assert retried == (group != NamedGroup.x25519)


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_gnutls_serv_each_scheme(pki: Pki, scheme: SignatureScheme) -> None:
    kind = key_kind(scheme)
    output, outcome, _ = converse_with_gnutls_serv(
        pki, priority(scheme=scheme), kind, kind, signature_schemes=(scheme,)
    )
    assert_clean(outcome, output)
    assert outcome.complete is not None
    assert outcome.complete.signature_scheme == scheme
    assert outcome.complete.peer_signature_scheme == scheme
    summary = gnutls_serv_summary(output)
    assert summary["server_signature"] == GNUTLS_SIGN[scheme]
    assert summary["client_signature"] == GNUTLS_SIGN[scheme]


def test_gnutls_serv_refuses_client_without_certificate(pki: Pki) -> None:
    output, outcome, _ = converse_with_gnutls_serv(pki, priority(), client_kind=None)
    assert outcome.failure is not None, output
    assert outcome.failure.alert == AlertDescription.certificate_required
    assert not outcome.failure.sent


def test_gnutls_serv_key_update(pki: Pki) -> None:
    credentials = pki.party("client", "p256").credentials
    connection = ClientConnection(
        ClientConfig(authenticate_server=authenticator(), credentials=credentials), now=now()
    )
    with peer_process(gnutls_serv(pki, priority())) as process:
        reader = OutputReader(process)
        reader.wait_for(lambda line: "listening on IPv4" in line)
        outcome = our_client(
            listening_port(process.pid),
            connection,
            send=b"ping\n",
            expect_before_close=b"ping\n",
            key_update=True,
        )
    assert_clean(outcome, reader.wait_closed())
    assert [e.get("request_update") for e in traced(connection, "out", "KeyUpdate")] == [1]
    assert [e.get("request_update") for e in traced(connection, "in", "KeyUpdate")] == [0]
