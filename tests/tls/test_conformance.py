"""The conformance problems tlsfuzzer and a reading found (issue 13), each
with the exact alert it must now get, and the limits on traffic a peer can
send without end (KeyUpdate, warning alerts, empty records)."""

from __future__ import annotations

import dataclasses
import os

import pytest

from pinata.tls.connection import (
    MAX_CLIENT_HELLO,
    MAX_EMPTY_RECORDS_IN_A_ROW,
    MAX_KEY_UPDATES_IN_A_ROW,
    MAX_WARNING_ALERTS_IN_A_ROW,
    ClientConnection,
    ServerConnection,
)
from pinata.tls.constants import ContentType, ExtensionType, HandshakeType, NamedGroup
from pinata.tls.errors import AlertDescription, Cause
from pinata.tls.events import ApplicationData
from pinata.tls.extensions import (
    Extension,
    KeyShareEntry,
    ServerName,
    SignatureAlgorithms,
    SupportedGroups,
)
from pinata.tls.key_exchange import ClientKeyShare
from pinata.tls.messages import ClientHello, KeyUpdate
from pinata.tls.record import encode_plaintext_records
from pinata.tls.stages import WriteTraffic
from tests.tls.pairs import completed, failure, new_pair, pump, server_config
from tests.tls.peers import NOW
from tests.tls.test_refusals import (
    _after_retry,
    _rewrite,
    _second_hello,
    first_client_hello,
    hello_record,
    server_alert_for,
    with_extensions,
)

A = AlertDescription
_EARLY_DATA = Extension(ExtensionType.early_data, b"")
# A record early data could be: under keys we never derived it cannot open.
_EARLY_RECORD = b"\x17\x03\x03\x00\x20" + b"\xaa" * 32


def _established() -> tuple[ClientConnection, ServerConnection]:
    client, server = new_pair()
    client_events, server_events = pump(client, server)
    assert completed(client_events) and completed(server_events)
    return client, server


def _sealed(sender: ClientConnection | ServerConnection, content_type: int, data: bytes) -> bytes:
    write = sender._write
    assert isinstance(write, WriteTraffic)
    return write.protector.seal(content_type, data)


# ---- 1. zero-length application_data before keys ---------------------------


def test_zero_length_application_data_before_keys_is_unexpected_message() -> None:
    assert server_alert_for(b"\x17\x03\x03\x00\x00").alert == A.unexpected_message


def test_zero_length_application_data_while_skipping_early_data_is_unexpected() -> None:
    # After a HelloRetryRequest to a client offering early data the server
    # has no keys and skips early data; a record too short to be protected
    # is not early data.
    server = ServerConnection(server_config(groups=(NamedGroup.secp384r1,)), now=NOW)
    hello = with_extensions(first_client_hello(), lambda exts: [*exts, _EARLY_DATA])
    assert failure(server.receive_data(hello_record(hello))) is None
    assert server.receive_data(_EARLY_RECORD) == []
    assert server_alert_for(b"\x17\x03\x03\x00\x00", server).alert == A.unexpected_message


# ---- 2. application data inside a fragmented post-handshake message -------


@pytest.mark.parametrize("cut", [1, 4])
def test_application_data_between_key_update_fragments_is_unexpected(cut: int) -> None:
    client, server = _established()
    message = KeyUpdate(0).encode()
    stream = (
        _sealed(client, ContentType.handshake, message[:cut])
        + _sealed(client, ContentType.application_data, b"interleaved")
        + _sealed(client, ContentType.handshake, message[cut:])
    )
    events = server.receive_data(stream)
    f = failure(events)
    assert f is not None and f.sent and f.alert == A.unexpected_message
    assert not any(isinstance(e, ApplicationData) for e in events)


def test_a_fragmented_key_update_alone_is_accepted() -> None:
    client, server = _established()
    message = KeyUpdate(0).encode()
    stream = _sealed(client, ContentType.handshake, message[:2]) + _sealed(
        client, ContentType.handshake, message[2:]
    )
    assert server.receive_data(stream) == []
    assert not server.closed


# ---- 3. zero-length alert record: unexpected_message (decided) ------------


def test_zero_length_plaintext_alert_record_is_unexpected_message() -> None:
    f = server_alert_for(b"\x15\x03\x03\x00\x00")
    assert f.alert == A.unexpected_message and f.cause is Cause.empty_alert_record


def test_zero_length_protected_alert_record_is_unexpected_message() -> None:
    client, server = _established()
    f = failure(server.receive_data(_sealed(client, ContentType.alert, b"")))
    assert f is not None and f.sent and f.alert == A.unexpected_message


@pytest.mark.parametrize("body", [b"\x02", b"\x02\x28\x02"], ids=["one_byte", "three_bytes"])
def test_malformed_alert_record_is_decode_error(body: bytes) -> None:
    stream = b"\x15\x03\x03" + len(body).to_bytes(2, "big") + body
    assert server_alert_for(stream).alert == A.decode_error


# ---- 4. the early-data skip ends with the second ClientHello --------------


def _second_flight_after_early_data() -> ServerConnection:
    server = ServerConnection(
        server_config(groups=(NamedGroup.secp384r1,), client_auth=False), now=NOW
    )
    hello = with_extensions(first_client_hello(), lambda exts: [*exts, _EARLY_DATA])
    server.receive_data(hello_record(hello))
    hrr = _after_retry_parse(server.data_to_send())
    # Early data of the first flight, still on its way: skipped.
    assert server.receive_data(_EARLY_RECORD * 2) == []
    share = ClientKeyShare.generate(NamedGroup.secp384r1, os.urandom)
    again = _second_hello(hello, hrr, KeyShareEntry(share.group, share.key_exchange))
    again = with_extensions(
        again, lambda exts: [e for e in exts if e.extension_type != ExtensionType.early_data]
    )
    assert failure(server.receive_data(hello_record(again))) is None
    assert server.data_to_send()
    return server


def _after_retry_parse(out: bytes):  # type: ignore[no-untyped-def]
    from pinata.tls.codec import Reader
    from pinata.tls.messages import ServerHello
    from tests.tls.test_refusals import handshake_bytes

    return ServerHello.parse(Reader(handshake_bytes(out)[4:]))


def test_undecryptable_record_after_second_client_hello_is_bad_record_mac() -> None:
    server = _second_flight_after_early_data()
    f = server_alert_for(_EARLY_RECORD, server)
    assert f.alert == A.bad_record_mac and f.cause is Cause.record_undecryptable


# ---- 5. message lengths: decode_error by type, a policy cap otherwise -----


def _client_finished_header(length: int) -> tuple[ClientConnection, ServerConnection]:
    client, server = new_pair()
    _rewrite(
        client,
        HandshakeType.finished,
        lambda raw: bytes([HandshakeType.finished]) + length.to_bytes(3, "big") + raw[4:],
    )
    return client, server


@pytest.mark.parametrize("length", [49, 16 * 1024, 128 * 1024, 2**24 - 1])
def test_oversized_finished_is_decode_error(length: int) -> None:
    client, server = _client_finished_header(length)
    _, server_events = pump(client, server)
    f = failure(server_events)
    assert f is not None and f.sent and f.alert == A.decode_error
    assert f.cause is Cause.message_too_long_for_type


def test_client_hello_over_its_grammar_is_decode_error() -> None:
    header = bytes([HandshakeType.client_hello]) + (MAX_CLIENT_HELLO + 1).to_bytes(3, "big")
    stream = encode_plaintext_records(ContentType.handshake, header)
    assert server_alert_for(stream).alert == A.decode_error


def test_other_messages_over_the_policy_cap_are_illegal_parameter() -> None:
    # The client's Certificate, where the server expects it, announced at
    # 1 MiB: grammatical (up to 2^24-1) but over our cap.
    client, server = new_pair()
    _rewrite(
        client,
        HandshakeType.certificate,
        lambda raw: bytes([HandshakeType.certificate]) + (2**20).to_bytes(3, "big") + raw[4:],
    )
    _, server_events = pump(client, server)
    f = failure(server_events)
    assert f is not None and f.sent and f.alert == A.illegal_parameter
    assert f.cause is Cause.message_over_cap


@pytest.mark.parametrize(
    "msg_type",
    [HandshakeType.server_hello, HandshakeType.certificate, HandshakeType.finished,
     HandshakeType.key_update, HandshakeType.certificate_request],
)
def test_a_first_message_of_another_type_is_unexpected_at_its_header(msg_type: int) -> None:
    # RFC 8446 §6.2 / RFC 5246 §7.2.2: the wrong message is unexpected_message,
    # whatever its body or its announced length (tlsfuzzer's "Client Hello
    # type fuzz"): the type is judged before the length or the body.
    for length in (0, 40, 2**20):
        header = bytes([msg_type]) + length.to_bytes(3, "big")
        stream = encode_plaintext_records(ContentType.handshake, header + bytes(min(length, 40)))
        f = server_alert_for(stream)
        assert (f.alert, f.cause) == (A.unexpected_message, Cause.unexpected_handshake_message)


def test_the_largest_signature_algorithms_list_that_fits_completes() -> None:
    hello = first_client_hello()
    others = sum(
        4 + len(e.extension_data)
        for e in hello.extensions
        if e.extension_type != ExtensionType.signature_algorithms
    )
    # The extensions block is at most 2^16-1 bytes (§4.1.2): fill all of it.
    count = (0xFFFF - others - 4 - 2) // 2
    offered = SignatureAlgorithms.parse(
        next(
            e.extension_data
            for e in hello.extensions
            if e.extension_type == ExtensionType.signature_algorithms
        )
    ).schemes
    schemes = tuple(0xFE00 + i % 0x100 for i in range(count - len(offered))) + offered
    big = SignatureAlgorithms(schemes).to_extension()
    hello = with_extensions(
        hello, lambda exts: [big if e.extension_type == big.extension_type else e for e in exts]
    )
    encoded = hello.encode()
    assert len(encoded) > 64 * 1024 + 4 and len(encoded) <= MAX_CLIENT_HELLO + 4
    server = ServerConnection(server_config(client_auth=False), now=NOW)
    assert failure(server.receive_data(hello_record(hello))) is None
    assert server.data_to_send()


# ---- 6. a second ClientHello may change only what §4.1.2 lists ------------


def _retry_hello(edit):  # type: ignore[no-untyped-def]
    server, hello, hrr = _after_retry()
    share = ClientKeyShare.generate(NamedGroup.secp384r1, os.urandom)
    again = _second_hello(hello, hrr, KeyShareEntry(share.group, share.key_exchange))
    return server, edit(again)


def _swap_first_two(hello: ClientHello) -> ClientHello:
    exts = list(hello.extensions)
    exts[0], exts[1] = exts[1], exts[0]
    return dataclasses.replace(hello, extensions=tuple(exts))


_CHANGES = {
    "random": lambda h: dataclasses.replace(h, random=bytes(32)),
    "session_id": lambda h: dataclasses.replace(h, legacy_session_id=bytes(32)),
    "cipher_suites": lambda h: dataclasses.replace(h, cipher_suites=h.cipher_suites[:1]),
    "legacy_version": lambda h: dataclasses.replace(h, legacy_version=0x0301),
    "extension_order": _swap_first_two,
    "extension_content": lambda h: with_extensions(
        h,
        lambda exts: [
            SupportedGroups((NamedGroup.secp384r1,)).to_extension()
            if e.extension_type == ExtensionType.supported_groups
            else e
            for e in exts
        ],
    ),
    "extension_added": lambda h: with_extensions(
        h, lambda exts: [ServerName("other.example").to_extension(), *exts]
    ),
    "extension_removed": lambda h: with_extensions(
        h,
        lambda exts: [
            e for e in exts if e.extension_type != ExtensionType.signature_algorithms_cert
        ],
    ),
}


@pytest.mark.parametrize("change", sorted(_CHANGES))
def test_a_changed_second_client_hello_is_illegal_parameter(change: str) -> None:
    server, again = _retry_hello(_CHANGES[change])
    f = server_alert_for(hello_record(again), server)
    assert f.alert == A.illegal_parameter and f.cause is Cause.second_client_hello_changed


def test_a_second_client_hello_may_add_padding() -> None:
    padding = Extension(ExtensionType.padding, bytes(100))
    server, again = _retry_hello(lambda h: with_extensions(h, lambda exts: [padding, *exts]))
    assert failure(server.receive_data(hello_record(again))) is None
    assert server.data_to_send()


# ---- limits: KeyUpdate, warning alerts, empty records ---------------------


def test_key_updates_in_a_row_are_limited() -> None:
    client, server = _established()
    sealed = []
    for _ in range(MAX_KEY_UPDATES_IN_A_ROW + 1):
        client.update_keys()
        sealed.append(client.data_to_send())
    for record in sealed[:-1]:
        assert failure(server.receive_data(record)) is None
    f = failure(server.receive_data(sealed[-1]))
    assert f is not None and f.alert == A.unexpected_message


def test_application_data_resets_the_key_update_count() -> None:
    client, server = _established()
    for _ in range(3 * MAX_KEY_UPDATES_IN_A_ROW):
        client.update_keys()
        client.send_application_data(b"data")
        events = server.receive_data(client.data_to_send())
        assert failure(events) is None and [e for e in events if isinstance(e, ApplicationData)]


def test_warning_alerts_in_a_row_are_limited() -> None:
    client, server = _established()
    # user_canceled (90) at warning level: §6.1 lets it pass, not without end.
    records = [
        _sealed(client, ContentType.alert, b"\x01\x5a")
        for _ in range(MAX_WARNING_ALERTS_IN_A_ROW + 1)
    ]
    for record in records[:-1]:
        assert failure(server.receive_data(record)) is None
    f = failure(server.receive_data(records[-1]))
    assert f is not None and f.alert == A.unexpected_message


def test_empty_records_in_a_row_are_limited() -> None:
    client, server = _established()
    records = [
        _sealed(client, ContentType.application_data, b"")
        for _ in range(MAX_EMPTY_RECORDS_IN_A_ROW + 1)
    ]
    for record in records[:-1]:
        assert server.receive_data(record) == []
    f = failure(server.receive_data(records[-1]))
    assert f is not None and f.alert == A.unexpected_message


# ---- the §4.2 table, used by both roles ------------------------------------


def test_the_table_matches_rfc_8446_section_4_2_for_a_few_rows() -> None:
    from pinata.tls.extensions import ALLOWED_IN, Carrier, allowed_in

    assert ALLOWED_IN[ExtensionType.oid_filters] == frozenset({Carrier.certificate_request})
    assert allowed_in(Carrier.hello_retry_request) == {
        ExtensionType.key_share,
        ExtensionType.cookie,
        ExtensionType.supported_versions,
    }
    # Every extension TLS 1.3 uses may open a ClientHello but oid_filters.
    assert {t for t, c in ALLOWED_IN.items() if Carrier.client_hello not in c} == {
        ExtensionType.oid_filters
    }


def test_a_known_extension_misplaced_in_a_client_hello_is_illegal_parameter() -> None:
    oid_filters = Extension(ExtensionType.oid_filters, b"\x00\x00")
    hello = with_extensions(first_client_hello(), lambda exts: [*exts, oid_filters])
    f = server_alert_for(hello_record(hello))
    assert f.alert == A.illegal_parameter and f.cause is Cause.extension_not_allowed_here


def test_a_known_extension_misplaced_in_a_certificate_request_is_illegal_parameter() -> None:
    from pinata.tls.messages import CertificateRequest
    from tests.tls.test_refusals import _client_alert

    def with_key_share(raw: bytes) -> bytes:
        from pinata.tls.codec import Reader

        request = CertificateRequest.parse(Reader(raw[4:]))
        extra = Extension(ExtensionType.key_share, b"\x00\x00")
        return CertificateRequest(b"", (*request.extensions, extra)).encode()

    f = _client_alert(HandshakeType.certificate_request, with_key_share)
    assert f.alert == A.illegal_parameter and f.cause is Cause.extension_not_allowed_here


def test_an_unknown_extension_in_a_certificate_request_is_ignored() -> None:
    from pinata.tls.messages import CertificateRequest
    from tests.tls.test_refusals import _rewrite

    def with_unknown(raw: bytes) -> bytes:
        from pinata.tls.codec import Reader

        request = CertificateRequest.parse(Reader(raw[4:]))
        return CertificateRequest(b"", (*request.extensions, Extension(0x7777, b"x"))).encode()

    client, server = new_pair()
    _rewrite(server, HandshakeType.certificate_request, with_unknown)
    client_events, _ = pump(client, server)
    # The request was accepted: the client went on to the CertificateVerify,
    # which fails only because the server signed a transcript holding the
    # request without the extension.
    f = failure(client_events)
    assert f is not None and f.cause is Cause.bad_signature


@pytest.mark.parametrize(
    ("extension_type", "body"),
    [
        (ExtensionType.application_layer_protocol_negotiation, b"\x00\x00"),
        (ExtensionType.psk_key_exchange_modes, b"\x00"),
        (ExtensionType.early_data, b"\x00"),
        (ExtensionType.server_name, b"\x00"),
        (ExtensionType.signature_algorithms_cert, b"\x00\x01\x00"),
    ],
    ids=[
        "alpn_empty_list",
        "psk_modes_empty",
        "early_data_not_empty",
        "server_name_truncated",
        "signature_algorithms_cert_odd",
    ],
)
def test_a_malformed_client_hello_extension_we_do_not_act_on_is_decode_error(
    extension_type: ExtensionType, body: bytes
) -> None:
    ext = Extension(extension_type, body)
    hello = with_extensions(
        first_client_hello(),
        lambda exts: [e for e in exts if e.extension_type != extension_type] + [ext],
    )
    f = server_alert_for(hello_record(hello))
    assert f.alert == A.decode_error and f.cause is Cause.malformed_message


def test_the_limits_are_the_figures_the_readme_states() -> None:
    from pinata.tls import connection

    assert connection.MAX_HANDSHAKE_MESSAGE == 16 * 1024
    assert connection.MAX_MESSAGE_BY_TYPE[HandshakeType.certificate] == 64 * 1024
    assert connection.MAX_CLIENT_HELLO == 131_396
    assert connection.MAX_BY_GRAMMAR[HandshakeType.finished] == 48
    assert connection.MAX_BY_GRAMMAR[HandshakeType.key_update] == 1
    assert connection.MAX_HANDSHAKE_TOTAL == 256 * 1024
    assert connection.MAX_EARLY_DATA_SKIPPED == 64 * 1024
    assert (MAX_KEY_UPDATES_IN_A_ROW, MAX_WARNING_ALERTS_IN_A_ROW, MAX_EMPTY_RECORDS_IN_A_ROW) == (
        32,
        5,
        32,
    )


@pytest.mark.parametrize("block", [b"", b"\x00\x00"])
def test_a_tls12_hello_without_extensions_is_refused_for_what_it_lacks(block: bytes) -> None:
    # No block, or an empty one (both legal in RFC 5246 §7.4.1.2), offering a
    # suite we speak: the hello lacks RFC 5746's signal, handshake_failure
    # (RFC 5746 §4.3 as our policy), not decode_error.
    from tests.tls.test_messages import ch_body

    body = ch_body(suites=b"\x00\x02\xc0\x2b", extensions=block)
    message = bytes([HandshakeType.client_hello]) + len(body).to_bytes(3, "big") + body
    f = server_alert_for(encode_plaintext_records(ContentType.handshake, message))
    assert (f.alert, f.cause) == (A.handshake_failure, Cause.no_secure_renegotiation)
