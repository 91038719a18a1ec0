"""The client's ClientHello for each set of versions it may offer (RFC 8446
§4.1.2, RFC 5246 §7.4.1.2), read back with the engine's own parser."""

from __future__ import annotations

import pytest

from pinata.tls.config import DEFAULT_CIPHER_SUITES, DEFAULT_CIPHER_SUITES_TLS12
from pinata.tls.connection import ClientConnection
from pinata.tls.constants import (
    TLS11,
    TLS12,
    TLS13,
    ContentType,
    ExtensionType,
    HandshakeType,
    SignatureScheme,
)
from pinata.tls.errors import LocalProtocolError
from pinata.tls.extensions import (
    SignatureAlgorithms,
    SupportedVersionsClientHello,
    find_extension,
)
from pinata.tls.messages import ClientHello, parse_handshake_message
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
