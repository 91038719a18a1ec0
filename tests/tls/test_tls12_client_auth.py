"""How our TLS 1.2 client answers a CertificateRequest (RFC 5246 §7.4.4,
§7.4.6, §7.4.8), against our own server in memory, whose request is set
by the test: our chain and a CertificateVerify when the request fits our
key, an empty Certificate when it does not."""

from __future__ import annotations

import pytest

from pinata.tls.config import ServerConfig
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import TLS12, ClientCertificateType, SignatureScheme
from pinata.tls.errors import AlertDescription
from pinata.tls.events import PeerAlert
from pinata.tls.messages import CertificateRequest12
from tests.tls.pairs import client_config, completed, failure, pump, server_config
from tests.tls.peers import NOW

_E = ClientCertificateType


def requesting(types: tuple[int, ...], schemes: tuple[int, ...]) -> ServerConfig:
    """Our server, asking for a client certificate with this request."""
    config = server_config(versions=(TLS12,))
    request = CertificateRequest12(types, schemes, config.certificate_authorities).encode()
    # The request is a per-configuration constant (a cached property): set it.
    config.__dict__["encoded_certificate_request12"] = request
    return config


def trace_out(client: ClientConnection, what: str) -> list[dict[str, object]]:
    return [e for e in client.trace.to_json() if (e["kind"], e["what"]) == ("out", what)]


@pytest.mark.parametrize(
    ("kind", "scheme"),
    [
        ("p256", SignatureScheme.ecdsa_secp256r1_sha256),
        ("ed25519", SignatureScheme.ed25519),
        ("rsa2048", SignatureScheme.rsa_pss_rsae_sha256),
    ],
)
def test_we_sign_with_our_best_scheme_the_server_listed(kind: str, scheme: SignatureScheme) -> None:
    client = ClientConnection(client_config(kind), now=NOW)
    server = ServerConnection(server_config(versions=(TLS12,)), now=NOW)
    client_events, server_events = pump(client, server)
    ours, theirs = completed(client_events), completed(server_events)
    assert ours is not None and theirs is not None
    assert ours.version == TLS12
    assert ours.signature_scheme == theirs.peer_signature_scheme == scheme
    assert theirs.peer is not None


def test_pkcs1_when_that_is_all_the_server_takes() -> None:
    # RFC 5246 §7.4.1.4.1: TLS 1.2 peers may list RSA PKCS#1 v1.5 only.
    config = requesting((_E.rsa_sign,), (SignatureScheme.rsa_pkcs1_sha384,))
    client = ClientConnection(client_config("rsa2048"), now=NOW)
    client_events, server_events = pump(client, ServerConnection(config, now=NOW))
    ours, theirs = completed(client_events), completed(server_events)
    assert ours is not None and theirs is not None
    assert ours.signature_scheme == theirs.peer_signature_scheme == SignatureScheme.rsa_pkcs1_sha384


@pytest.mark.parametrize(
    ("types", "schemes"),
    [
        ((_E.rsa_sign,), (SignatureScheme.ecdsa_secp256r1_sha256,)),
        ((_E.ecdsa_sign,), (SignatureScheme.rsa_pkcs1_sha256, SignatureScheme.ed25519)),
    ],
    ids=["type-does-not-fit", "no-scheme-fits"],
)
def test_empty_certificate_when_the_request_does_not_fit(
    types: tuple[int, ...], schemes: tuple[int, ...]
) -> None:
    client = ClientConnection(client_config("p256"), now=NOW)
    server = ServerConnection(requesting(types, schemes), now=NOW)
    client_events, server_events = pump(client, server)
    assert [e.get("certificates") for e in trace_out(client, "Certificate")] == [0]
    assert not trace_out(client, "CertificateVerify")
    # RFC 5246 §7.4.6: the server may refuse an empty list (ours does).
    found = failure(client_events)
    assert found is not None and found.failure == PeerAlert(AlertDescription.handshake_failure)
    assert completed(server_events) is None


def test_without_credentials_an_empty_certificate() -> None:
    client = ClientConnection(client_config(None), now=NOW)
    server = ServerConnection(server_config(versions=(TLS12,)), now=NOW)
    client_events, _ = pump(client, server)
    assert [e.get("certificates") for e in trace_out(client, "Certificate")] == [0]
    found = failure(client_events)
    assert found is not None and found.failure == PeerAlert(AlertDescription.handshake_failure)


def test_no_certificate_message_unless_asked() -> None:
    client = ClientConnection(client_config("p256"), now=NOW)
    server = ServerConnection(server_config(client_auth=False, versions=(TLS12,)), now=NOW)
    client_events, _ = pump(client, server)
    complete = completed(client_events)
    assert complete is not None and complete.signature_scheme is None
    assert not trace_out(client, "Certificate")
    assert complete.version == TLS12
