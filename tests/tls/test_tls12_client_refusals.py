"""Every refusal of our TLS 1.2 client, with its exact alert: a real server
(Python's `ssl`, in memory) whose clear-text first flight is rewritten one
field at a time before our client reads it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from pinata.tls.connection import ClientConnection
from pinata.tls.constants import (
    DOWNGRADE_TLS11,
    DOWNGRADE_TLS12,
    TLS13,
    CipherSuite,
    ExtensionType,
    HandshakeType,
)
from pinata.tls.errors import AlertDescription, Cause
from pinata.tls.events import ConnectionFailed, LocalFailure
from pinata.tls.extensions import Extension
from pinata.tls.messages import ClientHello, ServerHello, parse_handshake_message
from tests.tls.pairs import client_config
from tests.tls.peers import NOW
from tests.tls.tls12_client_peers import (
    MemoryServer,
    MessageRewrite,
    refused,
    replace_message,
    rewrite_clear_flight,
    server_context,
)

AES128_ECDSA = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256


def refused_after(
    tmp_path: Path, rewrite: MessageRewrite, kind: str = "p256", **config: object
) -> LocalFailure:
    """Our client's failure when the server's first flight is rewritten."""
    client = ClientConnection(client_config(**config), now=NOW)
    server = MemoryServer(server_context(tmp_path, kind))
    return refused(client, server, lambda data: rewrite_clear_flight(data, rewrite))


def server_hello(change: Callable[[ServerHello], ServerHello]) -> MessageRewrite:
    def rewrite(whole: bytes) -> bytes:
        message = parse_handshake_message(whole[0], whole[4:])
        assert isinstance(message, ServerHello)
        return change(message).encode()

    return replace_message(HandshakeType.server_hello, rewrite)


def without_extension(ext_type: int) -> MessageRewrite:
    def change(m: ServerHello) -> ServerHello:
        kept = tuple(e for e in m.extensions if e.extension_type != ext_type)
        assert len(kept) == len(m.extensions) - 1, "the server did not send it"
        return dataclasses.replace(m, extensions=kept)

    return server_hello(change)


def with_extension(ext_type: int, body: bytes) -> MessageRewrite:
    def change(m: ServerHello) -> ServerHello:
        kept = tuple(e for e in m.extensions if e.extension_type != ext_type)
        return dataclasses.replace(m, extensions=(*kept, Extension(ext_type, body)))

    return server_hello(change)


@pytest.mark.parametrize("sentinel", [DOWNGRADE_TLS12, DOWNGRADE_TLS11], ids=["tls12", "tls11"])
def test_downgrade_sentinel(tmp_path: Path, sentinel: bytes) -> None:
    # RFC 8446 §4.1.3: we offered 1.3, the server picked 1.2 and says it
    # could have done better: someone stripped our offer.
    rewrite = server_hello(lambda m: dataclasses.replace(m, random=m.random[:24] + sentinel))
    failure = refused_after(tmp_path, rewrite)
    assert (failure.cause, failure.alert) == (
        Cause.downgrade_sentinel,
        AlertDescription.illegal_parameter,
    )


def test_missing_extended_master_secret(tmp_path: Path) -> None:
    failure = refused_after(tmp_path, without_extension(ExtensionType.extended_master_secret))
    assert (failure.cause, failure.alert) == (
        Cause.no_extended_master_secret,
        AlertDescription.handshake_failure,
    )


def test_missing_renegotiation_info(tmp_path: Path) -> None:
    failure = refused_after(tmp_path, without_extension(ExtensionType.renegotiation_info))
    assert (failure.cause, failure.alert) == (
        Cause.no_secure_renegotiation,
        AlertDescription.handshake_failure,
    )


def test_non_empty_renegotiation_info(tmp_path: Path) -> None:
    # RFC 5746 §3.4: in an initial handshake, renegotiated_connection is empty.
    rewrite = with_extension(ExtensionType.renegotiation_info, b"\x0c" + bytes(12))
    failure = refused_after(tmp_path, rewrite)
    assert (failure.cause, failure.alert) == (
        Cause.renegotiation_info_wrong,
        AlertDescription.handshake_failure,
    )


@pytest.mark.parametrize(
    "suite",
    [CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, CipherSuite.TLS_AES_128_GCM_SHA256, 0xC013],
    ids=["unoffered-tls12-suite", "tls13-suite", "cbc-suite"],
)
def test_unoffered_suite(tmp_path: Path, suite: int) -> None:
    rewrite = server_hello(lambda m: dataclasses.replace(m, cipher_suite=suite))
    failure = refused_after(tmp_path, rewrite, cipher_suites_tls12=(AES128_ECDSA,))
    assert (failure.cause, failure.alert) == (
        Cause.unoffered_cipher_suite,
        AlertDescription.illegal_parameter,
    )


def test_compressed_point_format_only(tmp_path: Path) -> None:
    # RFC 8422 §5.1.2: uncompressed must be in the server's list.
    failure = refused_after(tmp_path, with_extension(ExtensionType.ec_point_formats, b"\x01\x01"))
    assert (failure.cause, failure.alert) == (
        Cause.uncompressed_point_format_missing,
        AlertDescription.illegal_parameter,
    )


def test_compression(tmp_path: Path) -> None:
    rewrite = server_hello(lambda m: dataclasses.replace(m, legacy_compression_method=1))
    failure = refused_after(tmp_path, rewrite)
    assert failure.alert == AlertDescription.illegal_parameter


@pytest.mark.parametrize(
    "ext_type", [ExtensionType.session_ticket, ExtensionType.heartbeat, 0x7777]
)
def test_extension_we_did_not_offer(tmp_path: Path, ext_type: int) -> None:
    failure = refused_after(tmp_path, with_extension(ext_type, b""))
    assert (failure.cause, failure.alert) == (
        Cause.unrequested_extension,
        AlertDescription.unsupported_extension,
    )


@pytest.mark.parametrize("version", [0x0302, 0x0301, 0x0300])
def test_version_below_tls12(tmp_path: Path, version: int) -> None:
    rewrite = server_hello(lambda m: dataclasses.replace(m, legacy_version=version))
    failure = refused_after(tmp_path, rewrite)
    assert (failure.cause, failure.alert) == (
        Cause.version_too_old,
        AlertDescription.protocol_version,
    )


def test_tls12_when_only_tls13_was_offered_keeps_its_old_cause() -> None:
    # With versions=(TLS13,) nothing changes: a 1.2 answer is tls13_not_offered.
    client = ClientConnection(client_config(versions=(TLS13,)), now=NOW)
    client.data_to_send()
    hello = ServerHello(
        random=bytes(32), legacy_session_id_echo=b"", cipher_suite=AES128_ECDSA, extensions=()
    ).encode()
    events = client.receive_data(bytes((22, 3, 3)) + len(hello).to_bytes(2, "big") + hello)
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed)
    assert events[0].failure == LocalFailure(Cause.tls13_not_offered, "by the server")
    assert events[0].alert == AlertDescription.protocol_version


def test_stripped_tls13_offer_is_caught_by_the_sentinel(tmp_path: Path) -> None:
    # The attack RFC 8446 §4.1.3 is for: a man in the middle removes our
    # supported_versions, so a server that speaks 1.3 answers with 1.2 and,
    # being able to do better, says so in its random (DOWNGRD\x01).
    def strip(data: bytes) -> bytes:
        if data[0] != 22 or data[5] != HandshakeType.client_hello:
            return data
        hello = parse_handshake_message(data[5], data[9:])
        assert isinstance(hello, ClientHello)
        kept = tuple(
            e for e in hello.extensions if e.extension_type != ExtensionType.supported_versions
        )
        body = dataclasses.replace(hello, extensions=kept).encode()
        return data[:3] + len(body).to_bytes(2, "big") + body

    client = ClientConnection(client_config(), now=NOW)
    server = MemoryServer(server_context(tmp_path, allow_tls13=True))
    failure = refused(client, server, lambda data: data, strip)
    assert (failure.cause, failure.alert) == (
        Cause.downgrade_sentinel,
        AlertDescription.illegal_parameter,
    )
