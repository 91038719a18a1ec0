"""Every TLS 1.2 refusal of our server, each with its exact alert (RFC 5246,
5746, 7507, 7627, 8422, 8446 §4.1.3), from hellos and records built by hand."""

from __future__ import annotations

import dataclasses

import pytest

from pinata.tls.config import ServerConfig
from pinata.tls.connection import ServerConnection
from pinata.tls.constants import (
    TLS12,
    TLS13,
    CipherSuite,
    ContentType,
    ExtensionType,
    NamedGroup,
    SignatureScheme,
)
from pinata.tls.errors import AlertDescription, Cause, ProtocolError
from pinata.tls.events import ConnectionFailed, Event
from pinata.tls.extensions import (
    EcPointFormats,
    Extension,
    RenegotiationInfo,
    SignatureAlgorithms,
    SupportedGroups,
    SupportedVersionsClientHello,
)
from pinata.tls.handshake.common12 import server_key_exchange_content
from pinata.tls.messages import (
    CertificateRequest12,
    ClientHello,
    ClientKeyExchange,
    Finished,
    HelloRequest,
    KeyUpdate,
    ServerHello,
    ServerKeyExchange,
    parse_handshake_message,
)
from pinata.tls.record import RecordDeframer
from pinata.tls.signatures import verify_tls12
from tests.tls.pairs import completed, failure, server_config
from tests.tls.peers import NOW, leaf
from tests.tls.tls12_scripted import (
    CHANGE_CIPHER_SPEC,
    SecondFlight,
    client_hello,
    default_extensions,
    handshake_messages,
    handshake_record,
    second_flight,
)

_A = AlertDescription
_ECDSA_AES128 = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256


def _server(**overrides: object) -> ServerConnection:
    config: ServerConfig = server_config("p256", client_auth=False, **overrides)
    return ServerConnection(config, now=NOW)


def _refused(events: list[Event], server: ServerConnection) -> ConnectionFailed:
    refused = failure(events)
    assert refused is not None and refused.sent, events
    # The last record out is the alert: in the clear before our keys are
    # on (level fatal, the description), protected after them (RFC 5246 §7.2).
    deframer = RecordDeframer()
    deframer.feed(server.data_to_send())
    records = []
    while (record := deframer.next_record()) is not None:
        records.append(record)
    last = records[-1]
    assert last.content_type == ContentType.alert and server.closed
    if len(last.fragment) == 2:
        assert bytes(last.fragment) == bytes((2, refused.alert))
    else:
        assert len(last.fragment) in (2 + 16, 2 + 8 + 16)
    return refused


def _refuse_hello(hello: ClientHello, **overrides: object) -> ConnectionFailed:
    server = _server(**overrides)
    return _refused(server.receive_data(handshake_record(hello.encode())), server)


def _without(ext_type: int) -> list[Extension]:
    return [e for e in default_extensions() if e.extension_type != ext_type]


def _replaced(ext: Extension) -> list[Extension]:
    return [ext if e.extension_type == ext.extension_type else e for e in default_extensions()]


def test_the_scripted_client_completes_a_handshake() -> None:
    # The baseline every refusal below departs from.
    server = _server()
    hello = client_hello()
    server.receive_data(handshake_record(hello.encode()))
    flight = second_flight(hello, server.data_to_send())
    event = completed(server.receive_data(flight.all))
    assert event is not None and event.version == TLS12 and server.version == TLS12


@pytest.mark.parametrize(
    ("hello", "cause", "alert"),
    [
        (client_hello(legacy_version=0x0302), Cause.version_too_old, _A.protocol_version),
        (client_hello(legacy_version=0x0301), Cause.version_too_old, _A.protocol_version),
        (client_hello(legacy_version=0x0300), Cause.version_too_old, _A.protocol_version),
        (
            client_hello(
                extensions=[
                    *default_extensions(),
                    SupportedVersionsClientHello((0x0302, 0x0301)).to_extension(),
                ]
            ),
            Cause.version_too_old,
            _A.protocol_version,
        ),
        (
            client_hello(extensions=_without(ExtensionType.renegotiation_info)),
            Cause.no_secure_renegotiation,
            _A.handshake_failure,
        ),
        (
            client_hello(extensions=_replaced(RenegotiationInfo(b"\x01" * 12).to_extension())),
            Cause.renegotiation_info_wrong,
            _A.handshake_failure,
        ),
        (
            client_hello(extensions=_without(ExtensionType.extended_master_secret)),
            Cause.no_extended_master_secret,
            _A.handshake_failure,
        ),
        (
            client_hello(extensions=_replaced(EcPointFormats((1, 2)).to_extension())),
            Cause.uncompressed_point_format_missing,
            _A.illegal_parameter,
        ),
        (client_hello(compression=b"\x01"), Cause.null_compression_missing, _A.illegal_parameter),
        (
            client_hello(extensions=_without(ExtensionType.signature_algorithms)),
            Cause.signature_algorithms_absent_tls12,
            _A.handshake_failure,
        ),
        (
            client_hello(cipher_suites=(0x009C, 0xC013)),  # RSA key exchange, CBC
            Cause.no_common_cipher_suite,
            _A.handshake_failure,
        ),
        (
            client_hello(cipher_suites=(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,)),
            Cause.no_common_cipher_suite,  # our key is ECDSA
            _A.handshake_failure,
        ),
        (
            client_hello(
                cipher_suites=(_ECDSA_AES128, CipherSuite.TLS_FALLBACK_SCSV),
            ),
            Cause.inappropriate_fallback,
            _A.inappropriate_fallback,
        ),
    ],
    ids=lambda v: v.name if isinstance(v, Cause) else "",
)
def test_hello_refusals(hello: ClientHello, cause: Cause, alert: AlertDescription) -> None:
    refused = _refuse_hello(hello)
    assert (refused.cause, refused.alert) == (cause, alert)


def test_no_common_group() -> None:
    p521 = SupportedGroups((NamedGroup.secp521r1,)).to_extension()
    hello = client_hello(extensions=_replaced(p521))
    refused = _refuse_hello(hello)
    assert (refused.cause, refused.alert) == (Cause.no_common_group, _A.handshake_failure)


def test_the_scsvs_alone_are_enough_and_fallback_is_fine_without_tls13() -> None:
    # RFC 5746 §3.6: the SCSV stands for an empty renegotiation_info.
    hello = client_hello(
        extensions=_without(ExtensionType.renegotiation_info),
        cipher_suites=(_ECDSA_AES128, CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV),
    )
    server = _server()
    server.receive_data(handshake_record(hello.encode()))
    assert completed(server.receive_data(second_flight(hello, server.data_to_send()).all))
    # RFC 7507 §3: a fallback to our highest version is no fallback.
    hello = client_hello(cipher_suites=(_ECDSA_AES128, CipherSuite.TLS_FALLBACK_SCSV))
    server = _server(versions=(TLS12,))
    server.receive_data(handshake_record(hello.encode()))
    assert completed(server.receive_data(second_flight(hello, server.data_to_send()).all))


def test_a_tls13_only_client_against_a_tls12_only_server() -> None:
    hello = client_hello(
        extensions=[*default_extensions(), SupportedVersionsClientHello((TLS13,)).to_extension()]
    )
    refused = _refuse_hello(hello, versions=(TLS12,))
    assert (refused.cause, refused.alert) == (Cause.no_common_version, _A.protocol_version)


@pytest.mark.parametrize(
    ("record", "cause", "alert"),
    [
        # An SSL 2.0-compatible ClientHello (RFC 5246 Appendix E.2).
        (bytes.fromhex("802e0103010015000000100700c0") + bytes(40), Cause.version_too_old,
         _A.protocol_version),
        (bytes.fromhex("1602030005") + bytes(5), Cause.record_version_unknown, _A.protocol_version),
        (bytes.fromhex("1803030003010000"), Cause.heartbeat_record, _A.unexpected_message),
        (CHANGE_CIPHER_SPEC, Cause.change_cipher_spec_not_allowed, _A.unexpected_message),
    ],
    ids=["sslv2_hello", "record_version", "heartbeat", "ccs_first"],
)  # fmt: skip
def test_record_refusals(record: bytes, cause: Cause, alert: AlertDescription) -> None:
    server = _server()
    refused = _refused(server.receive_data(record), server)
    assert (refused.cause, refused.alert) == (cause, alert)


def _after_hello(**overrides: object) -> tuple[ServerConnection, ClientHello, bytes]:
    server = _server(**overrides)
    hello = client_hello()
    server.receive_data(handshake_record(hello.encode()))
    return server, hello, server.data_to_send()


def test_change_cipher_spec_out_of_place() -> None:
    server, hello, flight = _after_hello()
    second = second_flight(hello, flight)
    # Before ClientKeyExchange: the keys are not even known.
    refused = _refused(server.receive_data(CHANGE_CIPHER_SPEC), server)
    assert (refused.cause, refused.alert) == (Cause.change_cipher_spec_out_of_place,
                                              _A.unexpected_message)  # fmt: skip
    # Twice.
    server, hello, flight = _after_hello()
    second = second_flight(hello, flight)
    server.receive_data(second.client_key_exchange + second.change_cipher_spec)
    refused = _refused(server.receive_data(CHANGE_CIPHER_SPEC), server)
    assert refused.cause in (Cause.change_cipher_spec_out_of_place, Cause.record_undecryptable)
    # A malformed one, where one is due.
    server, hello, flight = _after_hello()
    second = second_flight(hello, flight)
    server.receive_data(second.client_key_exchange)
    refused = _refused(server.receive_data(bytes((20, 3, 3, 0, 2, 1, 1))), server)
    assert (refused.cause, refused.alert) == (Cause.malformed_change_cipher_spec,
                                              _A.unexpected_message)  # fmt: skip


def test_finished_before_change_cipher_spec_is_unexpected() -> None:
    server, hello, flight = _after_hello()
    second = second_flight(hello, flight)
    plain_finished = handshake_record(Finished(bytes(12)).encode())
    refused = _refused(server.receive_data(second.client_key_exchange + plain_finished), server)
    assert (refused.cause, refused.alert) == (Cause.unexpected_handshake_message,
                                              _A.unexpected_message)  # fmt: skip


def test_bad_finished_is_decrypt_error() -> None:
    server, hello, flight = _after_hello()
    second = second_flight(hello, flight, corrupt_finished=True)
    refused = _refused(server.receive_data(second.all), server)
    assert (refused.cause, refused.alert) == (Cause.bad_finished, _A.decrypt_error)


def test_tampered_record_is_bad_record_mac() -> None:
    server, hello, flight = _after_hello()
    second = second_flight(hello, flight)
    finished = bytearray(second.finished)
    finished[-1] ^= 1
    refused = _refused(server.receive_data(second.client_key_exchange + CHANGE_CIPHER_SPEC
                                           + bytes(finished)), server)  # fmt: skip
    assert (refused.cause, refused.alert) == (Cause.record_undecryptable, _A.bad_record_mac)


def _established() -> tuple[ServerConnection, SecondFlight]:
    server, hello, flight = _after_hello()
    second = second_flight(hello, flight)
    assert completed(server.receive_data(second.all))
    deframer = RecordDeframer()
    deframer.feed(server.data_to_send())
    ccs, finished = deframer.next_record(), deframer.next_record()
    assert ccs is not None and bytes(ccs.fragment) == b"\x01" and finished is not None
    # Our Finished, protected: the client's keys open it as a handshake message.
    content_type, content = second.unprotector.open(finished)
    assert content_type == ContentType.handshake and bytes(content)[:4] == bytes((20, 0, 0, 12))
    return server, second


@pytest.mark.parametrize(
    ("message", "cause", "alerts"),
    [
        (client_hello().encode(), Cause.renegotiation_refused, [(1, 100), (1, 0)]),
        (HelloRequest().encode(), Cause.renegotiation_refused, [(1, 100), (1, 0)]),
        (KeyUpdate(0).encode(), Cause.key_update_in_tls12, [(2, 10)]),
    ],
    ids=["client_hello", "hello_request", "key_update"],
)
def test_after_the_handshake(message: bytes, cause: Cause, alerts: list[tuple[int, int]]) -> None:
    # Renegotiation: a warning no_renegotiation, then close_notify, then
    # nothing (RFC 5246 §7.2.2; tlsfuzzer's test-renegotiation-disabled).
    server, second = _established()
    events = server.receive_data(second.protector.seal(ContentType.handshake, message))
    refused = failure(events)
    assert refused is not None and refused.cause == cause and server.closed
    deframer = RecordDeframer()
    deframer.feed(server.data_to_send())
    sent = []
    while (record := deframer.next_record()) is not None:
        content_type, content = second.unprotector.open(record)
        assert content_type == ContentType.alert
        sent.append((content[0], content[1]))
    assert sent == alerts


def test_application_data_flows_and_alerts_are_encrypted() -> None:
    server, second = _established()
    protector, unprotector = second.protector, second.unprotector
    events = server.receive_data(protector.seal(ContentType.application_data, b"hi"))
    assert [getattr(e, "data", None) for e in events] == [b"hi"]
    server.close()
    deframer = RecordDeframer()
    deframer.feed(server.data_to_send())
    record = deframer.next_record()
    assert record is not None and record.content_type == ContentType.alert
    assert unprotector.open(record) == (ContentType.alert, b"\x01\x00")


def _server_hello_and_key_exchange(flight: bytes) -> tuple[ServerHello, ServerKeyExchange]:
    messages = handshake_messages(flight)
    hello = parse_handshake_message(2, messages[0][4:], TLS12)
    ske = parse_handshake_message(12, messages[2][4:], TLS12)
    assert isinstance(hello, ServerHello) and isinstance(ske, ServerKeyExchange)
    return hello, ske


def test_our_server_hello_offers_nothing_we_do_not_do() -> None:
    # A hello asking for a session, tickets, heartbeat, encrypt_then_mac,
    # max_fragment_length, truncated_hmac and OCSP gets none of them.
    asked = [
        Extension(ExtensionType.session_ticket, b""),
        Extension(ExtensionType.heartbeat, b"\x01"),
        Extension(ExtensionType.encrypt_then_mac, b""),
        Extension(ExtensionType.max_fragment_length, b"\x01"),
        Extension(4, b""),  # truncated_hmac (RFC 6066 §7)
        Extension(ExtensionType.status_request, b"\x01\x00\x00\x00\x00"),
    ]
    hello = dataclasses.replace(
        client_hello(extensions=[*default_extensions(), *asked]),
        legacy_session_id=bytes(range(32)),
        legacy_compression_methods=b"\x01\x00",
    )
    server = _server()
    server.receive_data(handshake_record(hello.encode()))
    server_hello, _ = _server_hello_and_key_exchange(server.data_to_send())
    assert server_hello.legacy_version == TLS12
    assert server_hello.legacy_session_id_echo == b""
    assert server_hello.legacy_compression_method == 0
    assert [e.extension_type for e in server_hello.extensions] == [
        ExtensionType.renegotiation_info,
        ExtensionType.extended_master_secret,
        ExtensionType.ec_point_formats,
    ]
    # ec_point_formats only in reply to the client's (RFC 8422 §5.2).
    hello = client_hello(extensions=_without(ExtensionType.ec_point_formats))
    server = _server()
    server.receive_data(handshake_record(hello.encode()))
    server_hello, _ = _server_hello_and_key_exchange(server.data_to_send())
    assert ExtensionType.ec_point_formats not in [e.extension_type for e in server_hello.extensions]


def test_rsa_pkcs1_is_signed_when_it_is_all_the_client_offers() -> None:
    sigalgs = SignatureAlgorithms((SignatureScheme.rsa_pkcs1_sha384,)).to_extension()
    hello = client_hello(
        extensions=_replaced(sigalgs),
        cipher_suites=(CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,),
    )
    server = ServerConnection(server_config("rsa2048", client_auth=False), now=NOW)
    server.receive_data(handshake_record(hello.encode()))
    flight = server.data_to_send()
    server_hello, ske = _server_hello_and_key_exchange(flight)
    assert ske.algorithm == SignatureScheme.rsa_pkcs1_sha384
    content = server_key_exchange_content(hello.random, server_hello.random, ske.params())
    leaf_key = leaf("server", "rsa2048")[1].public_key()
    verify_tls12(ske.algorithm, leaf_key, content, ske.signature)
    with pytest.raises(ProtocolError):  # the signature covers the randoms
        verify_tls12(ske.algorithm, leaf_key, bytes(32) + content[32:], ske.signature)
    assert completed(server.receive_data(second_flight(hello, flight).all))


@pytest.mark.parametrize(
    "schemes", [(0x0201,), (0x0203,), (0x0101,), (0x0301,)], ids=["rsa_sha1", "ecdsa_sha1",
                                                                   "rsa_md5", "rsa_sha224"]
)  # fmt: skip
def test_sha1_md5_and_sha224_are_never_signed(schemes: tuple[int, ...]) -> None:
    hello = client_hello(extensions=_replaced(SignatureAlgorithms(schemes).to_extension()))
    refused = _refuse_hello(hello)
    assert (refused.cause, refused.alert) == (Cause.no_common_signature_scheme,
                                              _A.handshake_failure)  # fmt: skip


@pytest.mark.parametrize("group", [NamedGroup.secp256r1, NamedGroup.x25519], ids=lambda g: g.name)
def test_a_bad_client_point_is_illegal_parameter(group: NamedGroup) -> None:
    hello = client_hello(extensions=_replaced(SupportedGroups((group,)).to_extension()))
    server = _server()
    server.receive_data(handshake_record(hello.encode()))
    server.data_to_send()
    # A compressed P-256 point (RFC 8422 §5.1.2: uncompressed only), or a
    # small-order X25519 point whose shared secret is zero (RFC 8422 §5.11).
    point = b"\x02" + bytes(range(32)) if group == NamedGroup.secp256r1 else bytes(32)
    refused = _refused(server.receive_data(handshake_record(ClientKeyExchange(point).encode())),
                       server)  # fmt: skip
    assert (refused.cause, refused.alert) == (Cause.invalid_key_share, _A.illegal_parameter)


def test_the_certificate_request_names_the_configured_authorities() -> None:
    config = server_config("p256")  # client authentication, the test CA named
    assert config.certificate_authorities
    server = ServerConnection(config, now=NOW)
    server.receive_data(handshake_record(client_hello().encode()))
    messages = handshake_messages(server.data_to_send())
    assert [m[0] for m in messages] == [2, 11, 12, 13, 14]
    request = parse_handshake_message(13, messages[3][4:], TLS12)
    assert isinstance(request, CertificateRequest12)
    assert request.certificate_authorities == config.certificate_authorities
    assert request.certificate_types == (64, 1)  # ecdsa_sign, rsa_sign
    # What we accept in CertificateVerify: 1.3's schemes and PKCS#1 with SHA-2.
    assert SignatureScheme.rsa_pkcs1_sha256 in request.supported_signature_algorithms
    assert 0x0201 not in request.supported_signature_algorithms


_SCSV = CipherSuite.TLS_FALLBACK_SCSV


def _without_ems_and_formats() -> list[Extension]:
    gone = (ExtensionType.extended_master_secret, ExtensionType.ec_point_formats)
    return [e for e in default_extensions() if e.extension_type not in gone]


@pytest.mark.parametrize(
    ("hello", "cause"),
    [
        # RFC 7507 §3 compares the client's highest version with ours, and the
        # signal comes first (tlsfuzzer's test-fallback-scsv, OpenSSL).
        (client_hello(legacy_version=0x0302, cipher_suites=(_ECDSA_AES128, _SCSV)),
         Cause.inappropriate_fallback),
        (client_hello(extensions=[*default_extensions(),
                                  SupportedVersionsClientHello((TLS12,)).to_extension()],
                      cipher_suites=(_ECDSA_AES128, _SCSV)),
         Cause.inappropriate_fallback),
        # Well-formedness before policy (tlsfuzzer's test-point-extension): a
        # hello that also lacks the extended master secret.
        (client_hello(extensions=[Extension(ExtensionType.ec_point_formats, b"\x00"),
                                  *_without_ems_and_formats()]),
         Cause.malformed_message),
        (client_hello(extensions=[EcPointFormats((1,)).to_extension(),
                                  *_without_ems_and_formats()]),
         Cause.uncompressed_point_format_missing),
    ],
    ids=["tls11_with_scsv", "sv12_with_scsv", "empty_point_formats", "no_uncompressed"],
)  # fmt: skip
def test_which_refusal_comes_first(hello: ClientHello, cause: Cause) -> None:
    assert _refuse_hello(hello).cause == cause


def test_a_legacy_0x0304_hello_with_the_scsv_is_no_fallback() -> None:
    # Without supported_versions a 1.3 server negotiates 1.2 (RFC 8446
    # §4.2.1), but the client's highest, 0x0304, is not below ours.
    hello = client_hello(legacy_version=0x0304, cipher_suites=(_ECDSA_AES128, _SCSV))
    server = _server()
    server.receive_data(handshake_record(hello.encode()))
    assert completed(server.receive_data(second_flight(hello, server.data_to_send()).all))
    assert server.version == TLS12
