"""Hello and handshake extensions (RFC 8446 §4.2, RFC 6066 §3, RFC 7301 §3.1).

Messages keep their extensions raw (`Extension`): order and unknown types
survive, and a block is checked only for what RFC 8446 §4.2 demands of every
block (no type twice). The state machine then parses the few bodies it acts
on with the typed classes below, each knowing the bounds of its own vectors.
Which typed class applies depends on the message carrying the extension
(key_share differs between ClientHello, ServerHello and HelloRetryRequest), so
the caller picks it: `find_typed(exts, KeyShareClientHello)`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Protocol, Self, TypeVar

from pinata.tls.codec import Reader, Vector, Writer
from pinata.tls.constants import ExtensionType
from pinata.tls.errors import Cause, ProtocolError, decode_error


class Carrier(enum.Enum):
    """The messages RFC 8446 §4.2's table names as carrying extensions."""

    client_hello = "CH"
    server_hello = "SH"
    hello_retry_request = "HRR"
    encrypted_extensions = "EE"
    certificate_request = "CR"
    certificate = "CT"
    new_session_ticket = "NST"


_E = ExtensionType
_CH, _SH, _HRR = Carrier.client_hello, Carrier.server_hello, Carrier.hello_retry_request
_EE, _CR = Carrier.encrypted_extensions, Carrier.certificate_request
_CT, _NST = Carrier.certificate, Carrier.new_session_ticket
# RFC 8446 §4.2 (and RFC 8449 §4 for record_size_limit): which message may
# carry which extension in TLS 1.3. The extensions TLS 1.3 does not use
# (ec_point_formats, extended_master_secret, ...) are absent: a dual-stack
# ClientHello carries them and they are ignored like unknown ones.
ALLOWED_IN: Mapping[int, frozenset[Carrier]] = MappingProxyType(
    {
        _E.server_name: frozenset({_CH, _EE}),
        _E.max_fragment_length: frozenset({_CH, _EE}),
        _E.status_request: frozenset({_CH, _CR, _CT}),
        _E.supported_groups: frozenset({_CH, _EE}),
        _E.signature_algorithms: frozenset({_CH, _CR}),
        _E.use_srtp: frozenset({_CH, _EE}),
        _E.heartbeat: frozenset({_CH, _EE}),
        _E.application_layer_protocol_negotiation: frozenset({_CH, _EE}),
        _E.signed_certificate_timestamp: frozenset({_CH, _CR, _CT}),
        _E.client_certificate_type: frozenset({_CH, _EE}),
        _E.server_certificate_type: frozenset({_CH, _EE}),
        _E.padding: frozenset({_CH}),
        _E.record_size_limit: frozenset({_CH, _EE}),
        _E.pre_shared_key: frozenset({_CH, _SH}),
        _E.early_data: frozenset({_CH, _EE, _NST}),
        _E.supported_versions: frozenset({_CH, _SH, _HRR}),
        _E.cookie: frozenset({_CH, _HRR}),
        _E.psk_key_exchange_modes: frozenset({_CH}),
        _E.certificate_authorities: frozenset({_CH, _CR}),
        _E.oid_filters: frozenset({_CR}),
        _E.post_handshake_auth: frozenset({_CH}),
        _E.signature_algorithms_cert: frozenset({_CH, _CR}),
        _E.key_share: frozenset({_CH, _SH, _HRR}),
    }
)


_ALLOWED_BY_CARRIER: Mapping[Carrier, frozenset[int]] = MappingProxyType(
    {c: frozenset(t for t, carriers in ALLOWED_IN.items() if c in carriers) for c in Carrier}
)


def allowed_in(carrier: Carrier) -> frozenset[int]:
    """The extension types §4.2 lets `carrier` hold."""
    return _ALLOWED_BY_CARRIER[carrier]


def refuse_misplaced(extensions: Iterable[Extension], carrier: Carrier) -> None:
    """§4.2: "If an implementation receives an extension which it recognizes
    and which is not specified for the message in which it appears, it MUST
    abort the handshake with an 'illegal_parameter' alert." Unknown types pass."""
    allowed = _ALLOWED_BY_CARRIER[carrier]
    for e in extensions:
        if e.extension_type in ALLOWED_IN and e.extension_type not in allowed:
            raise ProtocolError(
                Cause.extension_not_allowed_here, f"{carrier.value} with type {e.extension_type}"
            )


# The extension blocks' schemas (§4.1.2-§4.6.1). A hello's block, when
# present, must hold at least one extension; TLS 1.2's grammar (which a
# hello may follow) allows no tighter minimum than that.
EXTENSIONS = Vector(2)  # Extension extensions<0..2^16-1>
PRESENT_EXTENSIONS = Vector(2, 1)
TICKET_EXTENSIONS = Vector(2, 0, 0xFFFE)  # NewSessionTicket: <0..2^16-2>
_EXTENSION_DATA = Vector(2)  # opaque extension_data<0..2^16-1>


@dataclass(frozen=True)
class Extension:
    """One extension as it arrived: a type and its still-encoded body."""

    extension_type: int
    extension_data: bytes


def parse_extensions(r: Reader, schema: Vector) -> tuple[Extension, ...]:
    """The extension block at `r`, bounded by `schema` (`EXTENSIONS`,
    `PRESENT_EXTENSIONS` or `TICKET_EXTENSIONS`, as the message says)."""
    block = schema.reader(r)
    exts: list[Extension] = []
    seen: set[int] = set()
    while not block.at_end():
        extension_type = block.u16()
        extension_data = _EXTENSION_DATA.read(block)
        # §4.2: "There MUST NOT be more than one extension of the same type
        # in a given extension block."
        if extension_type in seen:
            raise ProtocolError(Cause.duplicate_extension, f"extension {extension_type}")
        seen.add(extension_type)
        exts.append(Extension(extension_type, extension_data))
    return tuple(exts)


def write_extensions(w: Writer, exts: Iterable[Extension], schema: Vector) -> None:
    """The extension block, bounded by the same `schema` its parser uses."""
    parts = []
    for ext in exts:
        _EXTENSION_DATA.check(len(ext.extension_data))
        parts.append(struct.pack(">HH", ext.extension_type, len(ext.extension_data)))
        parts.append(ext.extension_data)
    schema.write(w, b"".join(parts))


def find_extension(exts: Iterable[Extension], ext_type: int) -> bytes | None:
    """The body of the extension of type `ext_type`, or None when absent."""
    for ext in exts:
        if ext.extension_type == ext_type:
            return ext.extension_data
    return None


def pre_shared_key_is_last(exts: Sequence[Extension]) -> bool:
    """Whether §4.2.11's placement rule holds: pre_shared_key, when present in a
    ClientHello, MUST be its last extension. True when the extension is absent."""
    for i, ext in enumerate(exts):
        if ext.extension_type == ExtensionType.pre_shared_key:
            return i == len(exts) - 1
    return True


class TypedExtension(Protocol):
    extension_type: ClassVar[ExtensionType]

    @classmethod
    def parse(cls, data: bytes) -> Self: ...

    def encode(self) -> bytes: ...

    def to_extension(self) -> Extension: ...


_T = TypeVar("_T", bound=TypedExtension)


def find_typed(exts: Iterable[Extension], kind: type[_T]) -> _T | None:
    """The extension of `kind`'s type parsed as `kind`, or None when absent."""
    data = find_extension(exts, kind.extension_type)
    return None if data is None else kind.parse(data)


class _Body:
    """What every typed extension shares: wrapping its body as an `Extension`."""

    extension_type: ClassVar[ExtensionType]

    def encode(self) -> bytes:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def to_extension(self) -> Extension:
        return Extension(int(self.extension_type), self.encode())


def _parse_whole(schema: Vector, data: bytes, what: str) -> tuple[int, ...]:
    r = Reader(data)
    values = schema.read_u16s(r)
    r.expect_end(what)
    return values


def _encode(schema: Vector, values: tuple[int, ...]) -> bytes:
    w = Writer()
    schema.write_u16s(w, values)
    return w.getvalue()


# --- supported_versions (§4.2.1) ------------------------------------------


@dataclass(frozen=True)
class SupportedVersionsClientHello(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.supported_versions
    versions: tuple[int, ...]

    _SCHEMA: ClassVar[Vector] = Vector(1, 2, 254, item=2)  # ProtocolVersion versions<2..254>

    @classmethod
    def parse(cls, data: bytes) -> Self:
        return cls(_parse_whole(cls._SCHEMA, data, "supported_versions"))

    def encode(self) -> bytes:
        return _encode(self._SCHEMA, self.versions)


@dataclass(frozen=True)
class SupportedVersionsServerHello(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.supported_versions
    selected_version: int

    @classmethod
    def parse(cls, data: bytes) -> Self:
        r = Reader(data)
        selected_version = r.u16()
        r.expect_end("supported_versions")
        return cls(selected_version)

    def encode(self) -> bytes:
        return self.selected_version.to_bytes(2, "big")


# --- supported_groups (§4.2.7), signature_algorithms(_cert) (§4.2.3) -------

# SignatureScheme supported_signature_algorithms<2..2^16-2>
_SCHEMES = Vector(2, 2, 0xFFFE, item=2)


@dataclass(frozen=True)
class SupportedGroups(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.supported_groups
    groups: tuple[int, ...]

    # NamedGroup named_group_list<2..2^16-1>
    _SCHEMA: ClassVar[Vector] = Vector(2, 2, 0xFFFF, item=2)

    @classmethod
    def parse(cls, data: bytes) -> Self:
        return cls(_parse_whole(cls._SCHEMA, data, "supported_groups"))

    def encode(self) -> bytes:
        return _encode(self._SCHEMA, self.groups)


@dataclass(frozen=True)
class SignatureAlgorithms(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.signature_algorithms
    schemes: tuple[int, ...]

    @classmethod
    def parse(cls, data: bytes) -> Self:
        return cls(_parse_whole(_SCHEMES, data, "signature_algorithms"))

    def encode(self) -> bytes:
        return _encode(_SCHEMES, self.schemes)


@dataclass(frozen=True)
class SignatureAlgorithmsCert(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.signature_algorithms_cert
    schemes: tuple[int, ...]

    @classmethod
    def parse(cls, data: bytes) -> Self:
        return cls(_parse_whole(_SCHEMES, data, "signature_algorithms_cert"))

    def encode(self) -> bytes:
        return _encode(_SCHEMES, self.schemes)


# --- key_share (§4.2.8) -----------------------------------------------------

# opaque key_exchange<1..2^16-1>: an empty share parses here and is refused
# where the share is used, as any share of the wrong length for its group is
# (illegal_parameter, §4.2.8.2), as OpenSSL and tlsfuzzer expect.
_KEY_EXCHANGE = Vector(2, 0)
_CLIENT_SHARES = Vector(2)  # KeyShareEntry client_shares<0..2^16-1>


@dataclass(frozen=True)
class KeyShareEntry:
    group: int
    key_exchange: bytes

    # struct { NamedGroup group; opaque key_exchange<1..2^16-1>; }
    @classmethod
    def parse(cls, r: Reader) -> Self:
        group = r.u16()
        return cls(group, _KEY_EXCHANGE.read(r))

    def serialize(self, w: Writer) -> None:
        w.u16(self.group)
        _KEY_EXCHANGE.write(w, self.key_exchange)


@dataclass(frozen=True)
class KeyShareClientHello(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.key_share
    shares: tuple[KeyShareEntry, ...]

    # KeyShareEntry client_shares<0..2^16-1>
    @classmethod
    def parse(cls, data: bytes) -> Self:
        r = Reader(data)
        block = _CLIENT_SHARES.reader(r)
        r.expect_end("key_share")
        shares: list[KeyShareEntry] = []
        groups: set[int] = set()
        while not block.at_end():
            share = KeyShareEntry.parse(block)
            # §4.2.8: "Clients MUST NOT offer multiple KeyShareEntry values for
            # the same group... Servers MAY check for violations of these rules
            # and abort the handshake with an 'illegal_parameter' alert".
            if share.group in groups:
                raise ProtocolError(Cause.duplicate_key_share, f"group {share.group}")
            groups.add(share.group)
            shares.append(share)
        return cls(tuple(shares))

    def encode(self) -> bytes:
        w = Writer()
        with _CLIENT_SHARES.block(w):
            for share in self.shares:
                share.serialize(w)
        return w.getvalue()


@dataclass(frozen=True)
class KeyShareServerHello(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.key_share
    share: KeyShareEntry

    @classmethod
    def parse(cls, data: bytes) -> Self:
        r = Reader(data)
        share = KeyShareEntry.parse(r)
        r.expect_end("key_share")
        return cls(share)

    def encode(self) -> bytes:
        w = Writer()
        self.share.serialize(w)
        return w.getvalue()


@dataclass(frozen=True)
class KeyShareHelloRetryRequest(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.key_share
    selected_group: int

    @classmethod
    def parse(cls, data: bytes) -> Self:
        r = Reader(data)
        selected_group = r.u16()
        r.expect_end("key_share")
        return cls(selected_group)

    def encode(self) -> bytes:
        return self.selected_group.to_bytes(2, "big")


# --- cookie (§4.2.2) ------------------------------------------------------


@dataclass(frozen=True)
class Cookie(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.cookie
    cookie: bytes

    _SCHEMA: ClassVar[Vector] = Vector(2, 1)  # opaque cookie<1..2^16-1>

    @classmethod
    def parse(cls, data: bytes) -> Self:
        r = Reader(data)
        cookie = cls._SCHEMA.read(r)
        r.expect_end("cookie")
        return cls(cookie)

    def encode(self) -> bytes:
        w = Writer()
        self._SCHEMA.write(w, self.cookie)
        return w.getvalue()


# --- server_name (RFC 6066 §3) ----------------------------------------------

_HOST_NAME = 0
_SERVER_NAME_LIST = Vector(2, 1)  # ServerName server_name_list<1..2^16-1>
_HOST_NAME_VECTOR = Vector(2, 1)  # opaque HostName<1..2^16-1>


@dataclass(frozen=True)
class ServerName(_Body):
    """A client's host_name, or None: the server's empty acknowledgement
    (RFC 6066 §3, "extension_data field ... SHALL be empty") or a list that
    names no host."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.server_name
    host_name: str | None

    # ServerName server_name_list<1..2^16-1>; HostName opaque<1..2^16-1>
    @classmethod
    def parse(cls, data: bytes) -> Self:
        if not data:
            return cls(None)
        r = Reader(data)
        names = _SERVER_NAME_LIST.reader(r)
        r.expect_end("server_name")
        host_name: str | None = None
        while not names.at_end():
            name_type = names.u8()
            # RFC 6066 §3 requires any future NameType to start with a 16-bit
            # length, so an unknown type can be skipped like a host_name.
            name = _HOST_NAME_VECTOR.read(names)
            if name_type != _HOST_NAME:
                continue
            # "The ServerNameList MUST NOT contain more than one name of the
            # same name_type."
            if host_name is not None:
                raise ProtocolError(Cause.duplicate_host_name)
            try:
                host_name = name.decode("ascii")
            except UnicodeDecodeError:
                # "The hostname is represented as a byte string using ASCII
                # encoding without a trailing dot."
                raise decode_error("host_name is not ASCII") from None
        return cls(host_name)

    def encode(self) -> bytes:
        if self.host_name is None:
            return b""
        w = Writer()
        with _SERVER_NAME_LIST.block(w):
            w.u8(_HOST_NAME)
            _HOST_NAME_VECTOR.write(w, self.host_name.encode("ascii"))
        return w.getvalue()


# --- certificate_authorities (§4.2.4) ---------------------------------------


_AUTHORITIES = Vector(2, 3)  # DistinguishedName authorities<3..2^16-1>
_DISTINGUISHED_NAME = Vector(2, 1)  # opaque DistinguishedName<1..2^16-1>


@dataclass(frozen=True)
class CertificateAuthorities(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.certificate_authorities
    authorities: tuple[bytes, ...]

    # DistinguishedName authorities<3..2^16-1>; opaque DistinguishedName<1..2^16-1>
    @classmethod
    def parse(cls, data: bytes) -> Self:
        r = Reader(data)
        block = _AUTHORITIES.reader(r)
        r.expect_end("certificate_authorities")
        authorities: list[bytes] = []
        while not block.at_end():
            authorities.append(_DISTINGUISHED_NAME.read(block))
        return cls(tuple(authorities))

    def encode(self) -> bytes:
        w = Writer()
        with _AUTHORITIES.block(w):
            for dn in self.authorities:
                _DISTINGUISHED_NAME.write(w, dn)
        return w.getvalue()


# --- psk_key_exchange_modes (§4.2.9) ----------------------------------------


_KE_MODES = Vector(1, 1)  # PskKeyExchangeMode ke_modes<1..255>


@dataclass(frozen=True)
class PskKeyExchangeModes(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.psk_key_exchange_modes
    modes: tuple[int, ...]

    # PskKeyExchangeMode ke_modes<1..255>
    @classmethod
    def parse(cls, data: bytes) -> Self:
        r = Reader(data)
        modes = _KE_MODES.read(r)
        r.expect_end("psk_key_exchange_modes")
        return cls(tuple(modes))

    def encode(self) -> bytes:
        w = Writer()
        _KE_MODES.write(w, bytes(self.modes))
        return w.getvalue()


# --- application_layer_protocol_negotiation (RFC 7301 §3.1) -----------------


_PROTOCOL_NAME_LIST = Vector(2, 2)  # ProtocolName protocol_name_list<2..2^16-1>
_PROTOCOL_NAME = Vector(1, 1)  # opaque ProtocolName<1..2^8-1>


@dataclass(frozen=True)
class ApplicationLayerProtocolNegotiation(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.application_layer_protocol_negotiation
    protocols: tuple[bytes, ...]

    # ProtocolName protocol_name_list<2..2^16-1>; opaque ProtocolName<1..2^8-1>
    @classmethod
    def parse(cls, data: bytes) -> Self:
        r = Reader(data)
        block = _PROTOCOL_NAME_LIST.reader(r)
        r.expect_end("application_layer_protocol_negotiation")
        protocols: list[bytes] = []
        while not block.at_end():
            protocols.append(_PROTOCOL_NAME.read(block))
        return cls(tuple(protocols))

    def encode(self) -> bytes:
        w = Writer()
        with _PROTOCOL_NAME_LIST.block(w):
            for name in self.protocols:
                _PROTOCOL_NAME.write(w, name)
        return w.getvalue()


# --- early_data (§4.2.10) ---------------------------------------------------


@dataclass(frozen=True)
class EarlyDataIndication(_Body):
    """early_data as a ClientHello or EncryptedExtensions carries it: empty.
    (In NewSessionTicket it holds max_early_data_size; we issue no tickets.)"""

    extension_type: ClassVar[ExtensionType] = ExtensionType.early_data

    @classmethod
    def parse(cls, data: bytes) -> Self:
        Reader(data).expect_end("early_data")
        return cls()

    def encode(self) -> bytes:
        return b""


__all__ = [
    "ALLOWED_IN",
    "EXTENSIONS",
    "PRESENT_EXTENSIONS",
    "TICKET_EXTENSIONS",
    "ApplicationLayerProtocolNegotiation",
    "Carrier",
    "CertificateAuthorities",
    "Cookie",
    "EarlyDataIndication",
    "Extension",
    "KeyShareClientHello",
    "KeyShareEntry",
    "KeyShareHelloRetryRequest",
    "KeyShareServerHello",
    "PskKeyExchangeModes",
    "ServerName",
    "SignatureAlgorithms",
    "SignatureAlgorithmsCert",
    "SupportedGroups",
    "SupportedVersionsClientHello",
    "SupportedVersionsServerHello",
    "TypedExtension",
    "allowed_in",
    "find_extension",
    "find_typed",
    "parse_extensions",
    "pre_shared_key_is_last",
    "refuse_misplaced",
    "write_extensions",
]
