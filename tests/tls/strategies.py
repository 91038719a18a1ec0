"""Hypothesis strategies for handshake messages and extensions.

Every strategy yields values that serialize: vectors respect the bounds of
RFC 8446 (kept small so tests stay fast). State-machine and fuzz tests reuse
these; `handshake_messages()` and `typed_extensions()` draw from every kind.
"""

from __future__ import annotations

from hypothesis import strategies as st

from pinata.tls.constants import HELLO_RETRY_REQUEST_RANDOM
from pinata.tls.extensions import (
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
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


def opaque(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=min_size, max_size=max_size)


def u16_lists(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(u16, min_size=min_size, max_size=max_size).map(tuple)


# --- raw extensions -----------------------------------------------------------


def extension() -> st.SearchStrategy[Extension]:
    return st.builds(Extension, u16, opaque(0, 24))


def extension_blocks(
    min_size: int = 0, max_size: int = 6
) -> st.SearchStrategy[tuple[Extension, ...]]:
    """Extensions with distinct types, as RFC 8446 §4.2 requires of a block."""
    return st.lists(
        extension(), min_size=min_size, max_size=max_size, unique_by=lambda e: e.extension_type
    ).map(tuple)


# --- typed extensions ---------------------------------------------------------

key_share_entries = st.builds(KeyShareEntry, u16, opaque(1, 40))

supported_versions_client_hello = st.builds(SupportedVersionsClientHello, u16_lists(1, 127))
supported_versions_server_hello = st.builds(SupportedVersionsServerHello, u16)
supported_groups = st.builds(SupportedGroups, u16_lists())
signature_algorithms = st.builds(SignatureAlgorithms, u16_lists())
signature_algorithms_cert = st.builds(SignatureAlgorithmsCert, u16_lists())
key_share_client_hello = st.builds(
    KeyShareClientHello,
    st.lists(key_share_entries, max_size=4, unique_by=lambda s: s.group).map(tuple),
)
key_share_server_hello = st.builds(KeyShareServerHello, key_share_entries)
key_share_hello_retry_request = st.builds(KeyShareHelloRetryRequest, u16)
cookies = st.builds(Cookie, opaque(1, 60))
# RFC 6066 §3 DNS names: what a ClientHello's list may name. (None encodes
# the server's empty acknowledgement, which is not a list and never parsed.)
_dns_labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)
server_names = st.builds(
    ServerName, st.lists(_dns_labels, min_size=1, max_size=4).map(".".join)
)
certificate_authorities = st.builds(
    CertificateAuthorities, st.lists(opaque(1, 30), min_size=1, max_size=4).map(tuple)
)
psk_key_exchange_modes = st.builds(
    PskKeyExchangeModes, st.lists(u8, min_size=1, max_size=6).map(tuple)
)
alpn = st.builds(
    ApplicationLayerProtocolNegotiation,
    st.lists(opaque(1, 16), min_size=1, max_size=4).map(tuple),
)
early_data_indications = st.just(EarlyDataIndication())

# Every typed extension class with a strategy for it.
TYPED_EXTENSIONS: dict[type[TypedExtension], st.SearchStrategy[TypedExtension]] = {
    SupportedVersionsClientHello: supported_versions_client_hello,
    SupportedVersionsServerHello: supported_versions_server_hello,
    SupportedGroups: supported_groups,
    SignatureAlgorithms: signature_algorithms,
    SignatureAlgorithmsCert: signature_algorithms_cert,
    KeyShareClientHello: key_share_client_hello,
    KeyShareServerHello: key_share_server_hello,
    KeyShareHelloRetryRequest: key_share_hello_retry_request,
    Cookie: cookies,
    ServerName: server_names,
    CertificateAuthorities: certificate_authorities,
    PskKeyExchangeModes: psk_key_exchange_modes,
    ApplicationLayerProtocolNegotiation: alpn,
    EarlyDataIndication: early_data_indications,
}


def typed_extensions() -> st.SearchStrategy[TypedExtension]:
    return st.one_of(*TYPED_EXTENSIONS.values())


# --- handshake messages -------------------------------------------------------

randoms = opaque(32, 32)
session_ids = opaque(0, 32)

client_hellos = st.builds(
    ClientHello,
    randoms,
    session_ids,
    u16_lists(1, 20),
    opaque(1, 4),
    extension_blocks(),
    legacy_version=u16,
)
server_hellos = st.builds(
    ServerHello,
    randoms | st.just(HELLO_RETRY_REQUEST_RANDOM),
    session_ids,
    u16,
    extension_blocks(),
    legacy_version=u16,
    legacy_compression_method=u8,
)
encrypted_extensions = st.builds(EncryptedExtensions, extension_blocks())
certificate_requests = st.builds(CertificateRequest, opaque(0, 8), extension_blocks(1))
certificate_entries = st.builds(CertificateEntry, opaque(1, 64), extension_blocks(0, 2))
certificates = st.builds(
    Certificate, opaque(0, 8), st.lists(certificate_entries, max_size=3).map(tuple)
)
certificate_verifies = st.builds(CertificateVerify, u16, opaque(0, 80))
finisheds = st.builds(Finished, opaque(0, 64))
key_updates = st.builds(KeyUpdate, st.sampled_from([0, 1]))
new_session_tickets = st.builds(
    NewSessionTicket, u32, u32, opaque(0, 16), opaque(1, 40), extension_blocks(0, 2)
)
end_of_early_datas = st.just(EndOfEarlyData())

MESSAGES: dict[type[HandshakeMessage], st.SearchStrategy[HandshakeMessage]] = {
    ClientHello: client_hellos,
    ServerHello: server_hellos,
    EncryptedExtensions: encrypted_extensions,
    CertificateRequest: certificate_requests,
    Certificate: certificates,
    CertificateVerify: certificate_verifies,
    Finished: finisheds,
    KeyUpdate: key_updates,
    NewSessionTicket: new_session_tickets,
    EndOfEarlyData: end_of_early_datas,
}


def handshake_messages() -> st.SearchStrategy[HandshakeMessage]:
    return st.one_of(*MESSAGES.values())


# --- corrupting valid encodings -----------------------------------------------


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` truncated, extended, with a byte changed, or with a length-sized
    field overwritten: the near-misses that exercise a parser's bounds."""
    kind = draw(st.sampled_from(["truncate", "extend", "flip", "length", "delete"]))
    if kind == "extend":
        return data + draw(st.binary(min_size=1, max_size=8))
    if not data:
        return draw(st.binary(min_size=1, max_size=8))
    i = draw(st.integers(0, len(data) - 1))
    if kind == "truncate":
        return data[:i]
    if kind == "flip":
        return data[:i] + bytes([draw(u8.filter(lambda b: b != data[i]))]) + data[i + 1 :]
    if kind == "delete":
        j = draw(st.integers(i + 1, len(data)))
        return data[:i] + data[j:]
    # Overwrite two bytes with a boundary-ish value, as a corrupt u16 length would be.
    value = draw(st.sampled_from([0, 1, 2, 3, 0xFF, 0x100, 0xFFFE, 0xFFFF]) | u16)
    return data[:i] + value.to_bytes(2, "big") + data[i + 2 :]
