"""Handshake message bodies (RFC 8446 §4), one frozen dataclass each.

`parse` reads a body from a `Reader` (the handshake header is the framer's
business) and `serialize` writes one; `encode` gives the whole message,
header included, as it enters the transcript. Parsing checks the wire
format only: whether a value is acceptable (a version, a compression method,
the length of verify_data) is for the state machine, which knows the context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Self

from pinata.tls.codec import Reader, Vector, Writer
from pinata.tls.constants import HELLO_RETRY_REQUEST_RANDOM, TLS12, HandshakeType
from pinata.tls.errors import Cause, ProtocolError
from pinata.tls.extensions import (
    EXTENSIONS,
    PRESENT_EXTENSIONS,
    TICKET_EXTENSIONS,
    Extension,
    parse_extensions,
    write_extensions,
)

# The largest handshake message the framer will reassemble. RFC 8446 allows
# 2^24-1, but nothing this appliance accepts comes near 64 KiB: a client's
# certificate chain is the biggest, and ours are short.
MAX_HANDSHAKE_MESSAGE = 65536

_RANDOM_LEN = 32

# Each vector's schema, once, for both directions (RFC 8446 §4).
_LEGACY_SESSION_ID = Vector(1, 0, 32)  # opaque legacy_session_id<0..32>
_CIPHER_SUITES = Vector(2, 2, 0xFFFE, item=2)  # CipherSuite cipher_suites<2..2^16-2>
_COMPRESSION_METHODS = Vector(1, 1)  # opaque legacy_compression_methods<1..2^8-1>
_REQUEST_CONTEXT = Vector(1)  # opaque certificate_request_context<0..2^8-1>
_CERT_DATA = Vector(3, 1)  # opaque cert_data<1..2^24-1>
_CERTIFICATE_LIST = Vector(3)  # CertificateEntry certificate_list<0..2^24-1>
_SIGNATURE = Vector(2)  # opaque signature<0..2^16-1>
_TICKET_NONCE = Vector(1)  # opaque ticket_nonce<0..255>
_TICKET = Vector(2, 1)  # opaque ticket<1..2^16-1>


class _Message:
    """What every message shares: framing its body as a whole handshake message."""

    msg_type: ClassVar[HandshakeType]

    def serialize(self, w: Writer) -> None:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def encode(self) -> bytes:
        # §4: struct { HandshakeType msg_type; uint24 length; ... } Handshake
        w = Writer()
        w.u8(self.msg_type)
        with w.prefixed(3):
            self.serialize(w)
        return w.getvalue()


def _write_random(w: Writer, random: bytes) -> None:
    if len(random) != _RANDOM_LEN:
        raise ValueError(f"random must be {_RANDOM_LEN} bytes, not {len(random)}")
    w.fixed(random)


def _parse_hello_extensions(r: Reader) -> tuple[Extension, ...]:
    # A hello from TLS 1.2 or earlier may stop after the compression methods
    # (RFC 5246 §7.4.1.2). Such a hello parses with no extensions, so the state
    # machine can answer it with protocol_version (§4.1.2, §4.2.1) rather
    # than decode_error. A block that is present must not be empty.
    if r.at_end():
        return ()
    return parse_extensions(r, PRESENT_EXTENSIONS)


def _write_hello_extensions(w: Writer, extensions: tuple[Extension, ...]) -> None:
    if extensions:
        write_extensions(w, extensions, PRESENT_EXTENSIONS)


@dataclass(frozen=True)
class ClientHello(_Message):
    """§4.1.2. `legacy_version` is keyword-only so the rest keep wire order."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.client_hello
    legacy_version: int = field(default=TLS12, kw_only=True)
    random: bytes
    legacy_session_id: bytes
    cipher_suites: tuple[int, ...]
    legacy_compression_methods: bytes
    extensions: tuple[Extension, ...]

    @classmethod
    def parse(cls, r: Reader) -> Self:
        legacy_version = r.u16()
        random = r.fixed(_RANDOM_LEN)
        legacy_session_id = _LEGACY_SESSION_ID.read(r)
        suites = _CIPHER_SUITES.read_u16s(r)
        legacy_compression_methods = _COMPRESSION_METHODS.read(r)
        extensions = _parse_hello_extensions(r)
        return cls(
            random,
            legacy_session_id,
            suites,
            legacy_compression_methods,
            extensions,
            legacy_version=legacy_version,
        )

    def serialize(self, w: Writer) -> None:
        w.u16(self.legacy_version)
        _write_random(w, self.random)
        _LEGACY_SESSION_ID.write(w, self.legacy_session_id)
        _CIPHER_SUITES.write_u16s(w, self.cipher_suites)
        _COMPRESSION_METHODS.write(w, self.legacy_compression_methods)
        _write_hello_extensions(w, self.extensions)


@dataclass(frozen=True)
class ServerHello(_Message):
    """§4.1.3; also a HelloRetryRequest (§4.1.4), told apart by its random."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.server_hello
    random: bytes
    legacy_session_id_echo: bytes
    cipher_suite: int
    extensions: tuple[Extension, ...]
    legacy_version: int = TLS12
    legacy_compression_method: int = 0

    @property
    def is_hello_retry_request(self) -> bool:
        return self.random == HELLO_RETRY_REQUEST_RANDOM

    @classmethod
    def parse(cls, r: Reader) -> Self:
        legacy_version = r.u16()
        random = r.fixed(_RANDOM_LEN)
        legacy_session_id_echo = _LEGACY_SESSION_ID.read(r)
        cipher_suite = r.u16()
        legacy_compression_method = r.u8()
        extensions = _parse_hello_extensions(r)
        return cls(
            random,
            legacy_session_id_echo,
            cipher_suite,
            extensions,
            legacy_version,
            legacy_compression_method,
        )

    def serialize(self, w: Writer) -> None:
        w.u16(self.legacy_version)
        _write_random(w, self.random)
        _LEGACY_SESSION_ID.write(w, self.legacy_session_id_echo)
        w.u16(self.cipher_suite)
        w.u8(self.legacy_compression_method)
        _write_hello_extensions(w, self.extensions)


@dataclass(frozen=True)
class EncryptedExtensions(_Message):
    """§4.3.1: Extension extensions<0..2^16-1>."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.encrypted_extensions
    extensions: tuple[Extension, ...]

    @classmethod
    def parse(cls, r: Reader) -> Self:
        return cls(parse_extensions(r, EXTENSIONS))

    def serialize(self, w: Writer) -> None:
        write_extensions(w, self.extensions, EXTENSIONS)


@dataclass(frozen=True)
class CertificateRequest(_Message):
    """§4.3.2: opaque certificate_request_context<0..2^8-1>;
    Extension extensions<2..2^16-1> (signature_algorithms is mandatory)."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate_request
    certificate_request_context: bytes
    extensions: tuple[Extension, ...]

    @classmethod
    def parse(cls, r: Reader) -> Self:
        context = _REQUEST_CONTEXT.read(r)
        return cls(context, parse_extensions(r, PRESENT_EXTENSIONS))

    def serialize(self, w: Writer) -> None:
        _REQUEST_CONTEXT.write(w, self.certificate_request_context)
        write_extensions(w, self.extensions, PRESENT_EXTENSIONS)


@dataclass(frozen=True)
class CertificateEntry:
    """§4.4.2: opaque cert_data<1..2^24-1> (X.509 DER); Extension extensions<0..2^16-1>."""

    cert_data: bytes
    extensions: tuple[Extension, ...]

    def __repr__(self) -> str:  # a certificate is kilobytes of DER
        return f"CertificateEntry(<{len(self.cert_data)} bytes>, {self.extensions!r})"

    @classmethod
    def parse(cls, r: Reader) -> Self:
        cert_data = _CERT_DATA.read(r)
        return cls(cert_data, parse_extensions(r, EXTENSIONS))

    def serialize(self, w: Writer) -> None:
        _CERT_DATA.write(w, self.cert_data)
        write_extensions(w, self.extensions, EXTENSIONS)


@dataclass(frozen=True)
class Certificate(_Message):
    """§4.4.2: opaque certificate_request_context<0..2^8-1>;
    CertificateEntry certificate_list<0..2^24-1>."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate
    certificate_request_context: bytes
    certificate_list: tuple[CertificateEntry, ...]

    @classmethod
    def parse(cls, r: Reader) -> Self:
        context = _REQUEST_CONTEXT.read(r)
        block = _CERTIFICATE_LIST.reader(r)
        entries: list[CertificateEntry] = []
        while not block.at_end():
            entries.append(CertificateEntry.parse(block))
        return cls(context, tuple(entries))

    def serialize(self, w: Writer) -> None:
        _REQUEST_CONTEXT.write(w, self.certificate_request_context)
        with _CERTIFICATE_LIST.block(w):
            for entry in self.certificate_list:
                entry.serialize(w)


@dataclass(frozen=True)
class CertificateVerify(_Message):
    """§4.4.3: SignatureScheme algorithm; opaque signature<0..2^16-1>."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.certificate_verify
    algorithm: int
    signature: bytes

    @classmethod
    def parse(cls, r: Reader) -> Self:
        algorithm = r.u16()
        return cls(algorithm, _SIGNATURE.read(r))

    def serialize(self, w: Writer) -> None:
        w.u16(self.algorithm)
        _SIGNATURE.write(w, self.signature)


@dataclass(frozen=True)
class Finished(_Message):
    """§4.4.4: opaque verify_data[Hash.length]. The hash, and so the length,
    is the negotiated suite's: the state machine checks it."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.finished
    verify_data: bytes

    @classmethod
    def parse(cls, r: Reader) -> Self:
        return cls(r.rest())

    def serialize(self, w: Writer) -> None:
        w.fixed(self.verify_data)


@dataclass(frozen=True)
class KeyUpdate(_Message):
    """§4.6.3: KeyUpdateRequest request_update."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.key_update
    request_update: int

    @classmethod
    def parse(cls, r: Reader) -> Self:
        request_update = r.u8()
        # §4.6.3: "If an implementation receives any other value [than
        # update_not_requested(0) or update_requested(1)], it MUST terminate
        # the connection with an 'illegal_parameter' alert."
        if request_update not in (0, 1):
            raise ProtocolError(
                Cause.invalid_key_update_request, f"request_update {request_update}"
            )
        return cls(request_update)

    def serialize(self, w: Writer) -> None:
        if self.request_update not in (0, 1):
            raise ValueError(f"request_update must be 0 or 1, not {self.request_update}")
        w.u8(self.request_update)


@dataclass(frozen=True)
class NewSessionTicket(_Message):
    """§4.6.1. We issue none and resume none; a client side still has to
    read (and may ignore) the tickets a server sends."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.new_session_ticket
    ticket_lifetime: int
    ticket_age_add: int
    ticket_nonce: bytes
    ticket: bytes
    extensions: tuple[Extension, ...]

    @classmethod
    def parse(cls, r: Reader) -> Self:
        ticket_lifetime = r.u32()
        ticket_age_add = r.u32()
        ticket_nonce = _TICKET_NONCE.read(r)
        ticket = _TICKET.read(r)
        extensions = parse_extensions(r, TICKET_EXTENSIONS)
        return cls(ticket_lifetime, ticket_age_add, ticket_nonce, ticket, extensions)

    def serialize(self, w: Writer) -> None:
        w.u32(self.ticket_lifetime)
        w.u32(self.ticket_age_add)
        _TICKET_NONCE.write(w, self.ticket_nonce)
        _TICKET.write(w, self.ticket)
        write_extensions(w, self.extensions, TICKET_EXTENSIONS)


@dataclass(frozen=True)
class EndOfEarlyData(_Message):
    """§4.5: an empty struct. We never accept early data, so never expect it."""

    msg_type: ClassVar[HandshakeType] = HandshakeType.end_of_early_data

    @classmethod
    def parse(cls, r: Reader) -> Self:
        return cls()

    def serialize(self, w: Writer) -> None:
        pass


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


def parse_handshake_message(msg_type: int, body: bytes | memoryview) -> HandshakeMessage:
    """The message of type `msg_type` whose body is exactly `body`.

    message_hash (254) never travels on the wire (§4.4.1), so it is as
    unexpected here as any type we do not know.
    """
    kind = _PARSERS.get(msg_type)
    if kind is None:
        raise ProtocolError(Cause.unknown_handshake_type, f"type {msg_type}")
    r = Reader(body)
    message = kind.parse(r)
    r.expect_end(kind.__name__)
    return message


__all__ = [
    "MAX_HANDSHAKE_MESSAGE",
    "Certificate",
    "CertificateEntry",
    "CertificateRequest",
    "CertificateVerify",
    "ClientHello",
    "EncryptedExtensions",
    "EndOfEarlyData",
    "Finished",
    "HandshakeMessage",
    "KeyUpdate",
    "NewSessionTicket",
    "ServerHello",
    "parse_handshake_message",
]
