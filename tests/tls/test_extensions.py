"""Extension blocks and typed extension bodies (pinata.tls.extensions)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinata.tls.codec import Reader, Writer
from pinata.tls.constants import ExtensionType, NamedGroup
from pinata.tls.errors import AlertDescription, ProtocolError
from pinata.tls.extensions import (
    EXTENSIONS,
    PRESENT_EXTENSIONS,
    TICKET_EXTENSIONS,
    ApplicationLayerProtocolNegotiation,
    CertificateAuthorities,
    Cookie,
    EarlyDataIndication,
    Extension,
    KeyShareClientHello,
    KeyShareEntry,
    KeyShareHelloRetryRequest,
    KeyShareServerHello,
    PskKeyExchangeModes,
    ServerName,
    SignatureAlgorithms,
    SignatureAlgorithmsCert,
    SupportedGroups,
    SupportedVersionsClientHello,
    SupportedVersionsServerHello,
    TypedExtension,
    find_extension,
    find_typed,
    parse_extensions,
    pre_shared_key_is_last,
    write_extensions,
)
from tests.tls import strategies as tls_st

TYPED = list(tls_st.TYPED_EXTENSIONS)


def block(*exts: tuple[int, bytes]) -> bytes:
    """An extension block built by hand, independently of write_extensions."""
    body = b"".join(t.to_bytes(2, "big") + len(d).to_bytes(2, "big") + d for t, d in exts)
    return len(body).to_bytes(2, "big") + body


def u16s(*values: int) -> bytes:
    return b"".join(v.to_bytes(2, "big") for v in values)


def alert_of(parse: object, data: bytes) -> AlertDescription:
    assert callable(parse)
    with pytest.raises(ProtocolError) as info:
        parse(data)
    return info.value.alert


# --- extension blocks -------------------------------------------------------


def test_block_keeps_order_and_unknown_types() -> None:
    data = block((0xFAFA, b""), (ExtensionType.key_share, b"\x00\x00"), (0x1234, b"xyz"))
    r = Reader(data)
    exts = parse_extensions(r, EXTENSIONS)
    assert r.at_end()
    assert exts == (
        Extension(0xFAFA, b""),
        Extension(51, b"\x00\x00"),
        Extension(0x1234, b"xyz"),
    )
    w = Writer()
    write_extensions(w, exts, EXTENSIONS)
    assert w.getvalue() == data


def test_duplicate_extension_is_illegal_parameter() -> None:
    data = block((10, b"\x00\x02\x00\x1d"), (13, b""), (10, b"\x00\x02\x00\x17"))
    assert alert_of(lambda d: parse_extensions(Reader(d), EXTENSIONS), data) is (
        AlertDescription.illegal_parameter
    )


def test_empty_block_allowed_only_when_asked() -> None:
    assert parse_extensions(Reader(b"\x00\x00"), EXTENSIONS) == ()
    alert = alert_of(lambda d: parse_extensions(Reader(d), PRESENT_EXTENSIONS), b"\x00\x00")
    assert alert is AlertDescription.decode_error


@pytest.mark.parametrize(
    "data",
    [
        b"",  # no length
        b"\x00",  # half a length
        b"\x00\x05\x00\x01\x00",  # block claims more than is there
        b"\x00\x03\x00\x01\x00",  # extension header cut short
        b"\x00\x04\x00\x01\x00\x01",  # extension body runs past the block
    ],
)
def test_malformed_block_is_decode_error(data: bytes) -> None:
    assert (
        alert_of(lambda d: parse_extensions(Reader(d), EXTENSIONS), data)
        is AlertDescription.decode_error
    )


def test_block_maximum_is_enforced() -> None:
    data = block((1, bytes(0xFFFF - 4)))
    assert len(parse_extensions(Reader(data), EXTENSIONS)) == 1
    alert = alert_of(lambda d: parse_extensions(Reader(d), TICKET_EXTENSIONS), data)
    assert alert is AlertDescription.decode_error
    with pytest.raises(ValueError):
        write_extensions(Writer(), (Extension(1, bytes(0xFFFF - 4)),), TICKET_EXTENSIONS)


@given(tls_st.extension_blocks())
def test_block_round_trip(exts: tuple[Extension, ...]) -> None:
    w = Writer()
    write_extensions(w, exts, EXTENSIONS)
    encoded = w.getvalue()
    assert encoded == block(*((e.extension_type, e.extension_data) for e in exts))
    r = Reader(encoded)
    assert parse_extensions(r, EXTENSIONS) == exts
    assert r.at_end()


@given(st.binary(max_size=64))
def test_block_parse_is_total(data: bytes) -> None:
    try:
        exts = parse_extensions(Reader(data), EXTENSIONS)
    except ProtocolError:
        return
    assert len({e.extension_type for e in exts}) == len(exts)


def test_find_extension_and_find_typed() -> None:
    exts = (Extension(43, b"\x02\x03\x04"), Extension(10, b"\x00\x02\x00\x1d"))
    assert find_extension(exts, 43) == b"\x02\x03\x04"
    assert find_extension(exts, 51) is None
    assert find_typed(exts, SupportedVersionsClientHello) == SupportedVersionsClientHello((0x0304,))
    assert find_typed(exts, SupportedGroups) == SupportedGroups((NamedGroup.x25519,))
    assert find_typed(exts, KeyShareClientHello) is None


def test_find_typed_propagates_malformed_body() -> None:
    exts = (Extension(43, b"\x03\x03\x04\x00"),)
    with pytest.raises(ProtocolError):
        find_typed(exts, SupportedVersionsClientHello)


def test_pre_shared_key_is_last() -> None:
    psk = Extension(ExtensionType.pre_shared_key, b"")
    other = Extension(ExtensionType.key_share, b"")
    assert pre_shared_key_is_last((other, psk))
    assert pre_shared_key_is_last((psk,))
    assert not pre_shared_key_is_last((psk, other))
    assert pre_shared_key_is_last((other,))  # absent: the rule holds vacuously
    assert pre_shared_key_is_last(())


# --- typed extensions: examples ----------------------------------------------


def test_supported_versions_examples() -> None:
    assert SupportedVersionsClientHello.parse(b"\x04\x03\x04\x03\x03") == (
        SupportedVersionsClientHello((0x0304, 0x0303))
    )
    assert SupportedVersionsServerHello.parse(b"\x03\x04").selected_version == 0x0304
    assert SupportedVersionsServerHello(0x0304).to_extension() == Extension(43, b"\x03\x04")


def test_key_share_examples() -> None:
    entry = KeyShareEntry(NamedGroup.x25519, bytes(range(32)))
    encoded_entry = u16s(0x1D, 32) + bytes(range(32))
    assert KeyShareServerHello.parse(encoded_entry) == KeyShareServerHello(entry)
    client = KeyShareClientHello.parse(len(encoded_entry).to_bytes(2, "big") + encoded_entry)
    assert client.shares == (entry,)
    assert KeyShareClientHello.parse(b"\x00\x00") == KeyShareClientHello(())
    assert KeyShareHelloRetryRequest.parse(b"\x00\x17").selected_group == NamedGroup.secp256r1


def test_key_share_duplicate_group_is_illegal_parameter() -> None:
    entry = u16s(0x1D, 1) + b"\x01"
    data = u16s(2 * len(entry)) + entry + entry
    assert alert_of(KeyShareClientHello.parse, data) is AlertDescription.illegal_parameter


def test_server_name_examples() -> None:
    data = u16s(9) + b"\x00" + u16s(6) + b"server"
    assert ServerName.parse(data) == ServerName("server")
    assert ServerName("server").encode() == data
    # The server's acknowledgement in EncryptedExtensions is empty; in a
    # ClientHello the list is <1..2^16-1> (RFC 6066 §3).
    assert ServerName(None).to_extension() == Extension(0, b"")
    assert alert_of(ServerName.parse, b"") is AlertDescription.decode_error


def test_server_name_skips_unknown_name_types() -> None:
    unknown = b"\x07" + u16s(3) + b"abc"
    host = b"\x00" + u16s(4) + b"host"
    data = u16s(len(unknown) + len(host)) + unknown + host
    assert ServerName.parse(data) == ServerName("host")
    assert ServerName.parse(u16s(len(unknown)) + unknown) == ServerName(None)


def test_server_name_two_host_names_is_illegal_parameter() -> None:
    host = b"\x00" + u16s(4) + b"host"
    data = u16s(2 * len(host)) + host + host
    assert alert_of(ServerName.parse, data) is AlertDescription.illegal_parameter


@pytest.mark.parametrize(
    "name",
    ["bücher.example".encode(), b"exa\x00mple", b"bell\x07", b"\x1b[31mred", b"a..b", b".", b"",
     b"trailing.dot.", b"space here"],
)
def test_server_name_must_be_a_dns_name(name: bytes) -> None:
    # RFC 6066 §3: ASCII, no trailing dot; a NUL, a control character, an
    # escape sequence or UTF-8 is illegal_parameter, as OpenSSL answers.
    data = u16s(3 + len(name)) + b"\x00" + u16s(len(name)) + name
    expected = AlertDescription.decode_error if not name else AlertDescription.illegal_parameter
    assert alert_of(ServerName.parse, data) is expected


@pytest.mark.parametrize(
    "name", [b"localhost", b"pinata.example", b"_srv.x-1.example", b"127.0.0.1"]
)
def test_server_name_accepts_dns_names(name: bytes) -> None:
    data = u16s(3 + len(name)) + b"\x00" + u16s(len(name)) + name
    assert ServerName.parse(data) == ServerName(name.decode())


def test_alpn_example() -> None:
    # RFC 7301 §3.1's example list: "h2" and "http/1.1".
    data = u16s(12) + b"\x02h2\x08http/1.1"
    parsed = ApplicationLayerProtocolNegotiation.parse(data)
    assert parsed.protocols == (b"h2", b"http/1.1")
    assert parsed.encode() == data


def test_certificate_authorities_example() -> None:
    dn = bytes.fromhex("300e310c300a06035504031303727361")  # CN=rsa
    data = u16s(2 + len(dn)) + u16s(len(dn)) + dn
    parsed = CertificateAuthorities.parse(data)
    assert parsed.authorities == (dn,)
    assert parsed.encode() == data


def test_psk_modes_cookie_early_data_examples() -> None:
    assert PskKeyExchangeModes.parse(b"\x01\x01").modes == (1,)
    assert Cookie.parse(b"\x00\x03abc").cookie == b"abc"
    assert EarlyDataIndication.parse(b"") == EarlyDataIndication()
    assert EarlyDataIndication().to_extension() == Extension(42, b"")


# --- typed extensions: bounds -------------------------------------------------

BOUND_VIOLATIONS = [
    # ProtocolVersion versions<2..254>, u8 length, whole uint16s
    (SupportedVersionsClientHello, b"\x00"),
    (SupportedVersionsClientHello, b"\x03\x03\x04\x03"),
    (SupportedVersionsClientHello, b"\xff" + bytes(255)),
    (SupportedVersionsClientHello, b"\x02\x03\x04\x00"),  # trailing byte
    (SupportedVersionsServerHello, b"\x03"),
    (SupportedVersionsServerHello, b"\x03\x04\x00"),
    # NamedGroup named_group_list<2..2^16-1>
    (SupportedGroups, b"\x00\x00"),
    (SupportedGroups, b"\x00\x03\x00\x1d\x00"),
    # SignatureScheme supported_signature_algorithms<2..2^16-2>
    (SignatureAlgorithms, b"\x00\x00"),
    (SignatureAlgorithms, b"\x00\x01\x04"),
    (SignatureAlgorithms, b"\xff\xff" + bytes(0xFFFF)),
    (SignatureAlgorithmsCert, b"\x00\x00"),
    (SignatureAlgorithmsCert, b"\xff\xff" + bytes(0xFFFF)),
    # opaque key_exchange<1..2^16-1>
    # (an empty key_exchange parses: it is refused where the share is used,
    # with illegal_parameter, see test_an_empty_key_share_is_illegal_parameter)
    (KeyShareServerHello, u16s(0x1D, 2) + b"\x01"),
    (KeyShareClientHello, u16s(5) + u16s(0x1D, 1)),
    (KeyShareHelloRetryRequest, b"\x00"),
    (KeyShareHelloRetryRequest, b"\x00\x1d\x00"),
    # opaque cookie<1..2^16-1>
    (Cookie, b"\x00\x00"),
    (Cookie, b"\x00\x02a"),
    # server_name_list<1..2^16-1>, HostName<1..2^16-1>
    (ServerName, b"\x00\x00"),
    (ServerName, u16s(3) + b"\x00" + u16s(0)),
    (ServerName, u16s(4) + b"\x00" + u16s(2) + b"a"),
    # DistinguishedName authorities<3..2^16-1>, DistinguishedName<1..2^16-1>
    (CertificateAuthorities, u16s(2) + u16s(0)),
    (CertificateAuthorities, u16s(4) + u16s(0) + b"ab"),
    (CertificateAuthorities, u16s(0)),
    # PskKeyExchangeMode ke_modes<1..255>
    (PskKeyExchangeModes, b"\x00"),
    (PskKeyExchangeModes, b"\x02\x01"),
    # ProtocolName protocol_name_list<2..2^16-1>, ProtocolName<1..2^8-1>
    (ApplicationLayerProtocolNegotiation, u16s(0)),
    (ApplicationLayerProtocolNegotiation, u16s(2) + b"\x00\x00"),
    (ApplicationLayerProtocolNegotiation, u16s(3) + b"\x03h2"),
    # early_data is empty in ClientHello and EncryptedExtensions
    (EarlyDataIndication, b"\x00"),
]


@pytest.mark.parametrize(("kind", "data"), BOUND_VIOLATIONS)
def test_bound_violation_is_decode_error(kind: type[TypedExtension], data: bytes) -> None:
    assert alert_of(kind.parse, data) is AlertDescription.decode_error


@pytest.mark.parametrize(
    "value",
    [
        SupportedVersionsClientHello(()),
        SupportedVersionsClientHello((0x0304,) * 128),
        SupportedGroups(()),
        SignatureAlgorithms(()),
        Cookie(b""),
        ServerName(""),
        CertificateAuthorities(()),
        CertificateAuthorities((b"",)),
        PskKeyExchangeModes(()),
        ApplicationLayerProtocolNegotiation(()),
        ApplicationLayerProtocolNegotiation((b"",)),
    ],
)
def test_encoding_out_of_bounds_is_refused(value: TypedExtension) -> None:
    # What our own parser would reject is a local bug, never sent to the peer.
    with pytest.raises(ValueError):
        value.encode()


# --- typed extensions: properties ---------------------------------------------


@given(tls_st.typed_extensions())
def test_typed_round_trip(value: TypedExtension) -> None:
    encoded = value.encode()
    parsed = type(value).parse(encoded)
    assert parsed == value
    assert parsed.encode() == encoded
    assert value.to_extension() == Extension(int(value.extension_type), encoded)


@given(st.sampled_from(TYPED), st.binary(max_size=48))
def test_typed_parse_is_total(kind: type[TypedExtension], data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        kind.parse(data)


@given(st.data())
def test_typed_parse_of_mutations_is_total_and_canonical(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(TYPED))
    encoded = data.draw(tls_st.TYPED_EXTENSIONS[kind]).encode()
    mutated = data.draw(tls_st.mutations(encoded))
    try:
        parsed = kind.parse(mutated)
    except ProtocolError:
        return
    # Whatever parses re-encodes to the same bytes, save a server_name list
    # that carried name types we skip.
    if kind is not ServerName:
        assert parsed.encode() == mutated
