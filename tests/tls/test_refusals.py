"""Every refusal the engine makes, each with the exact alert RFC 8446 names.

Hostile input is built two ways: a ClientHello (or ServerHello) edited
before it is sent, and a live server whose outgoing messages are rewritten
on their way out, so the client meets them under real encryption.
"""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Callable

import pytest

from pinata.tls.codec import Reader
from pinata.tls.config import ClientConfig
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import (
    DOWNGRADE_TLS12,
    HELLO_RETRY_REQUEST_RANDOM,
    TLS12,
    TLS13,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from pinata.tls.errors import AlertDescription, LocalProtocolError
from pinata.tls.events import ConnectionFailed, Event
from pinata.tls.extensions import (
    ApplicationLayerProtocolNegotiation,
    Cookie,
    Extension,
    KeyShareClientHello,
    KeyShareEntry,
    KeyShareHelloRetryRequest,
    SupportedVersionsClientHello,
)
from pinata.tls.handshake.common import Output, SendMessage, whole_messages
from pinata.tls.messages import (
    Certificate,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    KeyUpdate,
    NewSessionTicket,
    ServerHello,
)
from pinata.tls.record import encode_plaintext_records
from pinata.tls.stages import WriteTraffic
from tests.tls.pairs import client_config, completed, failure, new_pair, pump, server_config
from tests.tls.peers import NOW

# ---- helpers -------------------------------------------------------------


def records(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    r = Reader(data)
    while not r.at_end():
        content_type = r.u8()
        r.u16()
        out.append((content_type, r.vector(2)))
    return out


def handshake_bytes(data: bytes) -> bytes:
    """The handshake bytes in a stream of plaintext records."""
    return b"".join(body for t, body in records(data) if t == ContentType.handshake)


def first_client_hello() -> ClientHello:
    client, _ = new_pair()
    raw = handshake_bytes(client.data_to_send())
    return ClientHello.parse(Reader(raw[4:]))


def with_extensions(
    hello: ClientHello, edit: Callable[[list[Extension]], list[Extension]]
) -> ClientHello:
    return dataclasses.replace(hello, extensions=tuple(edit(list(hello.extensions))))


def drop(ext_type: int) -> Callable[[list[Extension]], list[Extension]]:
    return lambda exts: [e for e in exts if e.extension_type != ext_type]


def replace_ext(ext: Extension) -> Callable[[list[Extension]], list[Extension]]:
    return lambda exts: [ext if e.extension_type == ext.extension_type else e for e in exts]


def server_alert_for(stream: bytes, server: ServerConnection | None = None) -> ConnectionFailed:
    server = server or ServerConnection(server_config(), now=NOW)
    events = server.receive_data(stream)
    f = failure(events)
    assert f is not None and f.sent, events
    # After a fatal error: one alert on the wire, and nothing more accepted.
    out = server.data_to_send()
    # The alert is the last record: in the clear, or protected once keys exist.
    last_type, last_body = records(out)[-1]
    assert (last_type, len(last_body)) == (ContentType.alert, 2) or (
        last_type == ContentType.application_data and len(last_body) == 2 + 1 + 16
    )
    assert server.closed and server.receive_data(stream) == [] and server.data_to_send() == b""
    return f


def hello_record(hello: ClientHello) -> bytes:
    return encode_plaintext_records(ContentType.handshake, hello.encode())


def assert_server_refuses(hello: ClientHello, alert: AlertDescription) -> None:
    assert server_alert_for(hello_record(hello)).alert == alert


def _rewrite(
    connection: ClientConnection | ServerConnection,
    msg_type: int,
    edit: Callable[[bytes], bytes],
) -> None:
    """Rewrite one kind of outgoing handshake message (after it was hashed);
    a SendMessage may hold several messages back to back."""
    def rewrite(data: bytes) -> bytes:
        return b"".join(edit(m) if m[0] == msg_type else m for m in whole_messages(data))

    role = type(connection)

    # A connection is slotted (no instance attribute can shadow a method):
    # it becomes an instance of a subclass that rewrites what it applies.
    class Rewriting(role):  # type: ignore[valid-type,misc]
        __slots__ = ()

        def _apply(self, outputs: list[Output], events: list[Event]) -> bool:
            changed = [
                SendMessage(rewrite(o.data)) if isinstance(o, SendMessage) else o
                for o in outputs
            ]
            return bool(role._apply(self, changed, events))

    connection.__class__ = Rewriting


def _flip_last_byte(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 1])


# ---- ClientHello refusals ------------------------------------------------


def _tls13_only_server() -> ServerConnection:
    return ServerConnection(server_config(versions=(TLS13,)), now=NOW)


def test_tls12_client_hello_is_protocol_version() -> None:
    # A server configured for TLS 1.3 only (TLS 1.2's own tests: test_tls12_*).
    hello = with_extensions(first_client_hello(), drop(ExtensionType.supported_versions))
    refused = server_alert_for(hello_record(hello), _tls13_only_server())
    assert refused.alert == AlertDescription.protocol_version


def test_supported_versions_without_tls13_is_protocol_version() -> None:
    only12 = SupportedVersionsClientHello((TLS12, 0x0302)).to_extension()
    hello = with_extensions(first_client_hello(), replace_ext(only12))
    refused = server_alert_for(hello_record(hello), _tls13_only_server())
    assert refused.alert == AlertDescription.protocol_version


def test_ssl3_legacy_version_is_protocol_version() -> None:
    hello = dataclasses.replace(first_client_hello(), legacy_version=0x0300)
    assert_server_refuses(hello, AlertDescription.protocol_version)


def test_compression_is_illegal_parameter() -> None:
    hello = dataclasses.replace(first_client_hello(), legacy_compression_methods=b"\x01\x00")
    assert_server_refuses(hello, AlertDescription.illegal_parameter)


@pytest.mark.parametrize(
    "missing",
    [ExtensionType.key_share, ExtensionType.supported_groups, ExtensionType.signature_algorithms],
    ids=lambda e: e.name,
)
def test_missing_mandatory_extension(missing: ExtensionType) -> None:
    hello = with_extensions(first_client_hello(), drop(missing))
    assert_server_refuses(hello, AlertDescription.missing_extension)


def test_duplicate_extension_is_illegal_parameter() -> None:
    # A second copy of an extension, which our own encoder never sends.
    dup = with_extensions(first_client_hello(), lambda exts: [*exts, exts[1]])
    assert server_alert_for(hello_record(dup)).alert == AlertDescription.illegal_parameter


def test_pre_shared_key_not_last_is_illegal_parameter() -> None:
    psk = Extension(ExtensionType.pre_shared_key, b"\x00\x00")
    hello = with_extensions(first_client_hello(), lambda exts: [psk, *exts])
    assert_server_refuses(hello, AlertDescription.illegal_parameter)


def test_key_share_for_unlisted_group_is_illegal_parameter() -> None:
    bogus = KeyShareClientHello((KeyShareEntry(NamedGroup.secp521r1, b"\x04" * 133),))
    hello = with_extensions(first_client_hello(), replace_ext(bogus.to_extension()))
    assert_server_refuses(hello, AlertDescription.illegal_parameter)


def test_psk_only_offer_is_handshake_failure() -> None:
    psk = Extension(ExtensionType.pre_shared_key, b"\x00\x00")
    modes = Extension(ExtensionType.psk_key_exchange_modes, b"\x01\x00")
    hello = with_extensions(
        first_client_hello(),
        lambda exts: [
            e
            for e in exts
            if e.extension_type not in (ExtensionType.key_share, ExtensionType.supported_groups)
        ]
        + [modes, psk],
    )
    assert_server_refuses(hello, AlertDescription.handshake_failure)


def test_unsolicited_cookie_is_illegal_parameter() -> None:
    cookie = Cookie(b"forged").to_extension()
    hello = with_extensions(first_client_hello(), lambda exts: [*exts, cookie])
    assert_server_refuses(hello, AlertDescription.illegal_parameter)


def test_invalid_key_share_is_illegal_parameter() -> None:
    bad = KeyShareClientHello((KeyShareEntry(NamedGroup.x25519, b"\x01" * 31),))
    hello = with_extensions(first_client_hello(), replace_ext(bad.to_extension()))
    assert_server_refuses(hello, AlertDescription.illegal_parameter)


def test_an_empty_key_share_is_illegal_parameter() -> None:
    # An empty key_exchange is an invalid share (§4.2.8.2), as OpenSSL and
    # tlsfuzzer judge it, not a decode error of the extension.
    bad = KeyShareClientHello((KeyShareEntry(NamedGroup.x25519, b""),))
    hello = with_extensions(first_client_hello(), replace_ext(bad.to_extension()))
    assert_server_refuses(hello, AlertDescription.illegal_parameter)


def _offering_only(*groups: int) -> ClientHello:
    from pinata.tls.extensions import SupportedGroups

    def edit(exts: list[Extension]) -> list[Extension]:
        out = []
        for e in exts:
            if e.extension_type == ExtensionType.supported_groups:
                e = SupportedGroups(groups).to_extension()
            elif e.extension_type == ExtensionType.key_share:
                e = KeyShareClientHello(()).to_extension()
            out.append(e)
        return out

    return with_extensions(first_client_hello(), edit)


@pytest.mark.parametrize("group", [0x0009, 0x0016, 0x001A, 0x001C, 0xFF01, 0xFF02])
def test_only_obsolete_groups_is_illegal_parameter(group: int) -> None:
    # §4.2.7: the TLS 1.2 curves "MUST NOT be offered" in TLS 1.3.
    assert_server_refuses(_offering_only(group), AlertDescription.illegal_parameter)


@pytest.mark.parametrize("groups", [(0x001E,), (0x0100,), (0x2A2A,), (0x0016, 0x001E)])
def test_no_common_group_is_handshake_failure(groups: tuple[int, ...]) -> None:
    # x448, an FFDHE group, a GREASE value, and an obsolete curve among them:
    # legitimate offers, just nothing of ours (§4.1.1).
    assert_server_refuses(_offering_only(*groups), AlertDescription.handshake_failure)


def _after_retry() -> tuple[ServerConnection, ClientHello, ServerHello]:
    server = ServerConnection(server_config(groups=(NamedGroup.secp384r1,)), now=NOW)
    hello = first_client_hello()
    server.receive_data(hello_record(hello))
    out = server.data_to_send()
    hrr_raw = handshake_bytes(out)
    hrr = ServerHello.parse(Reader(hrr_raw[4:]))
    assert hrr.random == HELLO_RETRY_REQUEST_RANDOM
    return server, hello, hrr


def _second_hello(
    hello: ClientHello, hrr: ServerHello, share: KeyShareEntry, cookie: bool = True
) -> ClientHello:
    exts = [
        KeyShareClientHello((share,)).to_extension()
        if e.extension_type == ExtensionType.key_share
        else e
        for e in hello.extensions
    ]
    if cookie:
        cookie_ext = next(e for e in hrr.extensions if e.extension_type == ExtensionType.cookie)
        exts.append(cookie_ext)
    return dataclasses.replace(hello, extensions=tuple(exts))


def test_second_client_hello_with_the_wrong_share_is_illegal_parameter() -> None:
    server, hello, hrr = _after_retry()
    selected = next(e for e in hrr.extensions if e.extension_type == ExtensionType.key_share)
    assert (
        KeyShareHelloRetryRequest.parse(selected.extension_data).selected_group
        == NamedGroup.secp384r1
    )
    again = _second_hello(hello, hrr, KeyShareEntry(NamedGroup.x25519, b"\x09" * 32))
    assert server_alert_for(hello_record(again), server).alert == AlertDescription.illegal_parameter


def test_second_client_hello_without_cookie_is_missing_extension() -> None:
    import os

    from pinata.tls.key_exchange import ClientKeyShare

    server, hello, hrr = _after_retry()
    share = ClientKeyShare.generate(NamedGroup.secp384r1, os.urandom)
    again = _second_hello(hello, hrr, KeyShareEntry(share.group, share.key_exchange), cookie=False)
    assert server_alert_for(hello_record(again), server).alert == AlertDescription.missing_extension


def test_second_client_hello_with_a_forged_cookie_is_illegal_parameter() -> None:
    import os

    from pinata.tls.key_exchange import ClientKeyShare

    server, hello, hrr = _after_retry()
    share = ClientKeyShare.generate(NamedGroup.secp384r1, os.urandom)
    again = _second_hello(hello, hrr, KeyShareEntry(share.group, share.key_exchange), cookie=False)
    again = with_extensions(again, lambda exts: [*exts, Cookie(b"forged").to_extension()])
    assert server_alert_for(hello_record(again), server).alert == AlertDescription.illegal_parameter


def test_a_second_client_hello_without_retry_is_unexpected() -> None:
    hello = first_client_hello()
    _, server = new_pair()
    server.receive_data(hello_record(hello))
    server.data_to_send()
    f = failure(server.receive_data(hello_record(hello)))
    assert f is not None and f.alert == AlertDescription.unexpected_message


# ---- record layer refusals -----------------------------------------------


def test_zero_length_handshake_record_is_unexpected_message() -> None:
    assert server_alert_for(b"\x16\x03\x03\x00\x00").alert == AlertDescription.unexpected_message


def test_oversized_ciphertext_is_record_overflow() -> None:
    stream = b"\x17\x03\x03" + (2**14 + 257).to_bytes(2, "big")
    assert server_alert_for(stream).alert == AlertDescription.record_overflow


def test_oversized_plaintext_is_record_overflow() -> None:
    body = first_client_hello().encode()
    stream = (
        b"\x16\x03\x03" + (2**14 + 1).to_bytes(2, "big") + body + b"\x00" * (2**14 + 1 - len(body))
    )
    assert server_alert_for(stream).alert == AlertDescription.record_overflow


def test_application_data_before_keys_is_unexpected_message() -> None:
    assert (
        server_alert_for(b"\x17\x03\x03\x00\x05hello").alert == AlertDescription.unexpected_message
    )


def test_change_cipher_spec_before_client_hello_is_unexpected() -> None:
    assert (
        server_alert_for(b"\x14\x03\x03\x00\x01\x01").alert == AlertDescription.unexpected_message
    )


def test_one_change_cipher_spec_is_accepted_a_second_is_not() -> None:
    client, server = new_pair(client_cfg=client_config())
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    ccs = b"\x14\x03\x03\x00\x01\x01"
    # The client already sent one (compatibility mode): a second is refused.
    flight = client.data_to_send()
    assert flight.startswith(ccs)
    events = server.receive_data(flight + ccs)
    assert completed(events) is not None
    f = failure(events)
    assert f is not None and f.alert == AlertDescription.unexpected_message


def test_change_cipher_spec_with_wrong_value_is_unexpected() -> None:
    client, server = new_pair()
    server.receive_data(client.data_to_send())
    f = failure(server.receive_data(b"\x14\x03\x03\x00\x01\x02"))
    assert f is not None and f.alert == AlertDescription.unexpected_message


def test_alert_between_handshake_fragments_is_unexpected() -> None:
    body = first_client_hello().encode()
    stream = (
        encode_plaintext_records(ContentType.handshake, body[:10])
        + b"\x15\x03\x03\x00\x02\x01\x00"
        + encode_plaintext_records(ContentType.handshake, body[10:])
    )
    assert server_alert_for(stream).alert == AlertDescription.unexpected_message


def test_handshake_data_spanning_a_key_change_is_unexpected() -> None:
    body = first_client_hello().encode()
    # The ClientHello and the start of another message in one record: the
    # rest would straddle the switch to handshake keys (§5.1).
    stream = encode_plaintext_records(ContentType.handshake, body + b"\x14\x00")
    assert server_alert_for(stream).alert == AlertDescription.unexpected_message


def test_oversized_handshake_message_is_refused_early() -> None:
    # A ClientHello header announcing 1 MiB, more than its grammar allows:
    # refused at the header, before any body is buffered.
    header = bytes([HandshakeType.client_hello]) + (2**20).to_bytes(3, "big")
    stream = encode_plaintext_records(ContentType.handshake, header)
    assert server_alert_for(stream).alert == AlertDescription.decode_error


def test_unknown_content_type_is_unexpected() -> None:
    assert (
        server_alert_for(b"\x63\x03\x03\x00\x01\x00").alert == AlertDescription.unexpected_message
    )


def test_fragmented_and_coalesced_handshake_messages_work() -> None:
    client, server = new_pair()
    hello = client.data_to_send()
    body = handshake_bytes(hello)
    fragmented = b"".join(
        encode_plaintext_records(ContentType.handshake, body[i : i + 7])
        for i in range(0, len(body), 7)
    )
    server.receive_data(fragmented)
    events = client.receive_data(server.data_to_send())
    assert failure(events) is None
    # The server's flight after ServerHello came coalesced in one record.
    kinds = [e.what for e in server.trace.entries if e.kind == "out"]
    assert kinds[:2] == ["ServerHello", "EncryptedExtensions"]


def test_a_split_message_waits_in_one_buffer_that_grows_in_place() -> None:
    # The buffer exists only while a message is split, and what it holds is
    # not copied again for each record that adds to it: a message sent a byte
    # at a time costs linear work, not quadratic.
    padded = with_extensions(first_client_hello(), lambda e: [*e, Extension(0x7777, bytes(16_000))])
    body = padded.encode()
    server = ServerConnection(server_config(), now=NOW)
    assert server._handshake_buffer is None
    tracemalloc.start()
    try:
        server.receive_data(encode_plaintext_records(ContentType.handshake, body[:16_001]))
        buffer = server._handshake_buffer
        assert buffer is not None
        for i in range(16_001, 16_010):
            record = encode_plaintext_records(ContentType.handshake, body[i : i + 1])
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            assert server.receive_data(record) == []
            _, peak = tracemalloc.get_traced_memory()
            assert peak - before < 4_000  # far below the 16 KB held
            assert server._handshake_buffer is buffer
    finally:
        tracemalloc.stop()
    assert bytes(buffer) == body[:16_010]
    server.receive_data(encode_plaintext_records(ContentType.handshake, body[16_010:]))
    assert server._handshake_buffer is None
    assert server.state_name != "ServerExpectClientHello"  # the ClientHello was handled


# ---- post-handshake refusals -----------------------------------------------


def _established() -> tuple[ClientConnection, ServerConnection]:
    client, server = new_pair()
    client_events, server_events = pump(client, server)
    assert completed(client_events) and completed(server_events)
    return client, server


def _send_raw_handshake(sender: ClientConnection | ServerConnection, message: bytes) -> bytes:
    write = sender._write
    assert isinstance(write, WriteTraffic)
    return write.protector.seal(ContentType.handshake, message)


def test_post_handshake_certificate_request_is_unexpected() -> None:
    client, server = _established()
    record = _send_raw_handshake(
        server,
        CertificateRequest(
            b"\x01", (Extension(ExtensionType.signature_algorithms, b"\x00\x02\x04\x03"),)
        ).encode(),
    )
    f = failure(client.receive_data(record))
    assert f is not None and f.alert == AlertDescription.unexpected_message


def test_new_session_ticket_is_ignored_by_the_client_refused_by_the_server() -> None:
    client, server = _established()
    ticket = NewSessionTicket(3600, 1, b"\x00", b"ticket", ()).encode()
    assert client.receive_data(_send_raw_handshake(server, ticket)) == []
    f = failure(server.receive_data(_send_raw_handshake(client, ticket)))
    assert f is not None and f.alert == AlertDescription.unexpected_message


def test_key_update_before_the_handshake_ends_is_unexpected() -> None:
    # The client's Certificate becomes a KeyUpdate, under handshake keys.
    client, server = new_pair()
    _rewrite(client, HandshakeType.certificate, lambda raw: KeyUpdate(0).encode())
    _, server_events = pump(client, server)
    f = failure(server_events)
    assert f is not None and f.alert == AlertDescription.unexpected_message
    assert "KeyUpdate" in f.reason


def test_sequence_number_exhaustion_closes_the_connection() -> None:
    client, _ = _established()
    write = client._write
    assert isinstance(write, WriteTraffic)
    write.protector.sequence_number = 2**64 - 1
    client.send_application_data(b"the last record this key may protect")
    with pytest.raises(LocalProtocolError):
        client.send_application_data(b"one too many")
    assert client.closed
    with pytest.raises(LocalProtocolError):
        client.send_application_data(b"and another")


def test_tampered_record_is_bad_record_mac() -> None:
    client, server = _established()
    client.send_application_data(b"hello")
    record = bytearray(client.data_to_send())
    record[-1] ^= 1
    f = failure(server.receive_data(bytes(record)))
    assert f is not None and f.alert == AlertDescription.bad_record_mac


def test_early_data_is_skipped_not_fatal() -> None:
    hello = with_extensions(
        first_client_hello(), lambda exts: [*exts, Extension(ExtensionType.early_data, b"")]
    )
    server = ServerConnection(server_config(client_auth=False), now=NOW)
    events = server.receive_data(hello_record(hello))
    assert failure(events) is None
    # Early data under keys we never derived: skipped, up to a bound.
    early = b"\x17\x03\x03\x00\x20" + b"\xaa" * 32
    assert server.receive_data(early * 4) == []
    f = failure(server.receive_data(early * 5000))
    assert f is not None and f.alert == AlertDescription.bad_record_mac


# ---- refusals on the client side -------------------------------------------




def _client_alert(
    msg_type: int,
    edit: Callable[[bytes], bytes],
    client_cfg: ClientConfig | None = None,
    **server_kw: object,
) -> ConnectionFailed:
    client, server = new_pair(server_config(**server_kw), client_cfg)
    _rewrite(server, msg_type, edit)
    client_events, _ = pump(client, server)
    f = failure(client_events)
    assert f is not None and f.sent, client_events
    return f


def _edit_server_hello(edit: Callable[[ServerHello], ServerHello]) -> Callable[[bytes], bytes]:
    return lambda raw: edit(ServerHello.parse(Reader(raw[4:]))).encode()


def test_tls12_server_hello_is_protocol_version() -> None:
    # A client that offered TLS 1.3 only (one that offers 1.2 reads this
    # hello as 1.2, and refuses its TLS 1.3 suite: tests/tls/test_tls12_client*).
    f = _client_alert(
        HandshakeType.server_hello,
        _edit_server_hello(
            lambda sh: dataclasses.replace(
                sh,
                extensions=tuple(
                    e for e in sh.extensions if e.extension_type != ExtensionType.supported_versions
                ),
            )
        ),
        client_config(versions=(TLS13,)),
    )
    assert f.alert == AlertDescription.protocol_version


def test_downgrade_sentinel_is_illegal_parameter() -> None:
    f = _client_alert(
        HandshakeType.server_hello,
        _edit_server_hello(
            lambda sh: dataclasses.replace(
                sh,
                random=sh.random[:24] + DOWNGRADE_TLS12,
                extensions=tuple(
                    e for e in sh.extensions if e.extension_type != ExtensionType.supported_versions
                ),
            )
        ),
    )
    assert f.alert == AlertDescription.illegal_parameter


def test_unoffered_cipher_suite_is_illegal_parameter() -> None:
    f = _client_alert(
        HandshakeType.server_hello,
        _edit_server_hello(lambda sh: dataclasses.replace(sh, cipher_suite=0x009C)),
    )
    assert f.alert == AlertDescription.illegal_parameter


def test_session_id_echo_mismatch_is_illegal_parameter() -> None:
    f = _client_alert(
        HandshakeType.server_hello,
        _edit_server_hello(lambda sh: dataclasses.replace(sh, legacy_session_id_echo=b"\x00" * 32)),
    )
    assert f.alert == AlertDescription.illegal_parameter


def test_unrequested_extension_in_server_hello_is_unsupported_extension() -> None:
    f = _client_alert(
        HandshakeType.server_hello,
        _edit_server_hello(
            lambda sh: dataclasses.replace(sh, extensions=(*sh.extensions, Extension(0x7777, b"")))
        ),
    )
    assert f.alert == AlertDescription.unsupported_extension


def test_server_hello_without_key_share_is_missing_extension() -> None:
    f = _client_alert(
        HandshakeType.server_hello,
        _edit_server_hello(
            lambda sh: dataclasses.replace(
                sh,
                extensions=tuple(
                    e for e in sh.extensions if e.extension_type != ExtensionType.key_share
                ),
            )
        ),
    )
    assert f.alert == AlertDescription.missing_extension


def test_key_share_in_unoffered_group_is_illegal_parameter() -> None:
    from pinata.tls.extensions import KeyShareServerHello

    share = KeyShareServerHello(KeyShareEntry(NamedGroup.secp256r1, b"\x04" + b"\x01" * 64))
    f = _client_alert(
        HandshakeType.server_hello,
        _edit_server_hello(
            lambda sh: dataclasses.replace(
                sh,
                extensions=tuple(
                    share.to_extension() if e.extension_type == ExtensionType.key_share else e
                    for e in sh.extensions
                ),
            )
        ),
    )
    assert f.alert == AlertDescription.illegal_parameter


def test_second_hello_retry_request_is_unexpected() -> None:
    client = ClientConnection(client_config(key_share_groups=(NamedGroup.x25519,)), now=NOW)
    client.data_to_send()
    hrr = ServerHello(
        random=HELLO_RETRY_REQUEST_RANDOM,
        legacy_session_id_echo=b"",
        cipher_suite=0x1301,
        extensions=(
            Extension(ExtensionType.supported_versions, b"\x03\x04"),
            KeyShareHelloRetryRequest(NamedGroup.secp256r1).to_extension(),
        ),
    )
    # Echo the client's session id so only the repetition is wrong.
    sid = client._state.hello.legacy_session_id  # type: ignore[union-attr]
    hrr = dataclasses.replace(hrr, legacy_session_id_echo=sid)
    events = client.receive_data(encode_plaintext_records(ContentType.handshake, hrr.encode()))
    assert failure(events) is None
    hrr2 = dataclasses.replace(
        hrr,
        extensions=(
            Extension(ExtensionType.supported_versions, b"\x03\x04"),
            KeyShareHelloRetryRequest(NamedGroup.secp384r1).to_extension(),
        ),
    )
    f = failure(client.receive_data(encode_plaintext_records(ContentType.handshake, hrr2.encode())))
    assert f is not None and f.alert == AlertDescription.unexpected_message


def test_retry_for_a_group_already_shared_is_illegal_parameter() -> None:
    client = ClientConnection(client_config(key_share_groups=(NamedGroup.x25519,)), now=NOW)
    client.data_to_send()
    sid = client._state.hello.legacy_session_id  # type: ignore[union-attr]
    hrr = ServerHello(
        random=HELLO_RETRY_REQUEST_RANDOM,
        legacy_session_id_echo=sid,
        cipher_suite=0x1301,
        extensions=(
            Extension(ExtensionType.supported_versions, b"\x03\x04"),
            KeyShareHelloRetryRequest(NamedGroup.x25519).to_extension(),
        ),
    )
    f = failure(client.receive_data(encode_plaintext_records(ContentType.handshake, hrr.encode())))
    assert f is not None and f.alert == AlertDescription.illegal_parameter


def test_forbidden_extension_in_encrypted_extensions_is_illegal_parameter() -> None:
    key_share = Extension(ExtensionType.supported_versions, b"\x03\x04")
    f = _client_alert(
        HandshakeType.encrypted_extensions, lambda raw: EncryptedExtensions((key_share,)).encode()
    )
    assert f.alert == AlertDescription.illegal_parameter


def test_unrequested_alpn_is_unsupported_extension() -> None:
    alpn = ApplicationLayerProtocolNegotiation((b"h2",)).to_extension()
    f = _client_alert(
        HandshakeType.encrypted_extensions, lambda raw: EncryptedExtensions((alpn,)).encode()
    )
    assert f.alert == AlertDescription.unsupported_extension


def test_empty_server_certificate_is_decode_error() -> None:
    f = _client_alert(HandshakeType.certificate, lambda raw: Certificate(b"", ()).encode())
    assert f.alert == AlertDescription.decode_error


def test_bad_server_signature_is_decrypt_error() -> None:
    def flip(raw: bytes) -> bytes:
        cv = CertificateVerify.parse(Reader(raw[4:]))
        sig = bytearray(cv.signature)
        sig[-1] ^= 1
        return CertificateVerify(cv.algorithm, bytes(sig)).encode()

    assert (
        _client_alert(HandshakeType.certificate_verify, flip).alert
        == AlertDescription.decrypt_error
    )


def test_pkcs1_in_certificate_verify_is_illegal_parameter() -> None:
    def pkcs1(raw: bytes) -> bytes:
        cv = CertificateVerify.parse(Reader(raw[4:]))
        return CertificateVerify(SignatureScheme.rsa_pkcs1_sha256, cv.signature).encode()

    f = _client_alert(HandshakeType.certificate_verify, pkcs1)
    assert f.alert == AlertDescription.illegal_parameter


def test_bad_server_finished_is_decrypt_error() -> None:
    f = _client_alert(HandshakeType.finished, _flip_last_byte)
    assert f.alert == AlertDescription.decrypt_error


def test_bad_client_finished_is_decrypt_error() -> None:
    client, server = new_pair()
    _rewrite(client, HandshakeType.finished, _flip_last_byte)
    _, server_events = pump(client, server)
    f = failure(server_events)
    assert f is not None and f.alert == AlertDescription.decrypt_error


def test_client_without_an_acceptable_key_gets_certificate_required() -> None:
    client, server = new_pair(
        server_config(signature_schemes=(SignatureScheme.ecdsa_secp384r1_sha384,)),
        client_config("p256"),
    )
    # The client has only a P-256 key, which the server did not offer: it sends
    # an empty Certificate, and the server requires one.
    _, server_events = pump(client, server)
    f = failure(server_events)
    assert f is not None and f.alert == AlertDescription.certificate_required


def test_record_helper_is_total_on_its_own_output() -> None:
    # Guard for the helpers above: the record splitter reads what we write.
    stream = encode_plaintext_records(ContentType.handshake, b"x" * 40000)
    assert sum(len(b) for _, b in records(stream)) == 40000
