"""TLS 1.2 message and extension codecs: round trips, bounds, totality."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinata.tls.constants import TLS12, TLS13, ExtensionType, HandshakeType
from pinata.tls.errors import AlertDescription, Cause, ProtocolError
from pinata.tls.extensions import (
    Carrier,
    EcPointFormats,
    ExtendedMasterSecret,
    Extension,
    RenegotiationInfo,
    allowed_in,
    allowed_in_tls12,
)
from pinata.tls.messages import (
    Certificate,
    Certificate12,
    CertificateRequest,
    CertificateRequest12,
    CertificateVerify,
    ClientKeyExchange,
    Finished,
    HandshakeMessage,
    HelloRequest,
    KeyUpdate,
    ServerHelloDone,
    ServerKeyExchange,
    parse_handshake_message,
)

_SAMPLES: list[HandshakeMessage] = [
    HelloRequest(),
    ServerHelloDone(),
    ServerKeyExchange(3, 0x001D, bytes(range(32)), 0x0403, b"sig" * 20),
    ClientKeyExchange(b"\x04" + bytes(64)),
    CertificateRequest12((1, 64), (0x0403, 0x0804), (b"\x30\x03\x31\x01\x00",)),
    CertificateRequest12((64,), (0x0807,), ()),
    Certificate12((b"\x30\x82cert-one", b"cert-two")),
    Certificate12(()),
    CertificateVerify(0x0401, b"\x00" * 256),
    Finished(bytes(12)),
]


def _parse12(encoded: bytes) -> HandshakeMessage:
    return parse_handshake_message(encoded[0], encoded[4:], TLS12)


def _alert(encoded: bytes) -> AlertDescription:
    with pytest.raises(ProtocolError) as caught:
        _parse12(encoded)
    return caught.value.alert


@pytest.mark.parametrize("message", _SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message: HandshakeMessage) -> None:
    encoded = message.encode()
    assert _parse12(encoded) == message
    assert _parse12(encoded).encode() == encoded


def test_wire_layouts_match_the_rfc_structs() -> None:
    ske = ServerKeyExchange(3, 0x0017, b"\x04ab", 0x0401, b"xy")
    # RFC 8422 §5.4: curve_type, named curve, point<1..255>, then digitally-signed.
    assert ske.encode() == bytes.fromhex("0c00000d 03 0017 03 046162 0401 0002 7879")
    assert ske.params() == bytes.fromhex("03 0017 03 046162")
    assert ClientKeyExchange(b"\x01\x02").encode() == bytes.fromhex("10000003 02 0102")
    assert HelloRequest().encode() == bytes.fromhex("00000000")
    assert ServerHelloDone().encode() == bytes.fromhex("0e000000")
    request = CertificateRequest12((64,), (0x0403,), (b"dn",))
    assert request.encode() == bytes.fromhex("0d00000c 01 40 0002 0403 0004 0002 646e")
    assert Certificate12((b"ab",)).encode() == bytes.fromhex("0b000008 000005 000002 6162")


def test_type_numbers_and_the_version_pick_the_layout() -> None:
    assert HelloRequest.msg_type == 0 and ServerKeyExchange.msg_type == 12
    assert ServerHelloDone.msg_type == 14 and ClientKeyExchange.msg_type == 16
    body = Certificate12((b"ab",)).encode()[4:]
    parsed = parse_handshake_message(HandshakeType.certificate, body, TLS12)
    assert isinstance(parsed, Certificate12)
    tls13 = Certificate(b"", ()).encode()
    assert isinstance(parse_handshake_message(11, tls13[4:], TLS13), Certificate)
    sig_algs = Extension(ExtensionType.signature_algorithms, b"\x00\x02\x04\x03")
    cr13 = CertificateRequest(b"", (sig_algs,)).encode()[4:]
    with pytest.raises(ProtocolError):  # a 1.3 CertificateRequest is no 1.2 one
        parse_handshake_message(13, cr13, TLS12)
    # TLS 1.2 types are unknown in TLS 1.3, and TLS 1.3-only types in 1.2.
    with pytest.raises(ProtocolError) as caught:
        parse_handshake_message(14, b"", TLS13)
    assert caught.value.cause is Cause.unknown_handshake_type
    with pytest.raises(ProtocolError) as caught:
        parse_handshake_message(HandshakeType.encrypted_extensions, b"\x00\x00", TLS12)
    assert caught.value.cause is Cause.unknown_handshake_type
    assert isinstance(parse_handshake_message(24, b"\x00", TLS12), KeyUpdate)


def test_bounds_are_enforced() -> None:
    # Explicit curves (RFC 8422 §5.4) cannot be read.
    explicit = bytes.fromhex("0c00000a 01 0017 01 04 0401 0002 7879")
    with pytest.raises(ProtocolError) as caught:
        _parse12(explicit)
    assert caught.value.cause is Cause.curve_type_not_named
    assert caught.value.alert == AlertDescription.illegal_parameter
    assert _alert(bytes.fromhex("10000001 00")) == AlertDescription.decode_error  # empty point
    assert _alert(bytes.fromhex("0e000001 00")) == AlertDescription.decode_error  # not empty
    assert _alert(bytes.fromhex("0d000005 00 0000 0000")) == AlertDescription.decode_error
    assert _alert(bytes.fromhex("0d000006 01 40 0001 04 0000")) == AlertDescription.decode_error
    assert _alert(bytes.fromhex("0b000006 000003 000000")) == AlertDescription.decode_error
    with pytest.raises(ValueError):
        ClientKeyExchange(b"").encode()
    with pytest.raises(ValueError):
        ServerKeyExchange(1, 0x17, b"\x04", 0x0401, b"").encode()


@settings(max_examples=300, deadline=None)
@given(msg_type=st.sampled_from([0, 11, 12, 13, 14, 15, 16, 20]), body=st.binary(max_size=80))
def test_parsers_are_total(msg_type: int, body: bytes) -> None:
    try:
        message = parse_handshake_message(msg_type, body, TLS12)
    except ProtocolError as error:
        assert error.alert in (AlertDescription.decode_error, AlertDescription.illegal_parameter)
    else:
        assert message.encode()[4:] == body


def test_extension_codecs() -> None:
    assert ExtendedMasterSecret().to_extension().extension_data == b""
    assert ExtendedMasterSecret.parse(b"") == ExtendedMasterSecret()
    assert RenegotiationInfo().encode() == b"\x00"
    assert RenegotiationInfo.parse(b"\x02ab").renegotiated_connection == b"ab"
    assert EcPointFormats((0, 1)).encode() == b"\x02\x00\x01"
    assert EcPointFormats.parse(b"\x01\x00").formats == (0,)
    for kind, body in (
        (ExtendedMasterSecret, b"\x00"),
        (RenegotiationInfo, b""),
        (RenegotiationInfo, b"\x02a"),
        (EcPointFormats, b"\x00"),
        (EcPointFormats, b""),
    ):
        with pytest.raises(ProtocolError) as caught:
            kind.parse(body)
        assert caught.value.alert == AlertDescription.decode_error
    assert ExtendedMasterSecret.extension_type == 23
    assert RenegotiationInfo.extension_type == 0xFF01
    assert EcPointFormats.extension_type == 11


def test_the_tls12_extension_table() -> None:
    server_hello = allowed_in_tls12(Carrier.server_hello)
    for ext in (ExtensionType.extended_master_secret, ExtensionType.renegotiation_info,
                ExtensionType.ec_point_formats):  # fmt: skip
        assert ext in server_hello and ext in allowed_in_tls12(Carrier.client_hello)
        assert ext not in allowed_in(Carrier.server_hello)  # not TLS 1.3's
    for ext in (ExtensionType.key_share, ExtensionType.supported_versions,
                ExtensionType.signature_algorithms, ExtensionType.supported_groups):  # fmt: skip
        assert ext not in server_hello
