"""Our TLS 1.2 client's refusals from the server's Certificate to its
Finished, each with its exact alert. The server is Python's `ssl` in memory;
a rewritten ServerKeyExchange is signed again with the server's own key (the
test holds it), so only the one field under test is wrong. The Finished
cases use our own server with a wrong Finished of its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import (
    TLS12,
    CipherSuite,
    ContentType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from pinata.tls.errors import AlertDescription, Cause
from pinata.tls.events import ConnectionFailed, LocalFailure, PeerAlert
from pinata.tls.handshake import server12
from pinata.tls.handshake.common12 import server_key_exchange_content
from pinata.tls.messages import (
    Certificate12,
    Finished,
    ServerHello,
    ServerKeyExchange,
    parse_handshake_message,
)
from tests.tls.pairs import client_config, failure, pump, server_config
from tests.tls.peers import NOW, leaf
from tests.tls.tls12_client_peers import (
    MemoryServer,
    MessageRewrite,
    refused,
    rewrite_clear_flight,
    server_context,
)

SkeChange = Callable[[ServerKeyExchange], ServerKeyExchange]


def refused_key_exchange(
    tmp_path: Path, change: SkeChange, *, sign_again: bool = True, **config: object
) -> LocalFailure:
    """Our client's failure when the server's ServerKeyExchange is changed
    (and, with `sign_again`, signed again over the changed params)."""
    client = ClientConnection(client_config(**config), now=NOW)
    hello = client.data_to_send()
    client_random = hello[11:43]  # record header, handshake header, version
    server = MemoryServer(server_context(tmp_path, "p256"))
    server.feed(hello)
    server_random = b""
    key = leaf("server", "p256")[0]

    def rewrite(kind: int, whole: bytes) -> bytes:
        nonlocal server_random
        if kind == HandshakeType.server_hello:
            hello = parse_handshake_message(kind, whole[4:])
            assert isinstance(hello, ServerHello)
            server_random = hello.random
        if kind != HandshakeType.server_key_exchange:
            return whole
        ske = parse_handshake_message(kind, whole[4:], TLS12)
        assert isinstance(ske, ServerKeyExchange)
        ske = change(ske)
        if sign_again:
            content = server_key_exchange_content(client_random, server_random, ske.params())
            signature = key.sign_tls12(SignatureScheme(ske.algorithm), content)
            ske = dataclasses.replace(ske, signature=signature)
        return ske.encode()

    return refused(client, server, lambda data: rewrite_clear_flight(data, rewrite))


def expect(failure: LocalFailure, cause: Cause, alert: AlertDescription) -> None:
    assert (failure.cause, failure.alert) == (cause, alert), failure


def test_bad_signature_is_decrypt_error(tmp_path: Path) -> None:
    def flip(ske: ServerKeyExchange) -> ServerKeyExchange:
        signature = ske.signature[:-1] + bytes((ske.signature[-1] ^ 1,))
        return dataclasses.replace(ske, signature=signature)

    failure = refused_key_exchange(tmp_path, flip, sign_again=False)
    expect(failure, Cause.bad_signature, AlertDescription.decrypt_error)


def test_signed_params_are_bound_to_the_randoms(tmp_path: Path) -> None:
    # A different point under the old signature: RFC 8422 §5.4's signature
    # covers the params, so a swapped key share is caught.
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = other.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    failure = refused_key_exchange(
        tmp_path,
        lambda ske: dataclasses.replace(ske, public=point),
        sign_again=False,
        groups=(NamedGroup.secp256r1,),
    )
    expect(failure, Cause.bad_signature, AlertDescription.decrypt_error)


@pytest.mark.parametrize(
    "scheme", [SignatureScheme.ecdsa_secp384r1_sha384, SignatureScheme.ecdsa_sha1]
)
def test_scheme_we_did_not_offer(tmp_path: Path, scheme: SignatureScheme) -> None:
    failure = refused_key_exchange(
        tmp_path,
        lambda ske: dataclasses.replace(ske, algorithm=scheme),
        sign_again=False,
        signature_schemes=(SignatureScheme.ecdsa_secp256r1_sha256,),
    )
    expect(failure, Cause.signature_scheme_not_offered, AlertDescription.illegal_parameter)


def _p384_point() -> bytes:
    key = ec.generate_private_key(ec.SECP384R1()).public_key()
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def test_curve_we_did_not_offer(tmp_path: Path) -> None:
    failure = refused_key_exchange(
        tmp_path,
        lambda ske: dataclasses.replace(
            ske, named_curve=NamedGroup.secp384r1, public=_p384_point()
        ),
        groups=(NamedGroup.x25519, NamedGroup.secp256r1),
    )
    expect(failure, Cause.key_share_in_unoffered_group, AlertDescription.illegal_parameter)


def test_hybrid_group_is_not_for_tls12(tmp_path: Path) -> None:
    # X25519MLKEM768 is offered (for TLS 1.3) but no TLS 1.2 curve.
    failure = refused_key_exchange(
        tmp_path, lambda ske: dataclasses.replace(ske, named_curve=NamedGroup.X25519MLKEM768)
    )
    expect(failure, Cause.key_share_in_unoffered_group, AlertDescription.illegal_parameter)


def test_compressed_point(tmp_path: Path) -> None:
    # RFC 8422 §5.1.2: only uncompressed points; this one is signed properly.
    def compress(ske: ServerKeyExchange) -> ServerKeyExchange:
        x, y = ske.public[1:33], ske.public[33:]
        return dataclasses.replace(ske, public=bytes((2 + (y[-1] & 1),)) + x)

    failure = refused_key_exchange(tmp_path, compress, groups=(NamedGroup.secp256r1,))
    expect(failure, Cause.invalid_key_share, AlertDescription.illegal_parameter)


def test_point_off_the_curve(tmp_path: Path) -> None:
    def off(ske: ServerKeyExchange) -> ServerKeyExchange:
        return dataclasses.replace(ske, public=ske.public[:-1] + bytes((ske.public[-1] ^ 1,)))

    failure = refused_key_exchange(tmp_path, off, groups=(NamedGroup.secp256r1,))
    expect(failure, Cause.invalid_key_share, AlertDescription.illegal_parameter)


def refused_flight(tmp_path: Path, rewrite: MessageRewrite, **config: object) -> LocalFailure:
    client = ClientConnection(client_config(**config), now=NOW)
    server = MemoryServer(server_context(tmp_path, "p256"))
    return refused(client, server, lambda data: rewrite_clear_flight(data, rewrite))


def test_certificate_key_that_does_not_fit_the_suite(tmp_path: Path) -> None:
    # The server says ECDHE_RSA but its certificate holds a P-256 key.
    rsa_suite = CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256

    def rewrite(kind: int, whole: bytes) -> bytes:
        if kind != HandshakeType.server_hello:
            return whole
        hello = parse_handshake_message(kind, whole[4:])
        assert isinstance(hello, ServerHello)
        return dataclasses.replace(hello, cipher_suite=rsa_suite).encode()

    failure = refused_flight(tmp_path, rewrite)
    expect(failure, Cause.certificate_unsupported, AlertDescription.unsupported_certificate)


def test_empty_server_certificate(tmp_path: Path) -> None:
    def rewrite(kind: int, whole: bytes) -> bytes:
        return Certificate12(()).encode() if kind == HandshakeType.certificate else whole

    failure = refused_flight(tmp_path, rewrite)
    expect(failure, Cause.server_certificate_empty, AlertDescription.decode_error)


def test_server_hello_done_without_key_exchange(tmp_path: Path) -> None:
    def rewrite(kind: int, whole: bytes) -> bytes:
        return b"" if kind == HandshakeType.server_key_exchange else whole

    failure = refused_flight(tmp_path, rewrite)
    expect(failure, Cause.unexpected_handshake_message, AlertDescription.unexpected_message)


def test_change_cipher_spec_before_server_hello_done(tmp_path: Path) -> None:
    # RFC 5246 §7.1: the server's ChangeCipherSpec comes after our Finished.
    done = bytes((HandshakeType.server_hello_done, 0, 0, 0))
    ccs = bytes((ContentType.change_cipher_spec, 3, 3, 0, 1, 1))

    def before_done(data: bytes) -> bytes:
        flight = rewrite_clear_flight(data, lambda kind, whole: whole)
        if not flight.endswith(done):
            return data
        head = flight[5 : -len(done)]
        header = bytes((ContentType.handshake, 3, 3))
        return b"".join(
            (header + len(head).to_bytes(2, "big") + head, ccs, header + b"\x00\x04" + done)
        )

    client = ClientConnection(client_config(), now=NOW)
    server = MemoryServer(server_context(tmp_path, "p256"))
    failure = refused(client, server, before_done)
    expect(failure, Cause.change_cipher_spec_out_of_place, AlertDescription.unexpected_message)


# ---- the server's Finished: our own server, made to send a wrong one ---------


@pytest.mark.parametrize(
    ("verify_data", "cause", "alert"),
    [
        (bytes(12), Cause.bad_finished, AlertDescription.decrypt_error),
        (bytes(13), Cause.finished_wrong_length, AlertDescription.decode_error),
    ],
    ids=["wrong", "long"],
)
def test_wrong_server_finished(
    monkeypatch: pytest.MonkeyPatch, verify_data: bytes, cause: Cause, alert: AlertDescription
) -> None:
    monkeypatch.setattr(server12, "finished12", lambda *_, **__: Finished(verify_data))
    client = ClientConnection(client_config(versions=(TLS12,)), now=NOW)
    server = ServerConnection(server_config(client_auth=False), now=NOW)
    client_events, server_events = pump(client, server)
    found = failure(client_events)
    assert isinstance(found, ConnectionFailed)
    assert found.failure == LocalFailure(cause)
    assert found.alert == alert
    assert client.version == TLS12 and not client.handshake_complete
    told = failure(server_events)
    assert told is not None and told.failure == PeerAlert(alert)


def test_hello_request_during_the_handshake(tmp_path: Path) -> None:
    hello_request = bytes((HandshakeType.hello_request, 0, 0, 0))

    def rewrite(kind: int, whole: bytes) -> bytes:
        return hello_request + whole if kind == HandshakeType.server_hello_done else whole

    failure = refused_flight(tmp_path, rewrite)
    expect(failure, Cause.unexpected_handshake_message, AlertDescription.unexpected_message)
