"""Our engine against Python's `ssl` module (OpenSSL 3.0 in this process).

`ssl` offers no way to choose TLS 1.3 suites, groups or signature schemes,
so our side narrows the choice and `ssl` must follow. It reports the suite
and the peer's certificate, but neither the group nor the scheme: for those,
our HandshakeComplete is the witness. Both sides end with close_notify;
`suppress_ragged_eofs=False` makes a bare EOF an error on the `ssl` side.
"""

from __future__ import annotations

import socket
import ssl
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
    InThread,
    Pki,
    authenticator,
    key_kind,
    now,
    our_client,
    our_server,
    server_config,
    traced,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

# What our side signs with when `ssl` offers everything: our first choice
# for the key (pinata.tls.signatures), SHA-256 for both kinds of RSA key.
OUR_CHOICE = {
    "p256": SignatureScheme.ecdsa_secp256r1_sha256,
    "p384": SignatureScheme.ecdsa_secp384r1_sha384,
    "rsa2048": SignatureScheme.rsa_pss_rsae_sha256,
    "rsapss": SignatureScheme.rsa_pss_pss_sha256,
    "ed25519": SignatureScheme.ed25519,
}


# ---- ssl as client, our server ---------------------------------------------


def client_context(pki: Pki, kind: str | None = "p256") -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cafile=str(pki.ca_path))
    if kind is not None:
        party = pki.party("client", kind)
        context.load_cert_chain(str(party.cert_path), str(party.key_path))
    return context


def ssl_client(
    context: ssl.SSLContext, port: int, listen_first: bool = False
) -> tuple[str | None, bytes, bytes]:
    """(suite, server's reply, what came after it) then close_notify via unwrap."""
    with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as raw:
        tls = context.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        cipher = tls.cipher()
        if listen_first:
            # A TLS 1.3 client finishes before the server judges its
            # certificate (§4.4.2.4): the verdict comes as the next record.
            tls.recv(100)
        tls.sendall(b"ping\n")
        reply = tls.recv(100)
        after = tls.recv(100)  # b"": the server's close_notify
        tls.unwrap()
        return (cipher[0] if cipher else None), reply, after


def converse_with_ssl_client(
    pki: Pki, server_kind: str = "p256", client_kind: str = "p256", **config: Any
) -> tuple[str | None, HandshakeComplete]:
    with our_server(
        server_config(pki, server_kind, **config), send=b"pong\n", expect_before_send=b"ping\n"
    ) as (port, run):
        suite, reply, after = ssl_client(client_context(pki, client_kind), port)
    outcome = run.result()
    assert (reply, after) == (b"pong\n", b"")
    assert outcome.received == b"ping\n"
    assert outcome.closed_by_peer == PeerClosed(clean=True)
    assert outcome.complete is not None
    return suite, outcome.complete


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_ssl_client_each_suite(pki: Pki, suite: CipherSuite) -> None:
    reported, complete = converse_with_ssl_client(pki, cipher_suites=(suite,))
    assert complete is not None and complete.cipher_suite == suite
    assert reported == suite.name


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_ssl_client_each_group(pki: Pki, group: NamedGroup) -> None:
    # ssl sends an x25519 share only: the others go through HelloRetryRequest.
    with our_server(
        server_config(pki, groups=(group,)), send=b"pong\n", expect_before_send=b"ping\n"
    ) as (port, run):
        _, reply, _ = ssl_client(client_context(pki), port)
    complete = run.result().complete
    assert reply == b"pong\n"
    assert complete is not None and complete.group == group
    assert run.connection is not None
    retried = bool(traced(run.connection, "out", "HelloRetryRequest"))
    assert retried == (group != NamedGroup.x25519)


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_ssl_client_each_scheme(pki: Pki, scheme: SignatureScheme) -> None:
    # ssl's CertificateVerify is held to `scheme` by our CertificateRequest.
    kind = key_kind(scheme)
    _, complete = converse_with_ssl_client(pki, kind, kind, signature_schemes=(scheme,))
    assert complete is not None
    assert complete.peer_signature_scheme == scheme
    assert complete.signature_scheme == OUR_CHOICE[kind]


def test_ssl_client_without_certificate_gets_certificate_required(pki: Pki) -> None:
    with (
        our_server(server_config(pki), send=b"pong\n") as (port, run),
        pytest.raises(ssl.SSLError) as raised,
    ):
        ssl_client(client_context(pki, None), port, listen_first=True)
    assert raised.value.reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    failure = run.result().failure
    assert failure is not None
    assert (failure.alert, failure.sent) == (AlertDescription.certificate_required, True)


def test_ssl_client_https_page_without_client_auth(pki: Pki) -> None:
    # The web page's HTTPS: no CertificateRequest, so no client certificate.
    reported, complete = converse_with_ssl_client(pki, client_auth=False)
    assert complete is not None and complete.peer is None
    assert complete.peer_signature_scheme is None
    assert reported in {s.name for s in SUITES}


# ---- ssl as server, our client ---------------------------------------------


def server_context(pki: Pki, kind: str = "p256") -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(pki.ca_path))
    party = pki.party("server", kind)
    context.load_cert_chain(str(party.cert_path), str(party.key_path))
    return context


def ssl_server(context: ssl.SSLContext, listener: socket.socket) -> tuple[str | None, str, bytes]:
    """(suite, client's subject, what it said); answers pong, closes cleanly."""
    raw, _ = listener.accept()
    raw.settimeout(PEER_TIMEOUT)
    with context.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False) as tls:
        cipher = tls.cipher()
        peer = tls.getpeercert() or {}
        subject = {k: v for rdn in peer.get("subject", ()) for k, v in rdn}  # type: ignore[str-unpack]
        said = tls.recv(100)
        tls.sendall(b"pong\n")
        assert tls.recv(100) == b""  # the client's close_notify
        tls.unwrap()
        return (cipher[0] if cipher else None), str(subject.get("commonName")), said


def converse_with_ssl_server(
    pki: Pki, server_kind: str = "p256", client_kind: str | None = "p256", **config: Any
) -> tuple[tuple[str | None, str, bytes], Outcome, ClientConnection]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(PEER_TIMEOUT)
    with listener:
        server = InThread(lambda: ssl_server(server_context(pki, server_kind), listener))
        credentials = pki.party("client", client_kind).credentials if client_kind else None
        connection = ClientConnection(
            ClientConfig(
                authenticate_server=authenticator(),
                credentials=credentials,
                **config,
            ),
            now=now(),
        )
        outcome = our_client(
            listener.getsockname()[1], connection, send=b"ping\n", expect_before_close=b"pong\n"
        )
        reported = server.result()
    assert outcome.complete is not None
    return reported, outcome, connection


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_ssl_server_each_suite(pki: Pki, suite: CipherSuite) -> None:
    reported, outcome, _ = converse_with_ssl_server(pki, cipher_suites=(suite,))
    assert reported == (suite.name, "pinata test client p256", b"ping\n")
    assert outcome.complete is not None and outcome.complete.cipher_suite == suite
    assert outcome.received == b"pong\n"
    assert outcome.closed_by_peer == PeerClosed(clean=True)


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_ssl_server_each_group(pki: Pki, group: NamedGroup) -> None:
    _, outcome, connection = converse_with_ssl_server(
        pki, groups=(group,), key_share_groups=(group,)
    )
    assert outcome.complete is not None and outcome.complete.group == group
    assert outcome.received == b"pong\n"
    assert not traced(connection, "in", "HelloRetryRequest")


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_ssl_server_each_scheme(pki: Pki, scheme: SignatureScheme) -> None:
    # ssl's CertificateVerify is held to `scheme` by our signature_algorithms.
    kind = key_kind(scheme)
    reported, outcome, _ = converse_with_ssl_server(pki, kind, kind, signature_schemes=(scheme,))
    assert reported[1:] == (f"pinata test client {kind}", b"ping\n")
    complete = outcome.complete
    assert complete is not None and complete.peer is not None
    assert complete.peer_signature_scheme == scheme
    assert complete.signature_scheme == OUR_CHOICE[kind]
    assert complete.peer.leaf_key_is_rsassa_pss == (kind == "rsapss")


def test_ssl_server_refuses_client_without_certificate(pki: Pki) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(PEER_TIMEOUT)
    with listener:
        server = InThread(lambda: ssl_server(server_context(pki), listener))
        connection = ClientConnection(ClientConfig(authenticate_server=authenticator()), now=now())
        outcome = our_client(listener.getsockname()[1], connection, send=b"ping\n")
        with pytest.raises(ssl.SSLError) as raised:
            server.result()
    assert raised.value.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
    assert outcome.failure is not None
    assert (outcome.failure.alert, outcome.failure.sent) == (
        AlertDescription.certificate_required,
        False,
    )
