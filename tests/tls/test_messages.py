"""Handshake message codecs (pinata.tls.messages)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinata.tls.codec import Reader, Writer
from pinata.tls.constants import (
    HELLO_RETRY_REQUEST_RANDOM,
    TLS12,
    TLS13,
    CipherSuite,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from pinata.tls.errors import AlertDescription, ProtocolError
from pinata.tls.extensions import (
    Extension,
    KeyShareClientHello,
    KeyShareServerHello,
    ServerName,
    SupportedGroups,
    SupportedVersionsClientHello,
    SupportedVersionsServerHello,
    find_extension,
    find_typed,
)
from pinata.tls.messages import (
    Certificate,
    CertificateEntry,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    EndOfEarlyData,
    Finished,
    HandshakeMessage,
    KeyUpdate,
    NewSessionTicket,
    ServerHello,
    parse_handshake_message,
)
from tests.tls import strategies as tls_st


def unhex(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# RFC 8448 §3, "Simple 1-RTT Handshake": the handshake messages, headers included.
RFC8448_CLIENT_HELLO = unhex("""
    01 00 00 c0 03 03 cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d ff a2
    1a 8d 99 12 ec 18 a2 ef 62 83 02 4d ec e7 00 00 06 13 01 13 03 13 02 01
    00 00 91 00 00 00 0b 00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00
    0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00
    23 00 00 00 33 00 26 00 24 00 1d 00 20 99 38 1d e5 60 e4 bd 43 d2 3d 8e
    43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a af 2c 00 2b 00
    03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06
    04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c
    00 02 40 01""")
RFC8448_SERVER_HELLO = unhex("""
    02 00 00 56 03 03 a6 af 06 a4 12 18 60 dc 5e 6e 60 24 9c d3 4c 95 93 0c
    8a c5 cb 14 34 da c1 55 77 2e d3 e2 69 28 00 13 01 00 00 2e 00 33 00 24
    00 1d 00 20 c9 82 88 76 11 20 95 fe 66 76 2b db f7 c6 72 e1 56 d6 cc 25
    3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f 00 2b 00 02 03 04""")
RFC8448_ENCRYPTED_EXTENSIONS = unhex("""
    08 00 00 24 00 22 00 0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01
    01 02 01 03 01 04 00 1c 00 02 40 01 00 00 00 00""")
RFC8448_CERTIFICATE = unhex("""
    0b 00 01 b9 00 00 01 b5 00 01 b0 30 82 01 ac 30 82 01 15 a0 03 02 01 02
    02 01 02 30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00 30 0e 31 0c 30 0a
    06 03 55 04 03 13 03 72 73 61 30 1e 17 0d 31 36 30 37 33 30 30 31 32 33
    35 39 5a 17 0d 32 36 30 37 33 30 30 31 32 33 35 39 5a 30 0e 31 0c 30 0a
    06 03 55 04 03 13 03 72 73 61 30 81 9f 30 0d 06 09 2a 86 48 86 f7 0d 01
    01 01 05 00 03 81 8d 00 30 81 89 02 81 81 00 b4 bb 49 8f 82 79 30 3d 98
    08 36 39 9b 36 c6 98 8c 0c 68 de 55 e1 bd b8 26 d3 90 1a 24 61 ea fd 2d
    e4 9a 91 d0 15 ab bc 9a 95 13 7a ce 6c 1a f1 9e aa 6a f9 8c 7c ed 43 12
    09 98 e1 87 a8 0e e0 cc b0 52 4b 1b 01 8c 3e 0b 63 26 4d 44 9a 6d 38 e2
    2a 5f da 43 08 46 74 80 30 53 0e f0 46 1c 8c a9 d9 ef bf ae 8e a6 d1 d0
    3e 2b d1 93 ef f0 ab 9a 80 02 c4 74 28 a6 d3 5a 8d 88 d7 9f 7f 1e 3f 02
    03 01 00 01 a3 1a 30 18 30 09 06 03 55 1d 13 04 02 30 00 30 0b 06 03 55
    1d 0f 04 04 03 02 05 a0 30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00 03
    81 81 00 85 aa d2 a0 e5 b9 27 6b 90 8c 65 f7 3a 72 67 17 06 18 a5 4c 5f
    8a 7b 33 7d 2d f7 a5 94 36 54 17 f2 ea e8 f8 a5 8c 8f 81 72 f9 31 9c f3
    6b 7f d6 c5 5b 80 f2 1a 03 01 51 56 72 60 96 fd 33 5e 5e 67 f2 db f1 02
    70 2e 60 8c ca e6 be c1 fc 63 a4 2a 99 be 5c 3e b7 10 7c 3c 54 e9 b9 eb
    2b d5 20 3b 1c 3b 84 e0 a8 b2 f7 59 40 9b a3 ea c9 d9 1d 40 2d cc 0c c8
    f8 96 12 29 ac 91 87 b4 2b 4d e1 00 00""")
RFC8448_CERTIFICATE_VERIFY = unhex("""
    0f 00 00 84 08 04 00 80 5a 74 7c 5d 88 fa 9b d2 e5 5a b0 85 a6 10 15 b7
    21 1f 82 4c d4 84 14 5a b3 ff 52 f1 fd a8 47 7b 0b 7a bc 90 db 78 e2 d3
    3a 5c 14 1a 07 86 53 fa 6b ef 78 0c 5e a2 48 ee aa a7 85 c4 f3 94 ca b6
    d3 0b be 8d 48 59 ee 51 1f 60 29 57 b1 54 11 ac 02 76 71 45 9e 46 44 5c
    9e a5 8c 18 1e 81 8e 95 b8 c3 fb 0b f3 27 84 09 d3 be 15 2a 3d a5 04 3e
    06 3d da 65 cd f5 ae a2 0d 53 df ac d4 2f 74 f3""")
RFC8448_SERVER_FINISHED = unhex("""
    14 00 00 20 9b 9b 14 1d 90 63 37 fb d2 cb dc e7 1d f4 de da 4a b4 2c 30
    95 72 cb 7f ff ee 54 54 b7 8f 07 18""")
# Values the RFC derives from the messages above; they vouch for the transcription.
RFC8448_TRANSCRIPT_CH_SH = unhex("860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8")
RFC8448_SERVER_FINISHED_KEY = unhex(
    "008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8"
)

RFC8448_MESSAGES = [
    RFC8448_CLIENT_HELLO,
    RFC8448_SERVER_HELLO,
    RFC8448_ENCRYPTED_EXTENSIONS,
    RFC8448_CERTIFICATE,
    RFC8448_CERTIFICATE_VERIFY,
    RFC8448_SERVER_FINISHED,
]


def parse_full(encoded: bytes) -> HandshakeMessage:
    """A whole handshake message: header checked here, body by the codec."""
    assert int.from_bytes(encoded[1:4], "big") == len(encoded) - 4
    return parse_handshake_message(encoded[0], encoded[4:])


def alert_of(msg_type: int, body: bytes) -> AlertDescription:
    with pytest.raises(ProtocolError) as info:
        parse_handshake_message(msg_type, body)
    return info.value.alert


# --- RFC 8448 known answers -------------------------------------------------


def test_rfc8448_vectors_are_transcribed_faithfully() -> None:
    # Independent of our code: the RFC's transcript hash and server Finished
    # (an HMAC over the transcript) hold only if every byte above is right.
    transcript = hashlib.sha256(RFC8448_CLIENT_HELLO + RFC8448_SERVER_HELLO).digest()
    assert transcript == RFC8448_TRANSCRIPT_CH_SH
    through_cv = hashlib.sha256(b"".join(RFC8448_MESSAGES[:5])).digest()
    verify_data = hmac.new(RFC8448_SERVER_FINISHED_KEY, through_cv, "sha256").digest()
    assert verify_data == RFC8448_SERVER_FINISHED[4:]


@pytest.mark.parametrize("encoded", RFC8448_MESSAGES)
def test_rfc8448_messages_round_trip_byte_for_byte(encoded: bytes) -> None:
    message = parse_full(encoded)
    assert message.msg_type == encoded[0]
    assert message.encode() == encoded


def test_rfc8448_client_hello_fields() -> None:
    ch = parse_full(RFC8448_CLIENT_HELLO)
    assert isinstance(ch, ClientHello)
    assert ch.legacy_version == TLS12
    assert ch.random == RFC8448_CLIENT_HELLO[6:38]
    assert ch.legacy_session_id == b""
    assert ch.cipher_suites == (
        CipherSuite.TLS_AES_128_GCM_SHA256,
        CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        CipherSuite.TLS_AES_256_GCM_SHA384,
    )
    assert ch.legacy_compression_methods == b"\x00"
    assert [e.extension_type for e in ch.extensions] == [
        ExtensionType.server_name,
        ExtensionType.renegotiation_info,
        ExtensionType.supported_groups,
        ExtensionType.session_ticket,
        ExtensionType.key_share,
        ExtensionType.supported_versions,
        ExtensionType.signature_algorithms,
        ExtensionType.psk_key_exchange_modes,
        ExtensionType.record_size_limit,
    ]
    assert find_typed(ch.extensions, ServerName) == ServerName("server")
    assert find_typed(ch.extensions, SupportedVersionsClientHello) == (
        SupportedVersionsClientHello((TLS13,))
    )
    groups = find_typed(ch.extensions, SupportedGroups)
    assert groups is not None and groups.groups[:4] == (0x1D, 0x17, 0x18, 0x19)
    key_share = find_typed(ch.extensions, KeyShareClientHello)
    assert key_share is not None
    [share] = key_share.shares
    assert share.group == NamedGroup.x25519
    assert share.key_exchange.hex().startswith("99381de560e4bd43")
    assert find_extension(ch.extensions, ExtensionType.record_size_limit) == b"\x40\x01"


def test_rfc8448_server_hello_fields() -> None:
    sh = parse_full(RFC8448_SERVER_HELLO)
    assert isinstance(sh, ServerHello)
    assert not sh.is_hello_retry_request
    assert sh.legacy_version == TLS12
    assert sh.legacy_session_id_echo == b""
    assert sh.cipher_suite == CipherSuite.TLS_AES_128_GCM_SHA256
    assert sh.legacy_compression_method == 0
    assert find_typed(sh.extensions, SupportedVersionsServerHello) == (
        SupportedVersionsServerHello(TLS13)
    )
    key_share = find_typed(sh.extensions, KeyShareServerHello)
    assert key_share is not None
    assert key_share.share.group == NamedGroup.x25519
    assert key_share.share.key_exchange.hex().endswith("4e751f0f")


def test_rfc8448_server_flight_fields() -> None:
    ee = parse_full(RFC8448_ENCRYPTED_EXTENSIONS)
    assert isinstance(ee, EncryptedExtensions)
    assert [e.extension_type for e in ee.extensions] == [10, 28, 0]
    assert find_extension(ee.extensions, ExtensionType.server_name) == b""

    cert = parse_full(RFC8448_CERTIFICATE)
    assert isinstance(cert, Certificate)
    assert cert.certificate_request_context == b""
    [entry] = cert.certificate_list
    assert len(entry.cert_data) == 0x1B0
    assert entry.cert_data[:4] == b"\x30\x82\x01\xac"
    assert entry.extensions == ()
    assert "bytes" in repr(entry) and len(repr(entry)) < 100

    cv = parse_full(RFC8448_CERTIFICATE_VERIFY)
    assert isinstance(cv, CertificateVerify)
    assert cv.algorithm == SignatureScheme.rsa_pss_rsae_sha256
    assert len(cv.signature) == 128

    fin = parse_full(RFC8448_SERVER_FINISHED)
    assert isinstance(fin, Finished)
    assert len(fin.verify_data) == 32


# --- examples built by hand -------------------------------------------------


def test_hello_without_extensions_parses_with_none() -> None:
    # A TLS 1.2-style hello may end after the compression methods; the state
    # machine refuses it with protocol_version, not the codec.
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x00\x2f" + b"\x01\x00"
    ch = parse_handshake_message(HandshakeType.client_hello, body)
    assert isinstance(ch, ClientHello)
    assert ch.extensions == ()
    assert ch.cipher_suites == (0x002F,)
    assert ch.encode()[4:] == body
    sh_body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x2f" + b"\x00"
    sh = parse_handshake_message(HandshakeType.server_hello, sh_body)
    assert isinstance(sh, ServerHello) and sh.extensions == ()
    assert sh.encode()[4:] == sh_body


def test_hello_retry_request_is_recognised() -> None:
    hrr = ServerHello(HELLO_RETRY_REQUEST_RANDOM, b"", 0x1301, (Extension(43, b"\x03\x04"),))
    assert hrr.is_hello_retry_request
    parsed = parse_full(hrr.encode())
    assert isinstance(parsed, ServerHello) and parsed.is_hello_retry_request


def test_client_hello_legacy_version_is_keyword_and_defaults() -> None:
    ch = ClientHello(bytes(32), b"", (0x1301,), b"\x00", ())
    assert ch.legacy_version == TLS12
    ch10 = ClientHello(bytes(32), b"", (0x1301,), b"\x00", (), legacy_version=0x0301)
    assert ch10.encode()[4:6] == b"\x03\x01"


def test_encode_frames_the_body() -> None:
    assert KeyUpdate(1).encode() == b"\x18\x00\x00\x01\x01"
    assert EndOfEarlyData().encode() == b"\x05\x00\x00\x00"
    assert Finished(b"\xaa" * 48).encode() == b"\x14\x00\x00\x30" + b"\xaa" * 48
    w = Writer()
    KeyUpdate(0).serialize(w)
    assert w.getvalue() == b"\x00"


def test_certificate_request_and_ticket_examples() -> None:
    sig_algs = Extension(13, b"\x00\x02\x08\x04")
    body = b"\x00" + b"\x00\x08" + b"\x00\x0d\x00\x04\x00\x02\x08\x04"
    cr = parse_handshake_message(HandshakeType.certificate_request, body)
    assert cr == CertificateRequest(b"", (sig_algs,))
    nst_body = (
        (7200).to_bytes(4, "big") + b"\x01\x02\x03\x04" + b"\x01\x00" + b"\x00\x02ab" + b"\x00\x00"
    )
    nst = parse_handshake_message(HandshakeType.new_session_ticket, nst_body)
    assert nst == NewSessionTicket(7200, 0x01020304, b"\x00", b"ab", ())


# tlslite-ng imports asyncore, deprecated in Python 3.11.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_client_hello_agrees_with_tlslite() -> None:
    # An independent encoder: tlslite-ng builds the hello, we parse it.
    from tlslite.extensions import (
        ClientKeyShareExtension,
        KeyShareEntry,
        SNIExtension,
        SupportedVersionsExtension,
    )
    from tlslite.messages import ClientHello as TlsliteClientHello

    theirs = TlsliteClientHello().create(
        (3, 3),
        bytearray(range(32)),
        bytearray(b"\x07" * 32),
        [0x1301, 0x1302],
        extensions=[
            SNIExtension().create(bytearray(b"example.com")),
            SupportedVersionsExtension().create([(3, 4)]),
            ClientKeyShareExtension().create([KeyShareEntry().create(29, bytearray(32))]),
        ],
    )
    encoded = bytes(theirs.write())
    ch = parse_full(encoded)
    assert isinstance(ch, ClientHello)
    assert ch.random == bytes(range(32))
    assert ch.legacy_session_id == b"\x07" * 32
    assert ch.cipher_suites == (0x1301, 0x1302)
    assert find_typed(ch.extensions, ServerName) == ServerName("example.com")
    assert ch.encode() == encoded


# --- negative examples --------------------------------------------------------

VALID_CH_BODY = RFC8448_CLIENT_HELLO[4:]


def ch_body(
    *,
    session_id: bytes = b"",
    suites: bytes = b"\x00\x02\x13\x01",
    compression: bytes = b"\x01\x00",
    extensions: bytes = b"\x00\x06\x00\x2b\x00\x02\x03\x04",
) -> bytes:
    return (
        b"\x03\x03"
        + bytes(32)
        + bytes([len(session_id)])
        + session_id
        + (suites + compression + extensions)
    )


def test_ch_body_helper_is_valid() -> None:
    assert isinstance(parse_handshake_message(1, ch_body()), ClientHello)


def test_hellos_with_an_empty_extension_block_parse() -> None:
    # RFC 5246 §7.4.1.2: a present block is extensions<0..2^16-1>; what the
    # hello then lacks is the state machine's to refuse, not the decoder's.
    hello = parse_handshake_message(1, ch_body(extensions=b"\x00\x00"))
    assert isinstance(hello, ClientHello) and hello.extensions == ()
    server_hello = b"\x03\x03" + bytes(32) + b"\x00\xc0\x2b\x00\x00\x00"
    assert parse_handshake_message(2, server_hello).extensions == ()  # type: ignore[attr-defined]


DECODE_ERRORS = [
    ("short random", 1, b"\x03\x03" + bytes(31)),
    ("session id of 33 bytes", 1, ch_body(session_id=bytes(33))),
    ("no cipher suites", 1, ch_body(suites=b"\x00\x00")),
    ("odd-length cipher_suites", 1, ch_body(suites=b"\x00\x03\x13\x01\x13")),
    ("cipher_suites of 2^16-1 bytes", 1, ch_body(suites=b"\xff\xff" + bytes(0xFFFF))),
    ("no compression methods", 1, ch_body(compression=b"\x00")),
    ("extension block cut short", 1, ch_body(extensions=b"\x00\x06\x00\x2b\x00\x02")),
    ("half an extension length", 1, ch_body(extensions=b"\x00")),
    ("trailing byte", 1, ch_body() + b"\x00"),
    ("server hello session id of 33", 2, b"\x03\x03" + bytes(32) + b"\x21" + bytes(36)),
    ("server hello without method", 2, b"\x03\x03" + bytes(32) + b"\x00\x13\x01"),
    ("encrypted extensions empty body", 8, b""),
    ("encrypted extensions trailing", 8, b"\x00\x00\x00"),
    ("certificate request no extensions", 13, b"\x00\x00\x00"),
    ("certificate request no context", 13, b""),
    ("certificate empty cert_data", 11, b"\x00\x00\x00\x05\x00\x00\x00\x00\x00"),
    ("certificate entry cut short", 11, b"\x00\x00\x00\x04\x00\x00\x01\xaa"),
    ("certificate list overruns", 11, b"\x00\x00\x01\x00"),
    ("certificate verify short signature", 15, b"\x08\x04\x00\x02\xaa"),
    ("certificate verify trailing", 15, b"\x08\x04\x00\x00\x00"),
    ("key update empty", 24, b""),
    ("key update trailing", 24, b"\x00\x00"),
    ("ticket empty", 4, bytes(8) + b"\x00" + b"\x00\x00" + b"\x00\x00"),
    ("ticket extensions of 2^16-1", 4, bytes(8) + b"\x00\x00\x01t\xff\xff" + bytes(0xFFFF)),
    ("end of early data non-empty", 5, b"\x00"),
]


@pytest.mark.parametrize(
    ("msg_type", "body"), [c[1:] for c in DECODE_ERRORS], ids=[c[0] for c in DECODE_ERRORS]
)
def test_malformed_body_is_decode_error(msg_type: int, body: bytes) -> None:
    assert alert_of(msg_type, body) is AlertDescription.decode_error


def test_duplicate_extension_in_hello_is_illegal_parameter() -> None:
    ext = b"\x00\x2b\x00\x02\x03\x04"
    body = ch_body(extensions=b"\x00\x0c" + ext + ext)
    assert alert_of(HandshakeType.client_hello, body) is AlertDescription.illegal_parameter
    ee = b"\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00"
    assert alert_of(HandshakeType.encrypted_extensions, ee) is AlertDescription.illegal_parameter


@pytest.mark.parametrize("value", [2, 3, 0xFF])
def test_key_update_other_values_are_illegal_parameter(value: int) -> None:
    assert alert_of(HandshakeType.key_update, bytes([value])) is AlertDescription.illegal_parameter


@pytest.mark.parametrize(
    "msg_type", [0, 3, 6, 12, 14, 16, 21, 22, 23, 25, HandshakeType.message_hash, 255]
)
def test_unknown_type_is_unexpected_message(msg_type: int) -> None:
    assert alert_of(msg_type, VALID_CH_BODY) is AlertDescription.unexpected_message


@pytest.mark.parametrize(
    "message",
    [
        ClientHello(bytes(31), b"", (0x1301,), b"\x00", ()),
        ClientHello(bytes(32), bytes(33), (0x1301,), b"\x00", ()),
        ClientHello(bytes(32), b"", (), b"\x00", ()),
        ClientHello(bytes(32), b"", (0x1301,), b"", ()),
        ServerHello(bytes(33), b"", 0x1301, ()),
        CertificateRequest(b"", ()),
        Certificate(b"", (CertificateEntry(b"", ()),)),
        KeyUpdate(2),
        NewSessionTicket(0, 0, b"", b"", ()),
    ],
)
def test_encoding_what_we_would_not_parse_is_refused(message: HandshakeMessage) -> None:
    with pytest.raises(ValueError):
        message.encode()


# --- properties -----------------------------------------------------------


@given(tls_st.handshake_messages())
def test_round_trip(message: HandshakeMessage) -> None:
    encoded = message.encode()
    assert encoded[0] == message.msg_type
    assert int.from_bytes(encoded[1:4], "big") == len(encoded) - 4
    parsed = parse_handshake_message(encoded[0], memoryview(encoded)[4:])
    assert parsed == message
    assert parsed.encode() == encoded
    w = Writer()
    message.serialize(w)
    assert w.getvalue() == encoded[4:]


@given(st.integers(0, 255), st.binary(max_size=96))
def test_parse_is_total_on_arbitrary_bytes(msg_type: int, body: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_handshake_message(msg_type, body)


@given(st.data())
def test_parse_of_mutations_is_total_and_canonical(data: st.DataObject) -> None:
    message = data.draw(tls_st.handshake_messages())
    body = message.encode()[4:]
    mutated = data.draw(tls_st.mutations(body))
    try:
        parsed = parse_handshake_message(message.msg_type, mutated)
    except ProtocolError:
        return
    # Messages keep everything they read, so any body that parses re-encodes
    # to itself: nothing a peer sent is silently dropped or normalised.
    assert parsed.encode()[4:] == mutated


@given(st.binary(max_size=64))
def test_finished_takes_the_whole_body(body: bytes) -> None:
    parsed = parse_handshake_message(HandshakeType.finished, body)
    assert parsed == Finished(body)


def test_parse_accepts_a_reader_positioned_mid_buffer() -> None:
    r = Reader(b"junk" + RFC8448_SERVER_FINISHED[4:])
    r.fixed(4)
    assert Finished.parse(r) == Finished(RFC8448_SERVER_FINISHED[4:])
