"""Our engine against tlslite-ng, a TLS 1.3 implementation in pure Python
with its own key schedule and record layer, so it shares no code with
OpenSSL: a second opinion on every derivation.

tlslite reports the negotiated suite, the key exchange group (`ecdhCurve`)
and the server's signature scheme (`serverSigAlg`); `HandshakeSettings`
narrows what it offers, so each parameter is forced from both sides.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import pytest

from pinata.tls.config import ClientConfig
from pinata.tls.connection import ClientConnection
from pinata.tls.constants import CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.errors import AlertDescription
from pinata.tls.events import PeerClosed
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

tlslite_api = pytest.importorskip("tlslite.api", reason="tlslite-ng (PyPI) is not installed")

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

TLSLITE_CIPHER = {
    CipherSuite.TLS_AES_128_GCM_SHA256: "aes128gcm",
    CipherSuite.TLS_AES_256_GCM_SHA384: "aes256gcm",
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: "chacha20-poly1305",
}


def settings(
    suite: CipherSuite | None = None,
    group: NamedGroup | None = None,
    scheme: SignatureScheme | None = None,
) -> object:
    """TLS 1.3 only, narrowed to one suite, group or signature scheme."""
    chosen = tlslite_api.HandshakeSettings()
    chosen.minVersion = chosen.maxVersion = (3, 4)
    # tlslite-ng 0.8.2's client compresses its certificate whenever its own
    # ClientHello offered compress_certificate, asked for or not (RFC 8879
    # §3 wants the CertificateRequest to offer it); we do not implement
    # RFC 8879, so it is not offered at all.
    chosen.certificate_compression_send = []
    chosen.certificate_compression_receive = []
    if suite is not None:
        chosen.cipherNames = [TLSLITE_CIPHER[suite]]
    if group is not None:
        chosen.eccCurves = [group.name]
        chosen.keyShares = [group.name]
    else:
        chosen.eccCurves = [g.name for g in GROUPS]
        chosen.keyShares = ["x25519"]
    if scheme is not None:
        digest = scheme.name.rsplit("_", 1)[-1]
        chosen.ecdsaSigHashes = [digest] if scheme.name.startswith("ecdsa") else []
        chosen.rsaSigHashes = [digest] if scheme.name.startswith("rsa") else []
        chosen.rsaSchemes = ["pss"]
        chosen.more_sig_schemes = ["Ed25519"] if scheme == SignatureScheme.ed25519 else []
    return chosen


def credentials(pki: Pki, role: str, kind: str | None) -> tuple[object, object]:
    """tlslite's (certificate chain, private key), or (None, None)."""
    if kind is None:
        return None, None
    party = pki.party(role, kind)
    chain = tlslite_api.X509CertChain()
    chain.parsePemList(party.cert_path.read_text())
    key = tlslite_api.parsePEMKey(party.key_path.read_text(), private=True)
    return chain, key


def scheme_of(pair: object) -> int:
    """tlslite keeps a scheme as its two bytes, (hash, signature)."""
    assert isinstance(pair, tuple)
    return int(pair[0]) << 8 | int(pair[1])


@dataclass
class Seen:
    """What tlslite reported about a finished conversation."""

    suite: int
    group: int
    server_scheme: int
    reply: bytes
    peer_certificates: int


def seen(connection: object, reply: bytes, peer_chain: object) -> Seen:
    session = connection.session  # type: ignore[attr-defined]
    return Seen(
        suite=session.cipherSuite,
        group=connection.ecdhCurve,  # type: ignore[attr-defined]
        server_scheme=scheme_of(connection.serverSigAlg),  # type: ignore[attr-defined]
        reply=reply,
        peer_certificates=peer_chain.getNumCerts() if peer_chain is not None else 0,  # type: ignore[attr-defined]
    )


# ---- tlslite as client, our server -----------------------------------------


def tlslite_client(
    port: int, chain: object, key: object, chosen: object, listen_first: bool = False
) -> Seen:
    raw = socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT)
    connection = tlslite_api.TLSConnection(raw)
    try:
        connection.handshakeClientCert(chain, key, settings=chosen, serverName="localhost")
        if listen_first:
            # A TLS 1.3 client finishes before the server judges its
            # certificate (§4.4.2.4): the verdict comes as the next record.
            connection.read(max=100)
        connection.write(b"ping\n")
        reply = connection.read(max=100)
        assert connection.read() == b""  # our close_notify
        connection.close()  # and tlslite's
        return seen(connection, bytes(reply), connection.session.serverCertChain)
    finally:
        raw.close()


def converse_with_tlslite_client(
    pki: Pki, chosen: object, kind: str = "p256", **config: Any
) -> tuple[Seen, object]:
    with our_server(
        server_config(pki, kind, **config), send=b"pong\n", expect_before_send=b"ping\n"
    ) as (port, run):
        report = tlslite_client(port, *credentials(pki, "client", kind), chosen)
    outcome = run.result()
    assert outcome.received == b"ping\n"
    assert report.reply == b"pong\n"
    assert report.peer_certificates == 1
    assert outcome.closed_by_peer == PeerClosed(clean=True)
    return report, outcome.complete


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_tlslite_client_each_suite(pki: Pki, suite: CipherSuite) -> None:
    report, complete = converse_with_tlslite_client(pki, settings(suite=suite))
    assert report.suite == suite
    assert complete.cipher_suite == suite  # type: ignore[attr-defined]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_tlslite_client_each_group(pki: Pki, group: NamedGroup) -> None:
    report, complete = converse_with_tlslite_client(pki, settings(group=group))
    assert report.group == group
    assert complete.group == group  # type: ignore[attr-defined]


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_tlslite_client_each_scheme(pki: Pki, scheme: SignatureScheme) -> None:
    report, complete = converse_with_tlslite_client(
        pki, settings(scheme=scheme), key_kind(scheme), signature_schemes=(scheme,)
    )
    assert report.server_scheme == scheme
    assert complete.signature_scheme == scheme  # type: ignore[attr-defined]
    assert complete.peer_signature_scheme == scheme  # type: ignore[attr-defined]


def test_tlslite_client_hello_retry_request(pki: Pki) -> None:
    chosen = settings()
    chosen.keyShares = ["x25519"]  # type: ignore[attr-defined]
    with our_server(
        server_config(pki, groups=(NamedGroup.secp384r1,)),
        send=b"pong\n",
        expect_before_send=b"ping\n",
    ) as (port, run):
        report = tlslite_client(port, *credentials(pki, "client", "p256"), chosen)
    assert report.group == NamedGroup.secp384r1
    assert run.result().complete.group == NamedGroup.secp384r1  # type: ignore[union-attr]
    assert run.connection is not None and traced(run.connection, "out", "HelloRetryRequest")


def test_tlslite_client_without_certificate_gets_certificate_required(pki: Pki) -> None:
    with (
        our_server(server_config(pki), send=b"pong\n") as (port, run),
        pytest.raises(tlslite_api.TLSRemoteAlert) as raised,
    ):
        tlslite_client(port, None, None, settings(), listen_first=True)
    assert raised.value.description == AlertDescription.certificate_required
    failure = run.result().failure
    assert failure is not None
    assert (failure.alert, failure.sent) == (AlertDescription.certificate_required, True)


def test_tlslite_client_key_update(pki: Pki) -> None:
    """Our KeyUpdate asks tlslite to update too; its answer and our reply
    then travel under new keys both ways (RFC 8446 §4.6.3)."""
    with our_server(
        server_config(pki), send=b"pong\n", expect_before_send=b"ping\n", key_update=True
    ) as (port, run):
        report = tlslite_client(port, *credentials(pki, "client", "p256"), settings())
    assert report.reply == b"pong\n"
    assert run.connection is not None
    assert [e.get("request_update") for e in traced(run.connection, "out", "KeyUpdate")] == [1]
    assert [e.get("request_update") for e in traced(run.connection, "in", "KeyUpdate")] == [0]


# ---- tlslite as server, our client -----------------------------------------


def tlslite_server(
    listener: socket.socket, chain: object, key: object, chosen: object, key_update: bool = False
) -> Seen:
    raw, _ = listener.accept()
    raw.settimeout(PEER_TIMEOUT)
    connection = tlslite_api.TLSConnection(raw)
    try:
        connection.handshakeServer(certChain=chain, privateKey=key, reqCert=True, settings=chosen)
        if key_update:
            for _ in connection.send_keyupdate_request(1):  # update_requested
                pass
        said = connection.read(max=100)
        connection.write(b"pong\n")
        assert connection.read() == b""  # our close_notify
        connection.close()
        return seen(connection, bytes(said), connection.session.clientCertChain)
    finally:
        raw.close()


def converse_with_tlslite_server(
    pki: Pki,
    chosen: object,
    kind: str = "p256",
    client_kind: str | None = "p256",
    key_update: bool = False,
    **config: Any,
) -> tuple[Seen, Outcome, ClientConnection]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(PEER_TIMEOUT)
    with listener:
        chain, key = credentials(pki, "server", kind)
        server = InThread(lambda: tlslite_server(listener, chain, key, chosen, key_update))
        ours = pki.party("client", client_kind).credentials if client_kind else None
        connection = ClientConnection(
            ClientConfig(authenticate_server=authenticator(), credentials=ours, **config),
            now=now(),
        )
        outcome = our_client(
            listener.getsockname()[1], connection, send=b"ping\n", expect_before_close=b"pong\n"
        )
        report = server.result()
    assert report.reply == b"ping\n"
    assert outcome.received == b"pong\n"
    assert outcome.closed_by_peer == PeerClosed(clean=True)
    return report, outcome, connection


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_tlslite_server_each_suite(pki: Pki, suite: CipherSuite) -> None:
    report, outcome, _ = converse_with_tlslite_server(pki, settings(suite=suite))
    assert report.suite == suite
    assert report.peer_certificates == 1
    assert outcome.complete is not None and outcome.complete.cipher_suite == suite


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_tlslite_server_each_group(pki: Pki, group: NamedGroup) -> None:
    # Our client sends an x25519 share only: the others take a HelloRetryRequest.
    report, outcome, connection = converse_with_tlslite_server(pki, settings(group=group))
    assert report.group == group
    assert outcome.complete is not None and outcome.complete.group == group
    retried = bool(traced(connection, "in", "HelloRetryRequest"))
    assert retried == (group != NamedGroup.x25519)


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_tlslite_server_each_scheme(pki: Pki, scheme: SignatureScheme) -> None:
    kind = key_kind(scheme)
    report, outcome, _ = converse_with_tlslite_server(
        pki, settings(scheme=scheme), kind, kind, signature_schemes=(scheme,)
    )
    assert report.server_scheme == scheme
    assert outcome.complete is not None
    assert outcome.complete.peer_signature_scheme == scheme
    assert outcome.complete.signature_scheme == scheme


def test_tlslite_server_sees_no_certificate_from_client_without_one(pki: Pki) -> None:
    # tlslite does not insist on a certificate it asked for: the refusal is
    # the application's. Our client must still answer with an empty one.
    report, outcome, _ = converse_with_tlslite_server(pki, settings(), client_kind=None)
    assert report.peer_certificates == 0
    assert outcome.complete is not None and outcome.complete.signature_scheme is None


def test_tlslite_server_key_update(pki: Pki) -> None:
    _, _, connection = converse_with_tlslite_server(pki, settings(), key_update=True)
    assert [e.get("request_update") for e in traced(connection, "in", "KeyUpdate")] == [1]
    assert [e.get("request_update") for e in traced(connection, "out", "KeyUpdate")] == [0]
