"""Handshake message bodies (RFC 8446 §4), one struct each (`codec.wire`),
whose fields (each with its wire kind, in the RFC struct's order) are its
schema. Immutable as mypy sees them (no assignment type-checks), not at run
time: module-level instances shared by every connection (a config's
extensions, constant hellos' parts) rely on that check.

`parse` reads a body from a `Reader` (the handshake header is the framer's
business) and `serialize` writes one; `encode` gives the whole message,
header included, as it enters the transcript. Parsing checks the wire
format only: whether a value is acceptable (a version, a compression method,
the length of verify_data) is for the state machine, which knows the context.
"""

from dataclasses import field
from typing import Annotated, ClassVar, Self, cast

from pinata.tls.codec import (
    REST,
    U8,
    U16,
    U32,
    Kind,
    Reader,
    Vector,
    Writer,
    fixed,
    list_of,
    opaque,
    struct_kind,
    uint8s,
    uint16s,
    wire,
)
from pinata.tls.constants import (
    EC_CURVE_TYPE_NAMED_CURVE,
    HELLO_RETRY_REQUEST_RANDOM,
    TLS12,
    TLS13,
    HandshakeType,
)
from pinata.tls.errors import Cause, ProtocolError
from pinata.tls.extensions import (
    EXTENSIONS,
    HELLO_EXTENSIONS,
    PRESENT_EXTENSIONS,
    TICKET_EXTENSIONS,
    Extension,
    extension_block,
)

# The largest handshake message the framer will reassemble. RFC 8446 allows
# 2^24-1, but nothing this appliance accepts comes near 64 KiB: a client's
# certificate chain is the biggest, and ours are short.
MAX_HANDSHAKE_MESSAGE = 65536

# Each vector's schema, once, for both directions (RFC 8446 §4).
_RANDOM = fixed(32)  # Random random (opaque[32])
_LEGACY_SESSION_ID = Vector(1, 0, 32)  # opaque legacy_session_id<0..32>
_REQUEST_CONTEXT = Vector(1)  # opaque certificate_request_context<0..2^8-1>
_EXTENSIONS = extension_block(EXTENSIONS)  # Extension extensions<0..2^16-1>
_PRESENT_EXTENSIONS = extension_block(PRESENT_EXTENSIONS)
# §4: struct { HandshakeType msg_type; uint24 length; ... } Handshake
_MAX_BODY = 0xFFFFFF


class _Message:
    """What every message shares: its body is its struct (declared once, with
    `wire`), and framing the body as a whole handshake message."""

    msg_type: ClassVar[HandshakeType]
    wire: ClassVar[Kind]

    @classmethod
    def parse(cls, r: Reader) -> Self:
        """The body at `r` (the caller checks that nothing follows)."""
        return cast(Self, cls.wire.read(r))

    def serialize(self, w: Writer) -> None:
        """The body; `ValueError` for a field out of its bounds."""
        self.wire.write(w, self)

    def encode(self) -> bytes:
        """The whole message, header included; `ValueError` for a field out of its bounds."""
        w = Writer()
        buf = w._buf
        buf += b"\0\0\0\0"  # msg_type and the length, known once the body is written
        self.wire.write(w, self)
        n = len(buf) - 4
        if n > _MAX_BODY:
            raise ValueError(f"a {n}-byte body does not fit a uint24 length")
        buf[0] = self.msg_type
        buf[1:4] = n.to_bytes(3, "big")
        return bytes(buf)


@wire
class ClientHello(_Message):
    """§4.1.2. `legacy_version` is keyword-only so the rest keep their
    positions; HELLO_EXTENSIONS: a TLS 1.2 hello may have no block at all."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.client_hello
    legacy_version: Annotated[int, U16] = field(default=TLS12, kw_only=True)
    random: Annotated[bytes, _RANDOM]
    legacy_session_id: Annotated[bytes, _LEGACY_SESSION_ID]
    # CipherSuite cipher_suites<2..2^16-2>
    cipher_suites: Annotated[tuple[int, ...], uint16s(Vector(2, 2, 0xFFFE, item=2))]
    # opaque legacy_compression_methods<1..2^8-1>
    legacy_compression_methods: Annotated[bytes, Vector(1, 1)]
    extensions: Annotated[tuple[Extension, ...], HELLO_EXTENSIONS]


@wire
class ServerHello(_Message):
    """§4.1.3; also a HelloRetryRequest (§4.1.4), told apart by its random.
    The legacy fields are keyword-only, with the values TLS 1.3 sends."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.server_hello
    legacy_version: Annotated[int, U16] = field(default=TLS12, kw_only=True)
    random: Annotated[bytes, _RANDOM]
    legacy_session_id_echo: Annotated[bytes, _LEGACY_SESSION_ID]
    cipher_suite: Annotated[int, U16]
    legacy_compression_method: Annotated[int, U8] = field(default=0, kw_only=True)
    extensions: Annotated[tuple[Extension, ...], HELLO_EXTENSIONS]

    @property
    def is_hello_retry_request(self) -> bool:
        return self.random == HELLO_RETRY_REQUEST_RANDOM


@wire
class EncryptedExtensions(_Message):
    """§4.3.1: Extension extensions<0..2^16-1>."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.encrypted_extensions
    extensions: Annotated[tuple[Extension, ...], _EXTENSIONS]


@wire
class CertificateRequest(_Message):
    """§4.3.2 (signature_algorithms is mandatory, so the block is <2..2^16-1>)."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate_request
    certificate_request_context: Annotated[bytes, _REQUEST_CONTEXT]
    extensions: Annotated[tuple[Extension, ...], _PRESENT_EXTENSIONS]


@wire
class CertificateEntry:
    """§4.4.2 (X.509 DER in cert_data)."""

    cert_data: Annotated[bytes, Vector(3, 1)]  # opaque cert_data<1..2^24-1>
    extensions: Annotated[tuple[Extension, ...], _EXTENSIONS]

    def __repr__(self) -> str:  # a certificate is kilobytes of DER
        return f"CertificateEntry(<{len(self.cert_data)} bytes>, {self.extensions!r})"


@wire
class Certificate(_Message):
    """§4.4.2."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate
    certificate_request_context: Annotated[bytes, _REQUEST_CONTEXT]
    certificate_list: Annotated[  # CertificateEntry certificate_list<0..2^24-1>
        tuple[CertificateEntry, ...], list_of(Vector(3), struct_kind(CertificateEntry))
    ]


@wire
class CertificateVerify(_Message):
    """§4.4.3."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate_verify
    algorithm: Annotated[int, U16]  # SignatureScheme algorithm
    signature: Annotated[bytes, Vector(2)]  # opaque signature<0..2^16-1>


@wire
class Finished(_Message):
    """§4.4.4: opaque verify_data[Hash.length]. The hash, and so the length,
    is the negotiated suite's: the state machine checks it."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.finished
    verify_data: Annotated[bytes, REST]


def _read_request_update(r: Reader) -> int:
    request_update = r.u8()
    # §4.6.3: "If an implementation receives any other value [than
    # update_not_requested(0) or update_requested(1)], it MUST terminate
    # the connection with an 'illegal_parameter' alert."
    if request_update not in (0, 1):
        raise ProtocolError(Cause.invalid_key_update_request, f"request_update {request_update}")
    return request_update


def _write_request_update(w: Writer, request_update: int) -> None:
    if request_update not in (0, 1):
        raise ValueError(f"request_update must be 0 or 1, not {request_update}")
    w.u8(request_update)


# enum { update_not_requested(0), update_requested(1), (255) } KeyUpdateRequest
_KEY_UPDATE_REQUEST = Kind(_read_request_update, _write_request_update)


@wire
class KeyUpdate(_Message):
    """§4.6.3."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.key_update
    request_update: Annotated[int, _KEY_UPDATE_REQUEST]


@wire
class NewSessionTicket(_Message):
    """§4.6.1. We issue none and resume none; a client side still has to
    read (and may ignore) the tickets a server sends."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.new_session_ticket
    ticket_lifetime: Annotated[int, U32]
    ticket_age_add: Annotated[int, U32]
    ticket_nonce: Annotated[bytes, Vector(1)]  # opaque ticket_nonce<0..255>
    ticket: Annotated[bytes, Vector(2, 1)]  # opaque ticket<1..2^16-1>
    extensions: Annotated[tuple[Extension, ...], extension_block(TICKET_EXTENSIONS)]


@wire
class EndOfEarlyData(_Message):
    """§4.5: an empty struct. We never accept early data, so never expect it."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.end_of_early_data


# ---- TLS 1.2 (RFC 5246 §7.4, RFC 8422 §5) ---------------------------------


def _read_curve_type(r: Reader) -> int:
    curve_type = r.u8()
    # RFC 8422 §5.4: explicit_prime and explicit_char2 are deprecated and
    # laid out differently; only named_curve can be read at all.
    if curve_type != EC_CURVE_TYPE_NAMED_CURVE:
        raise ProtocolError(Cause.curve_type_not_named, f"curve_type {curve_type}")
    return curve_type


def _write_curve_type(w: Writer, curve_type: int) -> None:
    if curve_type != EC_CURVE_TYPE_NAMED_CURVE:
        raise ValueError("only named_curve (3) is sent")
    w.u8(curve_type)


# ECCurveType curve_type, as far as we speak it: named_curve only.
_CURVE_TYPE = Kind(_read_curve_type, _write_curve_type)
# RFC 8422 §5.4: struct { opaque point <1..2^8-1>; } ECPoint;
_EC_POINT = Vector(1, 1)
# RFC 5246 §7.4.2: opaque ASN.1Cert<1..2^24-1>;
_ASN1_CERT = opaque(Vector(3, 1))
# RFC 5246 §7.4.4: opaque DistinguishedName<1..2^16-1>;
_DISTINGUISHED_NAME = opaque(Vector(2, 1))


@wire
class HelloRequest(_Message):
    """RFC 5246 §7.4.1.1: struct { } HelloRequest. We never send one; a
    server's is refused (we do not renegotiate)."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.hello_request


@wire
class ServerKeyExchange(_Message):
    """RFC 8422 §5.4 for ECDHE_ECDSA / ECDHE_RSA: ServerECDHParams (named
    curve, point) then a digitally-signed struct (RFC 5246 §4.7: the
    SignatureAndHashAlgorithm, which is a SignatureScheme code point, then
    opaque signature<0..2^16-1>)."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.server_key_exchange
    curve_type: Annotated[int, _CURVE_TYPE]
    named_curve: Annotated[int, U16]
    public: Annotated[bytes, _EC_POINT]
    algorithm: Annotated[int, U16]
    signature: Annotated[bytes, Vector(2)]

    def params(self) -> bytes:
        """ServerECDHParams as sent: what the signature covers, after the randoms."""
        w = Writer()
        _CURVE_TYPE.write(w, self.curve_type)
        w.u16(self.named_curve)
        _EC_POINT.write(w, self.public)
        return w.getvalue()


@wire
class ServerHelloDone(_Message):
    """RFC 5246 §7.4.5: struct { } ServerHelloDone."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.server_hello_done


@wire
class ClientKeyExchange(_Message):
    """RFC 8422 §5.7 for ECDHE: ClientECDiffieHellmanPublic, always the
    explicit point (the implicit form is for fixed ECDH, which we refuse)."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.client_key_exchange
    public: Annotated[bytes, _EC_POINT]


@wire
class CertificateRequest12(_Message):
    """RFC 5246 §7.4.4 (RFC 8422 §5.5 adds ecdsa_sign)."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate_request
    # ClientCertificateType certificate_types<1..2^8-1>;
    certificate_types: Annotated[tuple[int, ...], uint8s(Vector(1, 1))]
    # SignatureAndHashAlgorithm supported_signature_algorithms<2..2^16-2>;
    supported_signature_algorithms: Annotated[
        tuple[int, ...], uint16s(Vector(2, 2, 0xFFFE, item=2))
    ]
    # DistinguishedName certificate_authorities<0..2^16-1>;
    certificate_authorities: Annotated[tuple[bytes, ...], list_of(Vector(2), _DISTINGUISHED_NAME)]


@wire
class Certificate12(_Message):
    """RFC 5246 §7.4.2: ASN.1Cert certificate_list<0..2^24-1>; no request
    context, no per-entry extensions (those are TLS 1.3's)."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate
    certificate_list: Annotated[tuple[bytes, ...], list_of(Vector(3), _ASN1_CERT)]

    def __repr__(self) -> str:  # certificates are kilobytes of DER
        return f"Certificate12(<{len(self.certificate_list)} certificates>)"


HandshakeMessage = (
    ClientHello
    | ServerHello
    | EncryptedExtensions
    | CertificateRequest
    | Certificate
    | CertificateVerify
    | Finished
    | KeyUpdate
    | NewSessionTicket
    | EndOfEarlyData
    | HelloRequest
    | ServerKeyExchange
    | ServerHelloDone
    | ClientKeyExchange
    | CertificateRequest12
    | Certificate12
)

_PARSERS: dict[int, type[HandshakeMessage]] = {
    cls.msg_type: cls
    for cls in (
        ClientHello,
        ServerHello,
        EncryptedExtensions,
        CertificateRequest,
        Certificate,
        CertificateVerify,
        Finished,
        KeyUpdate,
        NewSessionTicket,
        EndOfEarlyData,
    )
}


# TLS 1.2's messages (RFC 5246 §7.4): Certificate and CertificateRequest
# have their 1.2 layouts; CertificateVerify and Finished share the wire
# format. KeyUpdate is parsed so that Established can name it (a TLS 1.3
# message in a 1.2 connection); the other TLS 1.3-only types are unknown.
_PARSERS_TLS12: dict[int, type[HandshakeMessage]] = {
    cls.msg_type: cls
    for cls in (
        HelloRequest,
        ClientHello,
        ServerHello,
        Certificate12,
        ServerKeyExchange,
        CertificateRequest12,
        ServerHelloDone,
        CertificateVerify,
        ClientKeyExchange,
        Finished,
        KeyUpdate,
    )
}


def handshake_message_kind(msg_type: int, version: int = TLS13) -> type[HandshakeMessage]:
    """The message class of type `msg_type` as `version` (TLS13 or TLS12)
    lays it out; raises `ProtocolError` for a type we do not know.

    message_hash (254) never travels on the wire (§4.4.1), so it is as
    unexpected here as any type we do not know.
    """
    kind = (_PARSERS_TLS12 if version == TLS12 else _PARSERS).get(msg_type)
    if kind is None:
        raise ProtocolError(Cause.unknown_handshake_type, f"type {msg_type}")
    return kind


def parse_handshake_message(
    msg_type: int, body: bytes | memoryview, version: int = TLS13
) -> HandshakeMessage:
    """The message of type `msg_type` whose body is exactly `body`, as
    `version` (TLS13 or TLS12; before the ServerHello, TLS13: the hellos
    read the same in both) lays it out."""
    kind = handshake_message_kind(msg_type, version)
    r = Reader(body)
    message: HandshakeMessage = kind.wire.read(r)
    if r._pos != r._end:  # a call only for the error
        r.expect_end(kind.__name__)
    return message


__all__ = [
    "MAX_HANDSHAKE_MESSAGE",
    "Certificate",
    "Certificate12",
    "CertificateEntry",
    "CertificateRequest",
    "CertificateRequest12",
    "CertificateVerify",
    "ClientHello",
    "ClientKeyExchange",
    "EncryptedExtensions",
    "EndOfEarlyData",
    "Finished",
    "HandshakeMessage",
    "HelloRequest",
    "KeyUpdate",
    "NewSessionTicket",
    "ServerHello",
    "ServerHelloDone",
    "ServerKeyExchange",
    "handshake_message_kind",
    "parse_handshake_message",
]
