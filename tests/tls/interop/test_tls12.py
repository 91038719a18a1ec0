"""Our engine over TLS 1.2 against four real peers (OpenSSL's command line,
GnuTLS's, tlslite-ng, Python's `ssl`), both roles, on loopback.

Each success checks what both sides report: the version (our connection,
our trace and the peer), the suite, the group, the signature schemes, the
extended master secret where the peer prints it (RFC 7627; ours is
mandatory, so every completed handshake used it), one line each way and
close_notify both ways. Each refusal checks the exact cause and alert on
our side and the alert the peer received.

The peers' command lines and settings are those of `peers12`, each shown
to work peer against peer in `test_harness12.py`.

Certificates: a side narrowed to one group uses Ed25519 (ECDHE_ECDSA
suites, RFC 8422 §5.1.1) or RSA (ECDHE_RSA) certificates, because OpenSSL
holds an ECDSA certificate's curve to the groups lists in TLS 1.2; the
P-256 and P-384 keys are covered by the signature scheme cases, where the
groups are left at their defaults.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from typing import Any

import pytest

from pinata.tls.config import ClientConfig, ServerConfig
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.errors import AlertDescription, Cause
from pinata.tls.events import LocalFailure, PeerAlert, PeerClosed
from tests.tls.driver import Outcome
from tests.tls.interop.conftest import (
    PEER_TIMEOUT,
    InThread,
    OutputReader,
    Pki,
    authenticator,
    listening_port,
    now,
    our_client,
    our_server,
    peer_process,
    server_config,
)
from tests.tls.interop.peers12 import (
    PEERS,
    TLS10,
    TLS11,
    GnuTLS,
    Options,
    Peer,
    PythonSsl,
    Report,
    TlsLite,
    available,
    peer_id,
)
from tests.tls.interop.tls12 import (
    GROUPS12,
    SCHEMES12,
    SUITES12,
    TLS12,
    TLS13,
    Group12,
    Scheme12,
    Suite12,
    gnutls_priority12,
    gnutls_serv12,
    ssl_context12,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

PONG = b"pong\n"
# Why Python's ssl sits out the cases it has no switch for.
NOT_FOR_SSL = "Python's ssl can neither leave out extended_master_secret nor send the fallback SCSV"


# What we sign with when the peer offers every scheme: our first choice for
# the key (as in TLS 1.3, test_python_ssl.OUR_CHOICE).
OUR_CHOICE = {
    "p256": SignatureScheme.ecdsa_secp256r1_sha256,
    "p384": SignatureScheme.ecdsa_secp384r1_sha384,
    "rsa2048": SignatureScheme.rsa_pss_rsae_sha256,
    "rsapss": SignatureScheme.rsa_pss_pss_sha256,
    "ed25519": SignatureScheme.ed25519,
}


def accepted_tls12(scheme: Scheme12) -> set[int]:
    """What we accept from a peer when narrowed to `scheme` in TLS 1.2: it,
    and PKCS#1 v1.5 with SHA-2, which TLS 1.2 peers need."""
    return {scheme.code, *(s.code for s in SCHEMES12 if s.rsa_padding == "pkcs1")}


def matrix_kind(suite: Suite12) -> str:
    """The certificate for a side narrowed to one group (see the module note)."""
    return "ed25519" if suite.tlslite_kx == "ecdhe_ecdsa" else "rsa2048"


def connection_version(connection: ServerConnection | ClientConnection | None) -> int | None:
    assert connection is not None
    notes = [e["what"] for e in connection.trace.to_json() if e["kind"] == "note"]
    named = {"TLS 1.2": TLS12, "TLS 1.3": TLS13}
    seen = [named[n] for n in notes if n in named]
    assert seen == [connection.version], notes
    return connection.version


def assert_peer_saw(
    report: Report, peer: Peer, role: str, version: int, suite: int | None = None
) -> None:
    """The peer's own view agrees: every peer reports the version and the
    suite; the extended master secret where the peer prints it."""
    assert report.version == version, report
    if suite is not None:
        assert report.suite == suite, report
    if version == TLS12 and role in peer.reports_ems:
        assert report.ems is True, report


def assert_refused(outcome: Outcome, cause: Cause, alert: AlertDescription) -> None:
    """We refused with `cause` and sent its alert (the one table's mapping)."""
    failure = outcome.failure
    assert failure is not None, outcome.events
    assert isinstance(failure.failure, LocalFailure), failure
    assert failure.failure.cause == cause, failure
    assert (failure.alert, failure.sent) == (alert, True)
    assert outcome.complete is None


# ---- a peer's client against our server ------------------------------------------


def against_our_server(
    pki: Pki, peer: Peer, options: Options, config: ServerConfig, refused: bool = False
) -> tuple[Report, Outcome, ServerConnection]:
    """The peer's client says ping, we answer pong; it ends with close_notify
    and we answer it (RFC 5246 §7.2.1)."""
    available(peer)
    with our_server(config, send=PONG, expect_before_send=b"ping\n", close=False) as (port, run):
        report = peer.client(pki, port, options, None if refused else PONG)
    outcome = run.result()
    assert isinstance(run.connection, ServerConnection)
    if not refused:
        assert outcome.complete is not None, f"{outcome.events}\n{report}"
        assert outcome.received == b"ping\n", report
        assert report.received == PONG, report
        assert outcome.closed_by_peer == PeerClosed(clean=True), report
    return report, outcome, run.connection


def config12(pki: Pki, kind: str, **kw: Any) -> ServerConfig:
    return server_config(pki, kind, **kw)


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
@pytest.mark.parametrize("group", GROUPS12, ids=lambda g: g.id)
@pytest.mark.parametrize("suite", SUITES12, ids=lambda s: s.id)
def test_peer_client_each_suite_and_group(
    pki: Pki, peer: Peer, suite: Suite12, group: Group12
) -> None:
    kind = matrix_kind(suite)
    # Python's ssl cannot be narrowed to a group: our side alone narrows it.
    narrowed = None if isinstance(peer, PythonSsl) else group
    report, outcome, connection = against_our_server(
        pki, peer,
        Options(kind="ed25519", suite=suite, group=narrowed),
        config12(pki, kind, cipher_suites_tls12=(CipherSuite(suite.code),),
                 groups=(NamedGroup(group.code),)),
    )  # fmt: skip
    complete = outcome.complete
    assert complete is not None
    assert (complete.version, complete.cipher_suite, complete.group) == (
        TLS12, suite.code, group.code,
    )  # fmt: skip
    assert connection_version(connection) == TLS12
    assert complete.peer is not None  # the client's certificate, validated
    assert complete.peer_signature_scheme == SignatureScheme.ed25519
    assert_peer_saw(report, peer, "client", TLS12, suite.code)
    assert report.group in (group.code, None), report
    # tlslite offers heartbeat (RFC 6520); we never agree to it.
    assert report.heartbeat in (False, None), report


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
@pytest.mark.parametrize("scheme", SCHEMES12, ids=lambda s: s.id)
def test_peer_client_each_scheme(pki: Pki, peer: Peer, scheme: Scheme12) -> None:
    """The peer's CertificateVerify is held to `scheme` by our CertificateRequest
    (which, for TLS 1.2, adds PKCS#1 v1.5: RFC 5246 §7.4.1.4.1) and by its
    own narrowing; our ServerKeyExchange is signed with the scheme the peer
    alone offers. Python's ssl offers every scheme: we sign with our first
    choice for the key, and its CertificateVerify is only held to our list."""
    narrowable = not isinstance(peer, PythonSsl)
    report, outcome, connection = against_our_server(
        pki, peer,
        Options(kind=scheme.kind, suite=scheme.suite, scheme=scheme if narrowable else None),
        config12(pki, scheme.kind, signature_schemes=(SignatureScheme(scheme.code),),
                 versions=(TLS12,)),
    )  # fmt: skip
    complete = outcome.complete
    assert complete is not None
    assert complete.version == TLS12
    if narrowable:
        assert complete.signature_scheme == scheme.code
        assert complete.peer_signature_scheme == scheme.code
    else:
        assert complete.signature_scheme == OUR_CHOICE[scheme.kind]
        assert complete.peer_signature_scheme in accepted_tls12(scheme)
    assert complete.peer is not None
    assert complete.peer.leaf_key_is_rsassa_pss == (scheme.kind == "rsapss")
    assert_peer_saw(report, peer, "client", TLS12, scheme.suite.code)
    assert connection_version(connection) == TLS12


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
def test_peer_client_without_certificate_is_refused(pki: Pki, peer: Peer) -> None:
    # RFC 5246 §7.4.6: a server that requires a certificate may answer an
    # empty one with a fatal handshake_failure; we do.
    report, outcome, _ = against_our_server(
        pki, peer, Options(kind=None), config12(pki, "p256"), refused=True
    )
    assert_refused(
        outcome, Cause.client_certificate_missing_tls12, AlertDescription.handshake_failure
    )
    assert report.alert_received == AlertDescription.handshake_failure, report
    assert report.received == b""


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
@pytest.mark.parametrize("suite", SUITES12, ids=lambda s: s.id)
def test_peer_client_not_asked_for_a_certificate(pki: Pki, peer: Peer, suite: Suite12) -> None:
    # The HTTPS page: no CertificateRequest, so no client certificate; a
    # P-256 or RSA server key, every group left to the peer and us.
    report, outcome, _ = against_our_server(
        pki, peer, Options(kind="p256", suite=suite),
        config12(pki, suite.server_kind, client_auth=False),
    )  # fmt: skip
    complete = outcome.complete
    assert complete is not None
    assert (complete.version, complete.cipher_suite) == (TLS12, suite.code)
    assert complete.peer is None and complete.peer_signature_scheme is None
    assert_peer_saw(report, peer, "client", TLS12, suite.code)


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
def test_peer_client_offering_13_and_12_gets_13(pki: Pki, peer: Peer) -> None:
    # Our default config speaks both; TLS 1.3 is preferred (RFC 8446 §4.2.1).
    report, outcome, connection = against_our_server(
        pki, peer, Options(versions=(TLS12, TLS13)), config12(pki, "p256")
    )
    assert outcome.complete is not None and outcome.complete.version == TLS13
    assert connection_version(connection) == TLS13
    assert report.version == TLS13, report


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
def test_peer_client_at_12_against_our_default_config(pki: Pki, peer: Peer) -> None:
    # A TLS 1.2-only peer against our (1.3, 1.2) server: 1.2, and our
    # ServerHello.random ends with the downgrade sentinel (RFC 8446
    # §4.1.3), which a client that offered no 1.3 ignores.
    report, outcome, connection = against_our_server(pki, peer, Options(), config12(pki, "p256"))
    assert outcome.complete is not None and outcome.complete.version == TLS12
    assert connection_version(connection) == TLS12
    assert_peer_saw(report, peer, "client", TLS12)


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
@pytest.mark.parametrize("old", [TLS11, TLS10], ids=["tls1.1", "tls1.0"])
def test_peer_client_below_12_gets_protocol_version(pki: Pki, peer: Peer, old: int) -> None:
    report, outcome, connection = against_our_server(
        pki, peer, Options(versions=(old, old)), config12(pki, "p256"), refused=True
    )
    assert_refused(outcome, Cause.version_too_old, AlertDescription.protocol_version)
    assert report.alert_received == AlertDescription.protocol_version, report
    assert connection.version is None


def test_tlslite_sslv3_hello_gets_protocol_version(pki: Pki) -> None:
    # The original Piñata counted SSLv3 hellos; tlslite-ng is the one peer
    # here that still sends one (OpenSSL 3.0 and GnuTLS 3.7 cannot).
    report, outcome, connection = against_our_server(
        pki, TlsLite(), Options(versions=(0x0300, 0x0300)), config12(pki, "p256"), refused=True
    )
    assert_refused(outcome, Cause.version_too_old, AlertDescription.protocol_version)
    assert report.alert_received == AlertDescription.protocol_version, report
    assert connection.version is None


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
@pytest.mark.parametrize("version", [TLS12, TLS11], ids=["tls1.2", "tls1.1"])
def test_peer_client_fallback_scsv_gets_inappropriate_fallback(
    pki: Pki, peer: Peer, version: int
) -> None:
    # RFC 7507 §3: the SCSV from a client whose highest version is below
    # ours means a downgrade, and is answered before the version itself is
    # judged (so a TLS 1.1 hello with it gets this alert too).
    if isinstance(peer, PythonSsl):
        pytest.skip(NOT_FOR_SSL)
    report, outcome, _ = against_our_server(
        pki, peer, Options(fallback_scsv=True, versions=(version, version)),
        config12(pki, "p256"), refused=True,
    )  # fmt: skip
    assert_refused(outcome, Cause.inappropriate_fallback, AlertDescription.inappropriate_fallback)
    assert report.alert_received == AlertDescription.inappropriate_fallback, report


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
def test_peer_client_fallback_scsv_at_our_highest_is_accepted(pki: Pki, peer: Peer) -> None:
    # RFC 7507 §3: only a version below our highest is a fallback.
    if isinstance(peer, PythonSsl):
        pytest.skip(NOT_FOR_SSL)
    report, outcome, _ = against_our_server(
        pki, peer, Options(fallback_scsv=True), config12(pki, "p256", versions=(TLS12,))
    )
    assert outcome.complete is not None and outcome.complete.version == TLS12
    assert_peer_saw(report, peer, "client", TLS12)


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
def test_peer_client_without_ems_is_refused(pki: Pki, peer: Peer) -> None:
    # RFC 7627 §5.2: we abort a full handshake without extended_master_secret.
    if isinstance(peer, PythonSsl):
        pytest.skip(NOT_FOR_SSL)
    report, outcome, _ = against_our_server(
        pki, peer, Options(no_ems=True), config12(pki, "p256"), refused=True
    )
    assert_refused(outcome, Cause.no_extended_master_secret, AlertDescription.handshake_failure)
    assert report.alert_received == AlertDescription.handshake_failure, report


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
def test_peer_client_without_our_certificate_curve_gets_no_suite(pki: Pki, peer: Peer) -> None:
    """RFC 8422 §4: a server "MUST NOT negotiate the use of an ECC cipher
    suite unless [it] can complete the handshake while respecting the choice
    of curves specified by the client". A client that lists only x25519
    cannot check our P-256 certificate's signatures (OpenSSL, GnuTLS and
    tlslite all abort if we try), so with only that certificate no suite is
    left: handshake_failure before our ServerHello."""
    if isinstance(peer, PythonSsl):
        pytest.skip(
            "Python's ssl cannot be narrowed to one group (set_ecdh_curve takes NIST curves)"
        )
    x25519 = GROUPS12[0]
    report, outcome, _ = against_our_server(
        pki, peer, Options(kind="rsa2048", group=x25519), config12(pki, "p256"), refused=True
    )
    assert_refused(outcome, Cause.no_common_cipher_suite, AlertDescription.handshake_failure)
    assert report.alert_received == AlertDescription.handshake_failure, report


def test_gnutls_cli_without_secure_renegotiation_is_refused(pki: Pki) -> None:
    # RFC 5746 §3.6, as the issue asks: neither renegotiation_info nor the
    # SCSV in a TLS 1.2 ClientHello, and we refuse.
    peer = GnuTLS()
    report, outcome, _ = against_our_server(
        pki, peer, Options(no_secure_renegotiation=True), config12(pki, "p256"), refused=True
    )
    assert_refused(outcome, Cause.no_secure_renegotiation, AlertDescription.handshake_failure)
    assert report.alert_received == AlertDescription.handshake_failure, report


# ---- our client against a peer's server -----------------------------------------


def against_peer_server(
    pki: Pki, peer: Peer, options: Options, client_kind: str | None = "p256", **config: Any
) -> tuple[Report, Outcome, ClientConnection]:
    """We say ping, the peer answers its way (`Serving.answer`), we close
    with close_notify and it answers (or hangs up, which ends us anyway)."""
    available(peer)
    credentials = pki.party("client", client_kind).credentials if client_kind else None
    connection = ClientConnection(
        ClientConfig(
            authenticate_server=authenticator(),
            credentials=credentials,
            server_name="localhost",
            **config,
        ),
        now=now(),
    )
    with peer.server(pki, options) as serving:
        outcome = our_client(
            serving.port, connection, send=b"ping\n", expect_before_close=serving.answer
        )
        if outcome.complete is not None:
            assert outcome.received == serving.answer, outcome.events
            # Our close_notify answered with the peer's (RFC 5246 §7.2.1).
            assert outcome.closed_by_peer == PeerClosed(clean=True), outcome.events
        report = serving.report()
    return report, outcome, connection


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
@pytest.mark.parametrize("group", GROUPS12, ids=lambda g: g.id)
@pytest.mark.parametrize("suite", SUITES12, ids=lambda s: s.id)
def test_peer_server_each_suite_and_group(
    pki: Pki, peer: Peer, suite: Suite12, group: Group12
) -> None:
    # Our client offers one suite and one group; the peer's server (but
    # Python's ssl, which cannot) is narrowed to them too.
    narrowed = None if isinstance(peer, PythonSsl) else group
    report, outcome, connection = against_peer_server(
        pki, peer, Options(kind=matrix_kind(suite), suite=suite, group=narrowed),
        client_kind="ed25519",
        cipher_suites_tls12=(CipherSuite(suite.code),), groups=(NamedGroup(group.code),),
        key_share_groups=(NamedGroup(group.code),),
    )  # fmt: skip
    complete = outcome.complete
    assert complete is not None, f"{outcome.events}\n{report}"
    assert (complete.version, complete.cipher_suite, complete.group) == (
        TLS12, suite.code, group.code,
    )  # fmt: skip
    assert complete.signature_scheme == SignatureScheme.ed25519  # our CertificateVerify
    assert connection_version(connection) == TLS12
    assert_peer_saw(report, peer, "server", TLS12, suite.code)


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
@pytest.mark.parametrize("scheme", SCHEMES12, ids=lambda s: s.id)
def test_peer_server_each_scheme(pki: Pki, peer: Peer, scheme: Scheme12) -> None:
    """The peer's ServerKeyExchange is signed with `scheme`, the only one our
    signature_algorithms offers; our CertificateVerify too, where the peer's
    CertificateRequest can be narrowed to it."""
    narrowable = not isinstance(peer, PythonSsl)
    report, outcome, connection = against_peer_server(
        pki, peer,
        Options(kind=scheme.kind, suite=scheme.suite, scheme=scheme if narrowable else None),
        client_kind=scheme.kind, signature_schemes=(SignatureScheme(scheme.code),),
    )  # fmt: skip
    complete = outcome.complete
    assert complete is not None, f"{outcome.events}\n{report}"
    assert complete.version == TLS12
    if narrowable:
        assert complete.peer_signature_scheme == scheme.code
        assert complete.signature_scheme == scheme.code
    else:
        # Python's ssl asks for any scheme: we sign with our first choice;
        # its own signature is held only to what we offer, which in TLS 1.2
        # adds PKCS#1 v1.5 (RFC 5246 §7.4.1.4.1).
        assert complete.signature_scheme == OUR_CHOICE[scheme.kind]
        assert complete.peer_signature_scheme in accepted_tls12(scheme)
    assert complete.peer is not None
    assert complete.peer.leaf_key_is_rsassa_pss == (scheme.kind == "rsapss")
    assert connection_version(connection) == TLS12
    assert_peer_saw(report, peer, "server", TLS12, scheme.suite.code)


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
def test_peer_server_requiring_a_certificate_and_we_have_none(pki: Pki, peer: Peer) -> None:
    # We answer a CertificateRequest with an empty Certificate (RFC 5246
    # §7.4.6); a server that requires one refuses us with its own alert,
    # but tlslite's, which leaves that refusal to its application.
    expected = peer.no_client_certificate_alert
    report, outcome, _ = against_peer_server(pki, peer, Options(), client_kind=None)
    if expected is None:
        complete = outcome.complete
        assert complete is not None, f"{outcome.events}\n{report}"
        assert complete.signature_scheme is None  # no CertificateVerify from us
        return
    failure = outcome.failure
    assert failure is not None, outcome.events
    assert failure.failure == PeerAlert(expected), report
    assert outcome.complete is None


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
@pytest.mark.parametrize("suite", SUITES12, ids=lambda s: s.id)
def test_peer_server_asking_gets_an_empty_certificate(pki: Pki, peer: Peer, suite: Suite12) -> None:
    # A server that asks without requiring: our empty Certificate and no
    # CertificateVerify complete the handshake; a P-256 or RSA server key.
    report, outcome, _ = against_peer_server(
        pki, peer, Options(kind=suite.server_kind, suite=suite, client_auth="request"),
        client_kind=None,
    )  # fmt: skip
    complete = outcome.complete
    assert complete is not None, f"{outcome.events}\n{report}"
    assert (complete.version, complete.cipher_suite) == (TLS12, suite.code)
    assert complete.signature_scheme is None
    assert_peer_saw(report, peer, "server", TLS12, suite.code)


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
def test_peer_server_at_12_only_with_our_default_config(pki: Pki, peer: Peer) -> None:
    # We offer 1.3 and 1.2; a 1.2-only server sets no downgrade sentinel
    # (it supports nothing better), so we take 1.2.
    report, outcome, connection = against_peer_server(pki, peer, Options())
    assert outcome.complete is not None and outcome.complete.version == TLS12
    assert connection_version(connection) == TLS12
    assert_peer_saw(report, peer, "server", TLS12)


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
def test_peer_server_speaking_13_and_12(pki: Pki, peer: Peer) -> None:
    # Our default config gets 1.3; limited to 1.2 we get 1.2, and the
    # sentinel such a server sets then (RFC 8446 §4.1.3) is no downgrade:
    # we did not offer 1.3.
    both = Options(versions=(TLS12, TLS13))
    report, outcome, _ = against_peer_server(pki, peer, both)
    assert outcome.complete is not None and outcome.complete.version == TLS13, report
    report, outcome, connection = against_peer_server(pki, peer, both, versions=(TLS12,))
    assert outcome.complete is not None and outcome.complete.version == TLS12, report
    assert connection_version(connection) == TLS12
    assert_peer_saw(report, peer, "server", TLS12)


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
def test_peer_server_without_ems_is_refused(pki: Pki, peer: Peer) -> None:
    # RFC 7627 §5.2: our client aborts when the server does not echo
    # extended_master_secret.
    if isinstance(peer, PythonSsl):
        pytest.skip(NOT_FOR_SSL)
    _, outcome, _ = against_peer_server(pki, peer, Options(no_ems=True))
    assert_refused(outcome, Cause.no_extended_master_secret, AlertDescription.handshake_failure)


@pytest.mark.parametrize("peer", PEERS, ids=peer_id)
@pytest.mark.parametrize("old", [TLS11, TLS10], ids=["tls1.1", "tls1.0"])
def test_peer_server_below_12_refuses_us(pki: Pki, peer: Peer, old: int) -> None:
    # A TLS 1.1- or 1.0-only server finds nothing it can answer in our hello: no
    # common version, or no suite (ours are TLS 1.2 AEAD suites), as each
    # peer checks first. None answers with an older ServerHello, so our own
    # refusal of one (version_too_old) is the engine tests' to show.
    _, outcome, _ = against_peer_server(pki, peer, Options(versions=(old, old)))
    failure = outcome.failure
    assert failure is not None, outcome.events
    assert failure.failure == PeerAlert(peer.tls11_server_alert)


def test_gnutls_serv_narrowed_to_ed25519_is_refused_for_its_empty_certificate_types(
    pki: Pki,
) -> None:
    """GnuTLS 3.7 derives a TLS 1.2 CertificateRequest's certificate_types
    from the signatures it allows, and sends none when only Ed25519 is left;
    RFC 5246 §7.4.4 says `certificate_types<1..2^8-1>`, so we refuse the
    message as malformed (OpenSSL accepts it). The scheme matrix therefore
    lets GnuTLS also allow ECDSA-SHA256 when narrowed to Ed25519."""
    peer = GnuTLS()
    available(peer)
    ed25519 = next(s for s in SCHEMES12 if s.kind == "ed25519")
    prio = gnutls_priority12(ed25519.suite) + ":-SIGN-ALL:+SIGN-EDDSA-ED25519"
    connection = ClientConnection(
        ClientConfig(
            authenticate_server=authenticator(),
            credentials=pki.party("client", "ed25519").credentials,
            signature_schemes=(SignatureScheme.ed25519,),
        ),
        now=now(),
    )
    with peer_process(gnutls_serv12(pki, prio, "ed25519")) as process:
        reader = OutputReader(process)
        reader.wait_for(lambda line: "listening on IPv4" in line)
        outcome = our_client(listening_port(process.pid), connection, send=b"ping\n")
    assert_refused(outcome, Cause.malformed_message, AlertDescription.decode_error)


def test_gnutls_serv_without_secure_renegotiation_is_refused(pki: Pki) -> None:
    # RFC 5746 §3.4: a client that insists on secure renegotiation aborts a
    # ServerHello without renegotiation_info; we do.
    report, outcome, _ = against_peer_server(pki, GnuTLS(), Options(no_secure_renegotiation=True))
    failure = outcome.failure
    assert failure is not None, f"{outcome.events}\n{report}"
    assert isinstance(failure.failure, LocalFailure), failure
    assert failure.failure.cause == Cause.no_secure_renegotiation
    assert (failure.alert, failure.sent) == (AlertDescription.handshake_failure, True)


# ---- many records each way ---------------------------------------------------------

# Six full records and a part (RFC 5246 §6.2.1: at most 2^14 bytes each), so
# the explicit nonces and sequence numbers of RFC 5288 / RFC 7905 advance.
BULK = bytes(range(256)) * 400


def read_bulk(tls: ssl.SSLSocket, size: int) -> bytes:
    """Up to `size` bytes, fewer if the stream ends (bounded by the socket's timeout)."""
    received = b""
    for _ in range(1000):
        chunk = tls.recv(65536) if len(received) < size else b""
        if not chunk:
            break
        received += chunk
    return received


def ssl_exchange(tls: ssl.SSLSocket, payload: bytes) -> bytes:
    """Sends `payload`, reads as many bytes back, closes with close_notify."""
    tls.sendall(payload)
    received = read_bulk(tls, len(payload))
    with contextlib.suppress(OSError):
        tls.unwrap()
    return received


@pytest.mark.parametrize("suite", SUITES12, ids=lambda s: s.id)
def test_ssl_client_bulk_both_ways(pki: Pki, suite: Suite12) -> None:
    context = ssl_context12(pki, server=False, suite=suite)
    with (
        our_server(
            config12(pki, suite.server_kind), send=BULK, expect_before_send=BULK, close=False
        ) as (port, run),
        socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as raw,
    ):
        tls = context.wrap_socket(raw, server_hostname="localhost")
        echoed = ssl_exchange(tls, BULK)
    outcome = run.result()
    assert outcome.complete is not None and outcome.complete.cipher_suite == suite.code
    assert outcome.received == BULK
    assert echoed == BULK


@pytest.mark.parametrize("suite", SUITES12, ids=lambda s: s.id)
def test_ssl_server_bulk_both_ways(pki: Pki, suite: Suite12) -> None:
    context = ssl_context12(pki, server=True, kind=suite.server_kind, suite=suite)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(PEER_TIMEOUT)

    def serve() -> bytes:
        raw, _ = listener.accept()
        raw.settimeout(PEER_TIMEOUT)
        with context.wrap_socket(raw, server_side=True) as tls:
            received = read_bulk(tls, len(BULK))
            tls.sendall(received)
            closed = tls.recv(100)  # b"": our client's close_notify
            with contextlib.suppress(OSError):
                tls.unwrap()
            return received if closed == b"" else b"more than was sent"

    with listener:
        server = InThread(serve)
        connection = ClientConnection(
            ClientConfig(
                authenticate_server=authenticator(),
                credentials=pki.party("client", "p256").credentials,
                server_name="localhost",
            ),
            now=now(),
        )
        outcome = our_client(
            listener.getsockname()[1], connection, send=BULK, expect_before_close=BULK
        )
        assert server.result() == BULK
    assert outcome.complete is not None and outcome.complete.cipher_suite == suite.code
    assert outcome.received == BULK
