"""Code points from RFC 8446 and the IANA TLS registries, named as the RFCs name them.

Unknown values arriving from the wire stay plain `int`s: a peer may offer code
points we have never heard of, and RFC 8446 §4.1.2 says to ignore those.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

TLS12 = 0x0303
TLS13 = 0x0304
# legacy_record_version of a ClientHello may be 0x0301 for compatibility (§5.1).
TLS10 = 0x0301
TLS11 = 0x0302
SSL30 = 0x0300
_VERSION_NAMES = {TLS13: "TLS 1.3", TLS12: "TLS 1.2", TLS11: "TLS 1.1", TLS10: "TLS 1.0",
                  SSL30: "SSL 3.0"}  # fmt: skip


def version_name(version: int) -> str:
    """How the trace, the log, the page and `pinata try` name a protocol
    version: "TLS 1.3", "TLS 1.2", ..., or the code point for any other."""
    name = _VERSION_NAMES.get(version)
    return name if name is not None else f"0x{version:04x}"


MAX_PLAINTEXT = 1 << 14  # §5.1
MAX_CIPHERTEXT = (1 << 14) + 256  # §5.2
RECORD_HEADER_LEN = 5
HANDSHAKE_HEADER_LEN = 4


class ContentType(enum.IntEnum):
    invalid = 0
    change_cipher_spec = 20
    alert = 21
    handshake = 22
    application_data = 23


# RFC 6520 §2: the heartbeat content type; never accepted (a record of it is
# `Cause.heartbeat_record`). Not a `ContentType` member: those are the types
# the deframer lets through.
HEARTBEAT_CONTENT_TYPE = 24


class HandshakeType(enum.IntEnum):
    # TLS 1.2 only (RFC 5246 §7.4): hello_request, server_key_exchange,
    # server_hello_done, client_key_exchange.
    hello_request = 0
    client_hello = 1
    server_hello = 2
    new_session_ticket = 4
    end_of_early_data = 5
    encrypted_extensions = 8
    certificate = 11
    server_key_exchange = 12
    certificate_request = 13
    server_hello_done = 14
    certificate_verify = 15
    client_key_exchange = 16
    finished = 20
    key_update = 24
    message_hash = 254


class ExtensionType(enum.IntEnum):
    server_name = 0
    max_fragment_length = 1
    status_request = 5
    supported_groups = 10
    ec_point_formats = 11
    signature_algorithms = 13
    use_srtp = 14
    heartbeat = 15
    application_layer_protocol_negotiation = 16
    signed_certificate_timestamp = 18
    client_certificate_type = 19
    server_certificate_type = 20
    padding = 21
    encrypt_then_mac = 22
    extended_master_secret = 23
    record_size_limit = 28
    session_ticket = 35
    pre_shared_key = 41
    early_data = 42
    supported_versions = 43
    cookie = 44
    psk_key_exchange_modes = 45
    certificate_authorities = 47
    oid_filters = 48
    post_handshake_auth = 49
    signature_algorithms_cert = 50
    key_share = 51
    renegotiation_info = 0xFF01


class CipherSuite(enum.IntEnum):
    TLS_AES_128_GCM_SHA256 = 0x1301
    TLS_AES_256_GCM_SHA384 = 0x1302
    TLS_CHACHA20_POLY1305_SHA256 = 0x1303
    # TLS 1.2, ECDHE only (RFC 5289 §3.2, RFC 7905 §2).
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 = 0xC02B
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xC02F
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 = 0xC02C
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 = 0xC030
    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA9
    TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA8
    # Signalling values, never negotiated: RFC 5746 §3.3 (ignored in TLS
    # 1.3) and RFC 7507 §2.
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF
    TLS_FALLBACK_SCSV = 0x5600


TLS_EMPTY_RENEGOTIATION_INFO_SCSV = CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV
TLS_FALLBACK_SCSV = CipherSuite.TLS_FALLBACK_SCSV


class ECPointFormat(enum.IntEnum):
    """RFC 8422 §5.1.2: only `uncompressed` may be used."""

    uncompressed = 0
    ansiX962_compressed_prime = 1
    ansiX962_compressed_char2 = 2


class ClientCertificateType(enum.IntEnum):
    """RFC 5246 §7.4.4 and RFC 8422 §5.5."""

    rsa_sign = 1
    ecdsa_sign = 64


# RFC 8422 §5.4: ECParameters.curve_type for a named curve.
EC_CURVE_TYPE_NAMED_CURVE = 3


class NamedGroup(enum.IntEnum):
    secp256r1 = 0x0017
    secp384r1 = 0x0018
    secp521r1 = 0x0019
    x25519 = 0x001D
    x448 = 0x001E
    # draft-ietf-tls-ecdhe-mlkem: ML-KEM-768 then X25519, concatenated.
    X25519MLKEM768 = 0x11EC


class SignatureScheme(enum.IntEnum):
    rsa_pkcs1_sha256 = 0x0401
    rsa_pkcs1_sha384 = 0x0501
    rsa_pkcs1_sha512 = 0x0601
    ecdsa_secp256r1_sha256 = 0x0403
    ecdsa_secp384r1_sha384 = 0x0503
    ecdsa_secp521r1_sha512 = 0x0603
    rsa_pss_rsae_sha256 = 0x0804
    rsa_pss_rsae_sha384 = 0x0805
    rsa_pss_rsae_sha512 = 0x0806
    ed25519 = 0x0807
    ed448 = 0x0808
    rsa_pss_pss_sha256 = 0x0809
    rsa_pss_pss_sha384 = 0x080A
    rsa_pss_pss_sha512 = 0x080B
    rsa_pkcs1_sha1 = 0x0201
    ecdsa_sha1 = 0x0203


class KeyUpdateRequest(enum.IntEnum):
    update_not_requested = 0
    update_requested = 1


class PskKeyExchangeMode(enum.IntEnum):
    psk_ke = 0
    psk_dhe_ke = 1


# §4.1.3: the last eight bytes of ServerHello.random when a TLS 1.3 server
# negotiates an older version; a TLS 1.3 client must refuse them.
DOWNGRADE_TLS12 = bytes.fromhex("444f574e47524401")
DOWNGRADE_TLS11 = bytes.fromhex("444f574e47524400")

# §4.1.3: ServerHello.random of a HelloRetryRequest, SHA-256("HelloRetryRequest").
HELLO_RETRY_REQUEST_RANDOM = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)


# Name lookups for traces, built once: `Enum(value)` is slow on a hot path.
_NAMES: dict[type[enum.IntEnum], dict[int, str]] = {
    kind: {int(member): member.name for member in kind}
    for kind in (
        ContentType,
        HandshakeType,
        ExtensionType,
        CipherSuite,
        NamedGroup,
        SignatureScheme,
    )
}


def enum_names(kind: type[enum.IntEnum], values: Iterable[int]) -> tuple[str, ...]:
    """`enum_name` of each of `values`, in one call (a ClientHello's trace
    note names some twenty code points: issue 18). `kind` must be one of
    the kinds in the names table; KeyError otherwise."""
    names = _NAMES[kind]
    return tuple([names.get(value) or f"0x{value:04x}" for value in values])


def enum_name(kind: type[enum.IntEnum], value: int) -> str:
    """A code point's registry name, or hex for values we do not know."""
    names = _NAMES.get(kind)
    if names is not None:
        name = names.get(value)
        return name if name is not None else f"0x{value:04x}"
    try:
        return kind(value).name
    except ValueError:
        return f"0x{value:04x}"
