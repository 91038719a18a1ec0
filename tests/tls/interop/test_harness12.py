"""The TLS 1.2 matrix's peers against each other, without our engine: every
command line and settings object of `peers12` is shown to work (or to fail
as the peer should) before it is used against us, so that a failure in
`test_tls12.py` is ours, not the harness's.

Each pair forces the same suite, group or scheme on both sides and checks
what both report.
"""

from __future__ import annotations

import pytest

from pinata.tls.errors import AlertDescription
from tests.tls.interop.conftest import Pki
from tests.tls.interop.peers12 import (
    TLS10,
    TLS11,
    GnuTLS,
    OpenSSL,
    Options,
    Peer,
    PythonSsl,
    Report,
    TlsLite,
    available,
)
from tests.tls.interop.tls12 import (
    GROUPS12,
    SCHEMES12,
    SUITES12,
    TLS12,
    TLS13,
    TLSLITE_CLIENT_NEEDS,
    Group12,
    Scheme12,
    Suite12,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

# (client, server): each peer's client and server appear at least once.
PAIRS = (
    (OpenSSL(), GnuTLS()),
    (GnuTLS(), OpenSSL()),
    (TlsLite(), OpenSSL()),
    (PythonSsl(), TlsLite()),
    (OpenSSL(), PythonSsl()),
    (OpenSSL(), TlsLite()),
)
# Pairs where both sides can be narrowed to one signature scheme.
SCHEME_PAIRS = tuple(p for p in PAIRS if not any(isinstance(x, PythonSsl) for x in p))
# Pairs where one side names the group: neither `ssl` nor tlslite's server does.
GROUP_PAIRS = tuple(p for p in PAIRS if not isinstance(p[0], PythonSsl))


def pair_id(pair: tuple[Peer, Peer]) -> str:
    return f"{pair[0].name}-to-{pair[1].name}"


def talk(
    pki: Pki, pair: tuple[Peer, Peer], client: Options, server: Options, refused: bool = False
) -> tuple[Report, Report]:
    """The client of `pair` against its server; `refused`: the handshake is
    to fail, so the client waits for no answer."""
    for peer in pair:
        available(peer)
    with pair[1].server(pki, server) as serving:
        answer = None if refused else serving.answer
        client_report = pair[0].client(pki, serving.port, client, answer)
        server_report = serving.report()
    return client_report, server_report


def assert_tls12(client: Report, server: Report, answer: bytes) -> None:
    assert client.received == answer, client
    assert client.version == TLS12, client
    for report in (client, server):
        assert report.version in (TLS12, None), report
        assert report.ems in (True, None), report


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
@pytest.mark.parametrize("suite", SUITES12, ids=lambda s: s.id)
def test_each_suite(pki: Pki, pair: tuple[Peer, Peer], suite: Suite12) -> None:
    client, server = talk(
        pki, pair, Options(suite=suite), Options(kind=suite.server_kind, suite=suite)
    )
    assert_tls12(client, server, b"gnip\n" if isinstance(pair[1], OpenSSL) else client.received)
    assert client.suite == suite.code, client
    assert server.suite in (suite.code, None), server


@pytest.mark.parametrize("pair", GROUP_PAIRS, ids=pair_id)
@pytest.mark.parametrize("group", GROUPS12, ids=lambda g: g.id)
def test_each_group(pki: Pki, pair: tuple[Peer, Peer], group: Group12) -> None:
    # RSA certificates: see tls12's note on ECDSA curves and groups.
    rsa = Options(kind="rsa2048", group=group)
    client, server = talk(pki, pair, rsa, rsa)
    assert_tls12(client, server, client.received)
    assert client.group in (group.code, None), client
    assert server.group in (group.code, None), server
    assert (client.group, server.group) != (None, None), "neither peer names the group"


@pytest.mark.parametrize("pair", SCHEME_PAIRS, ids=pair_id)
@pytest.mark.parametrize("scheme", SCHEMES12, ids=lambda s: s.id)
def test_each_scheme(pki: Pki, pair: tuple[Peer, Peer], scheme: Scheme12) -> None:
    also = TLSLITE_CLIENT_NEEDS if isinstance(pair[0], TlsLite) else None
    client, server = talk(
        pki, pair,
        Options(kind=scheme.kind, scheme=scheme, suite=scheme.suite),
        Options(kind=scheme.kind, scheme=scheme, suite=scheme.suite, also_accept=also),
    )  # fmt: skip
    assert_tls12(client, server, client.received)
    assert client.received != b""
    assert client.suite == scheme.suite.code


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_client_without_certificate(pki: Pki, pair: tuple[Peer, Peer]) -> None:
    expected = pair[1].no_client_certificate_alert
    client, server = talk(pki, pair, Options(kind=None), Options(), refused=expected is not None)
    if expected is None:  # tlslite leaves the refusal to its application
        assert client.received == b"pong\n" and client.alert_received is None, client
        return
    assert client.received == b""
    assert client.alert_received == expected, f"{client}\n{server}"


@pytest.mark.parametrize("client_peer", [OpenSSL(), GnuTLS(), TlsLite()], ids=lambda p: p.name)
def test_without_extended_master_secret(pki: Pki, client_peer: Peer) -> None:
    # The server (OpenSSL) reports no EMS in what s_client prints; use it as client then.
    server_peer: Peer = GnuTLS() if isinstance(client_peer, OpenSSL) else OpenSSL()
    client, server = talk(pki, (client_peer, server_peer), Options(no_ems=True), Options())
    assert client.version == TLS12
    assert False in (client.ems, server.ems), f"{client}\n{server}"


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
@pytest.mark.parametrize("old", [TLS11, TLS10], ids=["tls1.1", "tls1.0"])
def test_old_client_is_refused_by_a_tls12_server(
    pki: Pki, pair: tuple[Peer, Peer], old: int
) -> None:
    client, server = talk(pki, pair, Options(versions=(old, old)), Options(), refused=True)
    assert client.received == b""
    seen = client.alert_received or server.alert_received
    assert seen == AlertDescription.protocol_version, f"{client}\n{server}"


@pytest.mark.parametrize("client_peer", [OpenSSL(), GnuTLS(), TlsLite()], ids=lambda p: p.name)
def test_fallback_scsv_is_refused_by_a_tls13_server(pki: Pki, client_peer: Peer) -> None:
    client, _ = talk(
        pki, (client_peer, OpenSSL()), Options(fallback_scsv=True),
        Options(versions=(TLS12, TLS13)), refused=True,
    )  # fmt: skip
    assert client.alert_received == AlertDescription.inappropriate_fallback, client


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_tls13_and_12_on_both_sides_gives_13(pki: Pki, pair: tuple[Peer, Peer]) -> None:
    both = Options(versions=(TLS12, TLS13))
    client, _ = talk(pki, pair, both, both)
    assert client.version == TLS13, client


def test_gnutls_without_secure_renegotiation(pki: Pki) -> None:
    # GnuTLS is the one peer that can leave out RFC 5746 altogether; OpenSSL's
    # server still talks to it, and says so.
    off = Options(no_secure_renegotiation=True)
    client, _ = talk(pki, (GnuTLS(), OpenSSL()), off, Options())
    assert client.received == b"gnip\n" and client.secure_renegotiation is False, client
    # OpenSSL 3.0's client, as ours, refuses a server without it.
    client, _ = talk(pki, (OpenSSL(), GnuTLS()), Options(), off, refused=True)
    assert "unsafe legacy renegotiation disabled" in client.output, client
    client, _ = talk(pki, (OpenSSL(), GnuTLS()), Options(), Options())
    assert client.secure_renegotiation is True, client
