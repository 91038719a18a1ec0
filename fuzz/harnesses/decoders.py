"""Harness 2: every handshake message and extension codec, and the other
functions that take peer bytes apart (key shares, signatures), as TLS 1.3
and as TLS 1.2 (RFC 5246 §7.4's layouts: ServerKeyExchange, ServerHelloDone,
ClientKeyExchange, the 1.2 Certificate and CertificateRequest, HelloRequest;
extended_master_secret, renegotiation_info, ec_point_formats).

Input: [selector] body. The invariant: a decoder returns a value or raises
`ProtocolError` carrying a known alert; nothing else escapes. What decodes
must re-encode without error: a message to the same bytes (messages keep
extensions raw), a typed extension body to one that parses to the same value.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from fuzz.harnesses.fixtures import counter_random
from fuzz.harnesses.support import FuzzFinding, Input
from pinata.tls import extensions as ext
from pinata.tls.codec import Reader
from pinata.tls.constants import TLS12, NamedGroup, SignatureScheme
from pinata.tls.errors import AlertDescription, ProtocolError
from pinata.tls.key_exchange import ClientKeyShare, server_key_exchange
from pinata.tls.messages import (
    ClientHello,
    HandshakeMessage,
    ServerHello,
    parse_handshake_message,
)
from pinata.tls.signatures import verify

_MESSAGE_TYPES = (1, 2, 4, 5, 8, 11, 13, 15, 20, 24, 254, 0, 3)
# RFC 5246 §7.4 in a TLS 1.2 connection, and two that 1.2 does not know
# (EncryptedExtensions, NewSessionTicket: unknown there).
_MESSAGE_TYPES_TLS12 = (0, 1, 2, 11, 12, 13, 14, 15, 16, 20, 24, 8, 4)

_TYPED: tuple[type[ext.TypedExtension], ...] = (
    ext.SupportedVersionsClientHello,
    ext.SupportedVersionsServerHello,
    ext.SupportedGroups,
    ext.SignatureAlgorithms,
    ext.SignatureAlgorithmsCert,
    ext.KeyShareClientHello,
    ext.KeyShareServerHello,
    ext.KeyShareHelloRetryRequest,
    ext.Cookie,
    ext.ServerName,
    ext.CertificateAuthorities,
    ext.PskKeyExchangeModes,
    ext.ApplicationLayerProtocolNegotiation,
    ext.EarlyDataIndication,
    ext.ExtendedMasterSecret,
    ext.RenegotiationInfo,
    ext.EcPointFormats,
)

_GROUPS = (NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1, NamedGroup.X25519MLKEM768)
_RANDOM = counter_random(7)
_CLIENT_SHARES = {group: ClientKeyShare.generate(group, counter_random(group)) for group in _GROUPS}
_P256 = ec.derive_private_key(12345, ec.SECP256R1()).public_key()
_ED25519 = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key()
_KNOWN_ALERTS = frozenset(AlertDescription)


def _reencodes(message: HandshakeMessage, body: bytes) -> bool:
    """Whether `message` encodes back to `body`. RFC 5246 §7.4.1.2 gives a
    hello without extensions two encodings, no block and an empty block; we
    read both and write the first, so the second is the one other spelling
    allowed."""
    encoded = message.encode()[4:]
    if encoded == body:
        return True
    hello = isinstance(message, ClientHello | ServerHello)
    return hello and message.extensions == () and encoded + b"\x00\x00" == body


def _message(selector: int, body: bytes) -> None:
    msg_type = _MESSAGE_TYPES[selector % len(_MESSAGE_TYPES)]
    message = parse_handshake_message(msg_type, body)
    if not _reencodes(message, body):
        raise FuzzFinding(f"{type(message).__name__} re-encodes differently")


def _message12(selector: int, body: bytes) -> None:
    msg_type = _MESSAGE_TYPES_TLS12[selector % len(_MESSAGE_TYPES_TLS12)]
    message = parse_handshake_message(msg_type, body, TLS12)
    if message.msg_type != msg_type:
        raise FuzzFinding(f"type {msg_type} parsed as {type(message).__name__}")
    if not _reencodes(message, body):
        raise FuzzFinding(f"{type(message).__name__} (TLS 1.2) re-encodes differently")


def _typed(selector: int, body: bytes) -> None:
    kind = _TYPED[selector % len(_TYPED)]
    value = kind.parse(body)
    # A typed body may drop what it ignores (server_name skips unknown name
    # types, RFC 6066 §3), so the value, not the bytes, must survive.
    if kind.parse(value.encode()) != value:
        raise FuzzFinding(f"{kind.__name__} does not round-trip")


def _extension_block(selector: int, body: bytes) -> None:
    r = Reader(body)
    exts = ext.parse_extensions(r, ext.EXTENSIONS if selector & 1 else ext.PRESENT_EXTENSIONS)
    r.expect_end("extensions")
    types = [e.extension_type for e in exts]
    if len(set(types)) != len(types):
        raise FuzzFinding("duplicate extension types accepted (RFC 8446 §4.2)")


def _key_share(selector: int, body: bytes) -> None:
    group = _GROUPS[selector % len(_GROUPS)]
    if selector & 4:
        _CLIENT_SHARES[group].shared_secret(body)
    else:
        server_key_exchange(group, body, _RANDOM)


def _signature(selector: int, body: bytes) -> None:
    inp = Input(body)
    scheme = (
        inp.u16()
        if selector & 8
        else (SignatureScheme.ed25519 if selector & 4 else SignatureScheme.ecdsa_secp256r1_sha256)
    )
    key = _ED25519 if selector & 16 else _P256
    verify(scheme, key, b"transcript", inp.rest())
    raise FuzzFinding("an arbitrary signature verified")


_TARGETS: tuple[Callable[[int, bytes], None], ...] = (
    _message,
    _message,
    _message,
    _typed,
    _typed,
    _extension_block,
    _key_share,
    _signature,
    # Appended, so that the committed inputs keep choosing what they chose.
    _message12,
    _message12,
)


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    target = _TARGETS[data[0] % len(_TARGETS)]
    try:
        target(data[1], data[2:])
    except ProtocolError as error:
        if error.alert not in _KNOWN_ALERTS:
            raise FuzzFinding(f"ProtocolError with alert {error.alert!r}") from error
