"""The client's ClientHello for each set of versions it may offer (RFC 8446
§4.1.2, RFC 5246 §7.4.1.2), read back with the engine's own parser."""

from __future__ import annotations

import pytest

from pinata.tls.config import DEFAULT_CIPHER_SUITES, DEFAULT_CIPHER_SUITES_TLS12
from pinata.tls.connection import ClientConnection
from pinata.tls.constants import (
    HELLO_RETRY_REQUEST_RANDOM,
    TLS11,
    TLS12,
    TLS13,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from pinata.tls.errors import AlertDescription, Cause, LocalProtocolError
from pinata.tls.events import ConnectionFailed, Event, LocalFailure
from pinata.tls.extensions import (
    Extension,
    KeyShareHelloRetryRequest,
    SignatureAlgorithms,
    SupportedVersionsClientHello,
    SupportedVersionsServerHello,
    find_extension,
)
from pinata.tls.messages import ClientHello, ServerHello, parse_handshake_message
from tests.tls.pairs import client_config
from tests.tls.peers import NOW

PKCS1 = {
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.rsa_pkcs1_sha384,
    SignatureScheme.rsa_pkcs1_sha512,
}
# SHA-1 and MD5 schemes (RFC 5246 §7.4.1.4.1 hash values 1 and 2), never offered.
WEAK = {0x0201, 0x0202, 0x0203, 0x0101, 0x0102, 0x0103}
TLS12_EXTENSIONS = {
    ExtensionType.ec_point_formats,
    ExtensionType.extended_master_secret,
    ExtensionType.renegotiation_info,
}


def first_hello(versions: tuple[int, ...]) -> tuple[bytes, ClientHello]:
    """(record header, ClientHello) of a new client offering `versions`."""
    client = ClientConnection(client_config(versions=versions), now=NOW)
    data = client.data_to_send()
    assert data[0] == ContentType.handshake and data[5] == HandshakeType.client_hello
    message = parse_handshake_message(data[5], data[9:])
    assert isinstance(message, ClientHello)
    return data[:5], message


def types(hello: ClientHello) -> set[int]:
    return {e.extension_type for e in hello.extensions}


def schemes(hello: ClientHello) -> set[int]:
    data = find_extension(hello.extensions, ExtensionType.signature_algorithms)
    assert data is not None
    return set(SignatureAlgorithms.parse(data).schemes)


def test_both_versions_offer_both() -> None:
    _, hello = first_hello((TLS13, TLS12))
    assert hello.legacy_version == TLS12
    versions = find_extension(hello.extensions, ExtensionType.supported_versions)
    assert versions is not None
    assert SupportedVersionsClientHello.parse(versions).versions == (TLS13, TLS12)
    assert hello.cipher_suites == (*DEFAULT_CIPHER_SUITES, *DEFAULT_CIPHER_SUITES_TLS12)
    assert ExtensionType.key_share in types(hello)
    # RFC 5746 §3.4 (empty renegotiation_info, not the SCSV), RFC 7627 §5.1,
    # RFC 8422 §5.1.2 (uncompressed only).
    assert find_extension(hello.extensions, ExtensionType.renegotiation_info) == b"\x00"
    assert find_extension(hello.extensions, ExtensionType.extended_master_secret) == b""
    assert find_extension(hello.extensions, ExtensionType.ec_point_formats) == b"\x01\x00"
    assert 0x00FF not in hello.cipher_suites
    assert schemes(hello) >= PKCS1
    assert not WEAK & schemes(hello)
    assert len(hello.legacy_session_id) == 32  # TLS 1.3 middlebox compatibility


def test_tls13_only_offers_nothing_of_tls12() -> None:
    header, hello = first_hello((TLS13,))
    assert header[1:3] == b"\x03\x01"  # RFC 8446 §5.1, as before
    versions = find_extension(hello.extensions, ExtensionType.supported_versions)
    assert versions is not None
    assert SupportedVersionsClientHello.parse(versions).versions == (TLS13,)
    assert hello.cipher_suites == DEFAULT_CIPHER_SUITES
    assert not TLS12_EXTENSIONS & types(hello)
    assert not PKCS1 & schemes(hello)


def test_tls12_only_offers_no_tls13() -> None:
    _, hello = first_hello((TLS12,))
    assert hello.legacy_version == TLS12
    assert hello.cipher_suites == DEFAULT_CIPHER_SUITES_TLS12
    assert hello.legacy_session_id == b""  # nothing to resume, no middlebox mode
    assert types(hello) >= TLS12_EXTENSIONS
    assert not {
        ExtensionType.supported_versions,
        ExtensionType.key_share,
        ExtensionType.signature_algorithms_cert,
    } & types(hello)
    assert schemes(hello) >= PKCS1
    assert not WEAK & schemes(hello)


@pytest.mark.parametrize("versions", [(), (TLS11,), (TLS13, TLS11)])
def test_other_versions_are_a_local_mistake(versions: tuple[int, ...]) -> None:
    with pytest.raises(LocalProtocolError):
        ClientConnection(client_config(versions=versions), now=NOW)


def test_tls12_alone_without_its_suites_is_a_local_mistake() -> None:
    with pytest.raises(LocalProtocolError):
        ClientConnection(client_config(versions=(TLS12,), cipher_suites_tls12=()), now=NOW)
    # With TLS 1.3 beside it, the 1.3 suites are still something to offer.
    _, hello = first_hello_of(ClientConnection(client_config(cipher_suites_tls12=()), now=NOW))
    assert hello.cipher_suites == DEFAULT_CIPHER_SUITES


# ---- the version a ServerHello picks (RFC 8446 §4.1.3, §4.2.1; RFC 5246 E.1) ----

ECDSA_AES128 = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256


def answer(client: ClientConnection, hello: ServerHello) -> list[Event]:
    data = hello.encode()
    return client.receive_data(bytes((22, 3, 3)) + len(data).to_bytes(2, "big") + data)


def refusal(events: list[Event]) -> tuple[Cause, AlertDescription]:
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed), events
    failure = events[0].failure
    assert isinstance(failure, LocalFailure)
    return failure.cause, failure.alert


def server_hello(
    client_hello: ClientHello,
    *extensions: Extension,
    version: int = TLS12,
    suite: int = ECDSA_AES128,
) -> ServerHello:
    return ServerHello(
        legacy_version=version,
        random=bytes(32),
        legacy_session_id_echo=client_hello.legacy_session_id,
        cipher_suite=ECDSA_AES128,
        extensions=extensions,
    )


def test_supported_versions_may_not_pick_tls12() -> None:
    # RFC 8446 §4.2.1: a version before 1.3 in supported_versions is illegal.
    client = ClientConnection(client_config(), now=NOW)
    _, hello = first_hello_of(client)
    picked = SupportedVersionsServerHello(TLS12).to_extension()
    assert refusal(answer(client, server_hello(hello, picked))) == (
        Cause.version_not_offered,
        AlertDescription.illegal_parameter,
    )


def test_legacy_version_above_tls12_without_supported_versions() -> None:
    client = ClientConnection(client_config(), now=NOW)
    _, hello = first_hello_of(client)
    assert refusal(answer(client, server_hello(hello, version=TLS13))) == (
        Cause.legacy_version_wrong,
        AlertDescription.protocol_version,
    )


def test_tls13_only_configuration_refuses_tls12() -> None:
    client = ClientConnection(client_config(versions=(TLS13,)), now=NOW)
    _, hello = first_hello_of(client)
    assert refusal(answer(client, server_hello(hello))) == (
        Cause.tls13_not_offered,
        AlertDescription.protocol_version,
    )


def test_tls12_answer_to_a_tls12_only_client_with_tls13_extensions() -> None:
    # We did not offer key_share with TLS 1.2 alone: the server may not answer it.
    client = ClientConnection(client_config(versions=(TLS12,)), now=NOW)
    _, hello = first_hello_of(client)
    share = Extension(ExtensionType.key_share, b"\x00\x1d\x00\x20" + bytes(32))
    assert refusal(answer(client, server_hello(hello, share))) == (
        Cause.unrequested_extension,
        AlertDescription.unsupported_extension,
    )


def test_tls12_server_hello_may_not_carry_key_share() -> None:
    # Offered for TLS 1.3, but no part of a TLS 1.2 ServerHello (RFC 5246 §7.4.1.4).
    client = ClientConnection(client_config(), now=NOW)
    _, hello = first_hello_of(client)
    share = Extension(ExtensionType.key_share, b"\x00\x1d\x00\x20" + bytes(32))
    assert refusal(answer(client, server_hello(hello, share))) == (
        Cause.extension_not_allowed_here,
        AlertDescription.illegal_parameter,
    )


def test_version_kept_after_hello_retry_request() -> None:
    # RFC 8446 §4.1.4: after a TLS 1.3 HelloRetryRequest, a TLS 1.2
    # ServerHello changes the version the retry chose.
    client = ClientConnection(client_config(), now=NOW)
    _, hello = first_hello_of(client)
    retry = ServerHello(
        random=HELLO_RETRY_REQUEST_RANDOM,
        legacy_session_id_echo=hello.legacy_session_id,
        cipher_suite=CipherSuite.TLS_AES_128_GCM_SHA256,
        extensions=(
            SupportedVersionsServerHello(TLS13).to_extension(),
            KeyShareHelloRetryRequest(NamedGroup.secp256r1).to_extension(),
        ),
    )
    assert answer(client, retry) == []
    assert client.data_to_send()  # the second ClientHello
    assert refusal(answer(client, server_hello(hello))) == (
        Cause.version_changed_after_retry,
        AlertDescription.illegal_parameter,
    )


def first_hello_of(client: ClientConnection) -> tuple[bytes, ClientHello]:
    data = client.data_to_send()
    message = parse_handshake_message(data[5], data[9:])
    assert isinstance(message, ClientHello)
    return data[:5], message
