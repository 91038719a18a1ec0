"""Hello and handshake extensions (RFC 8446 §4.2, RFC 6066 §3, RFC 7301 §3.1).

Messages keep their extensions raw (`Extension`): order and unknown types
survive, and a block is checked only for what RFC 8446 §4.2 demands of every
block (no type twice). The state machine then parses the few bodies it acts
on with the typed classes below, each knowing the bounds of its own vectors.
Which typed class applies depends on the message carrying the extension
(key_share differs between ClientHello, ServerHello and HelloRetryRequest), so
the caller picks it: `find_typed(exts, KeyShareClientHello)`.
"""

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, ClassVar, Protocol, Self, TypeVar, cast

from pinata.tls.codec import (
    U8,
    U16,
    Kind,
    Reader,
    Vector,
    Writer,
    list_of,
    opaque,
    struct_kind,
    uint8s,
    uint16s,
    wire,
)
from pinata.tls.constants import ExtensionType
from pinata.tls.errors import Cause, ProtocolError


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


# The same table for TLS 1.2, where only the hellos carry extensions (RFC
# 5246 §7.4.1.4): ServerHello may answer only what the ClientHello offered
# (§7.4.1.4: "MUST NOT ... unless the same extension type appeared in the
# corresponding ClientHello"), and only these make sense in it.
ALLOWED_IN_TLS12: Mapping[int, frozenset[Carrier]] = MappingProxyType(
    {
        _E.server_name: frozenset({_CH, _SH}),  # RFC 6066 §3
        _E.max_fragment_length: frozenset({_CH, _SH}),  # RFC 6066 §4
        _E.status_request: frozenset({_CH, _SH}),  # RFC 6066 §8
        _E.supported_groups: frozenset({_CH}),  # RFC 8422 §5.1
        _E.ec_point_formats: frozenset({_CH, _SH}),  # RFC 8422 §5.2
        _E.signature_algorithms: frozenset({_CH}),  # RFC 5246 §7.4.1.4.1
        _E.heartbeat: frozenset({_CH, _SH}),  # RFC 6520 §2
        _E.application_layer_protocol_negotiation: frozenset({_CH, _SH}),  # RFC 7301
        _E.signed_certificate_timestamp: frozenset({_CH, _SH}),  # RFC 6962 §3.3.1
        _E.padding: frozenset({_CH}),  # RFC 7685 §3
        _E.encrypt_then_mac: frozenset({_CH, _SH}),  # RFC 7366 §2
        _E.extended_master_secret: frozenset({_CH, _SH}),  # RFC 7627 §5.1
        _E.record_size_limit: frozenset({_CH, _SH}),  # RFC 8449 §4
        _E.session_ticket: frozenset({_CH, _SH}),  # RFC 5077 §3.2
        _E.renegotiation_info: frozenset({_CH, _SH}),  # RFC 5746 §3.2
        # TLS 1.3's own extensions, ignored by a 1.2 server in a hello that
        # also offers 1.3, never allowed in a TLS 1.2 ServerHello.
        _E.supported_versions: frozenset({_CH}),
        _E.key_share: frozenset({_CH}),
        _E.pre_shared_key: frozenset({_CH}),
        _E.early_data: frozenset({_CH}),
        _E.cookie: frozenset({_CH}),
        _E.psk_key_exchange_modes: frozenset({_CH}),
        _E.certificate_authorities: frozenset({_CH}),
        _E.post_handshake_auth: frozenset({_CH}),
        _E.signature_algorithms_cert: frozenset({_CH}),
    }
)


_ALLOWED_BY_CARRIER: Mapping[Carrier, frozenset[int]] = MappingProxyType(
    {c: frozenset(t for t, carriers in ALLOWED_IN.items() if c in carriers) for c in Carrier}
)


_ALLOWED_BY_CARRIER_TLS12: Mapping[Carrier, frozenset[int]] = MappingProxyType(
    {c: frozenset(t for t, carriers in ALLOWED_IN_TLS12.items() if c in carriers) for c in Carrier}
)


def allowed_in(carrier: Carrier) -> frozenset[int]:
    """The extension types §4.2 lets `carrier` hold."""
    return _ALLOWED_BY_CARRIER[carrier]


def allowed_in_tls12(carrier: Carrier) -> frozenset[int]:
    """The extension types a TLS 1.2 `carrier` (a hello) may hold (`ALLOWED_IN_TLS12`)."""
    return _ALLOWED_BY_CARRIER_TLS12[carrier]


# The extension blocks' schemas (§4.1.2-§4.6.1).
EXTENSIONS = Vector(2)  # Extension extensions<0..2^16-1>
PRESENT_EXTENSIONS = Vector(2, 1)
TICKET_EXTENSIONS = Vector(2, 0, 0xFFFE)  # NewSessionTicket: <0..2^16-2>


@wire
class Extension:
    """One extension as it arrived: a type and its still-encoded body (§4.2)."""

    extension_type: Annotated[int, U16]  # ExtensionType extension_type
    extension_data: Annotated[bytes, Vector(2)]  # opaque extension_data<0..2^16-1>


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


def parse_extensions(r: Reader, schema: Vector) -> tuple[Extension, ...]:
    """The extension block at `r`, bounded by `schema` (`EXTENSIONS`,
    `PRESENT_EXTENSIONS` or `TICKET_EXTENSIONS`, as the message says)."""
    block = schema.reader(r)
    read = _EXTENSION.read
    exts: list[Extension] = []
    seen: set[int] = set()
    while block._pos < block._end:
        ext = read(block)
        # §4.2: "There MUST NOT be more than one extension of the same type
        # in a given extension block."
        if ext.extension_type in seen:
            raise ProtocolError(Cause.duplicate_extension, f"extension {ext.extension_type}")
        seen.add(ext.extension_type)
        exts.append(ext)
    return tuple(exts)


def write_extensions(w: Writer, exts: Iterable[Extension], schema: Vector) -> None:
    """The extension block, bounded by the same `schema` its parser uses."""
    write = _EXTENSION.write
    start = schema.open(w)
    for ext in exts:
        write(w, ext)
    schema.close(w, start)


def extension_block(schema: Vector) -> Kind:
    """The field kind of an extension block bounded by `schema`."""

    def read(r: Reader) -> tuple[Extension, ...]:
        return parse_extensions(r, schema)

    def write(w: Writer, exts: tuple[Extension, ...]) -> None:
        write_extensions(w, exts, schema)

    return Kind(read, write)


def _read_hello_extensions(r: Reader) -> tuple[Extension, ...]:
    # A hello from TLS 1.2 or earlier may stop after the compression methods,
    # or carry an empty block (RFC 5246 §7.4.1.2: extensions<0..2^16-1>).
    # Either parses with no extensions, so the state machine refuses the hello
    # for what it lacks (protocol_version, §4.1.2 and §4.2.1; or RFC 5746's
    # handshake_failure) rather than decode_error. A hello with TLS 1.3's
    # tighter minimum has supported_versions, so it is never empty.
    if r._pos >= r._end:
        return ()
    return parse_extensions(r, EXTENSIONS)


def _write_hello_extensions(w: Writer, exts: tuple[Extension, ...]) -> None:
    if exts:
        write_extensions(w, exts, PRESENT_EXTENSIONS)


_EXTENSION = struct_kind(Extension)
HELLO_EXTENSIONS = Kind(_read_hello_extensions, _write_hello_extensions)


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
    ext_type = kind.extension_type
    for ext in exts:  # `find_extension`, one call fewer per lookup
        if ext.extension_type == ext_type:
            return kind.parse(ext.extension_data)
    return None


class _Body:
    """What every typed extension shares: its body is exactly its struct
    (declared once with `wire`), and it wraps itself as an `Extension`."""

    extension_type: ClassVar[ExtensionType]
    wire: ClassVar[Kind]

    @classmethod
    def parse(cls, data: bytes) -> Self:
        """The body `data` as this extension; `decode_error` unless it is
        exactly one struct of this kind."""
        r = Reader(data)
        value = cls.wire.read(r)
        if r._pos != r._end:  # a call only for the error
            r.expect_end(cls.__name__)
        return cast(Self, value)

    def encode(self) -> bytes:
        """The extension_data; `ValueError` for a value we would refuse."""
        w = Writer()
        self.wire.write(w, self)
        return w.getvalue()

    def to_extension(self) -> Extension:
        return Extension(int(self.extension_type), self.encode())


# --- supported_versions (§4.2.1) ------------------------------------------


@wire
class SupportedVersionsClientHello(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.supported_versions
    versions: Annotated[tuple[int, ...], uint16s(Vector(1, 2, 254, item=2))]  # <2..254>


@wire
class SupportedVersionsServerHello(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.supported_versions
    selected_version: Annotated[int, U16]


# --- supported_groups (§4.2.7), signature_algorithms(_cert) (§4.2.3) -------

# SignatureScheme supported_signature_algorithms<2..2^16-2>
_SCHEMES = uint16s(Vector(2, 2, 0xFFFE, item=2))


@wire
class SupportedGroups(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.supported_groups
    # NamedGroup named_group_list<2..2^16-1>
    groups: Annotated[tuple[int, ...], uint16s(Vector(2, 2, 0xFFFF, item=2))]


@wire
class SignatureAlgorithms(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.signature_algorithms
    schemes: Annotated[tuple[int, ...], _SCHEMES]


@wire
class SignatureAlgorithmsCert(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.signature_algorithms_cert
    schemes: Annotated[tuple[int, ...], _SCHEMES]


# --- key_share (§4.2.8) -----------------------------------------------------


@wire
class KeyShareEntry:
    """struct { NamedGroup group; opaque key_exchange<1..2^16-1>; }. An empty
    share parses here and is refused where the share is used, as any share of
    the wrong length for its group is (illegal_parameter, §4.2.8.2), as
    OpenSSL and tlsfuzzer expect."""

    group: Annotated[int, U16]
    key_exchange: Annotated[bytes, Vector(2, 0)]


_KEY_SHARE_ENTRY = struct_kind(KeyShareEntry)


@wire
class KeyShareClientHello(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.key_share
    # KeyShareEntry client_shares<0..2^16-1>
    shares: Annotated[tuple[KeyShareEntry, ...], list_of(Vector(2), _KEY_SHARE_ENTRY)]

    @classmethod
    def parse(cls, data: bytes) -> Self:
        """The body, with no group offered twice."""
        value = super().parse(data)
        groups: set[int] = set()
        for share in value.shares:
            # §4.2.8: "Clients MUST NOT offer multiple KeyShareEntry values for
            # the same group... Servers MAY check for violations of these rules
            # and abort the handshake with an 'illegal_parameter' alert".
            if share.group in groups:
                raise ProtocolError(Cause.duplicate_key_share, f"group {share.group}")
            groups.add(share.group)
        return value


@wire
class KeyShareServerHello(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.key_share
    share: Annotated[KeyShareEntry, _KEY_SHARE_ENTRY]


@wire
class KeyShareHelloRetryRequest(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.key_share
    selected_group: Annotated[int, U16]


# --- cookie (§4.2.2) ------------------------------------------------------


@wire
class Cookie(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.cookie
    cookie: Annotated[bytes, Vector(2, 1)]  # opaque cookie<1..2^16-1>


# --- server_name (RFC 6066 §3) ----------------------------------------------

_HOST_NAME = 0


@wire
class _ServerNameEntry:
    """struct { NameType name_type; select (name_type) { case host_name:
    HostName; } } with opaque HostName<1..2^16-1>. RFC 6066 §3 requires any
    future NameType to start with a 16-bit length too, so every entry reads
    as this one and an unknown type can be skipped."""

    name_type: Annotated[int, U8]
    name: Annotated[bytes, Vector(2, 1)]


# ServerName server_name_list<1..2^16-1>
_SERVER_NAME_LIST = list_of(Vector(2, 1), struct_kind(_ServerNameEntry))


# RFC 6066 §3: "HostName contains the fully qualified DNS hostname of the
# server ... represented as a byte string using ASCII encoding without a
# trailing dot". We hold it to DNS's letters, digits, hyphen (and the
# underscore seen in the wild), in non-empty labels: a NUL, a control
# character, an escape sequence or UTF-8 is a parameter we refuse, as
# OpenSSL does.
_HOST_NAME_CHARACTERS = frozenset(
    b"abcdefghijklmnopqrstuvwxyz" b"ABCDEFGHIJKLMNOPQRSTUVWXYZ" b"0123456789-_"
)


def _dns_name(name: bytes) -> str:
    labels = name.split(b".")
    if any(not label or not _HOST_NAME_CHARACTERS.issuperset(label) for label in labels):
        raise ProtocolError(Cause.host_name_invalid, f"{len(name)} bytes")
    return name.decode("ascii")


@dataclass(frozen=True)
class ServerName(_Body):
    """A client's host_name, or None: a list that names no host (only other
    name types). The wire struct is a `_SERVER_NAME_LIST`; this is its
    meaning. The server's acknowledgement (RFC 6066 §3, "extension_data field
    ... SHALL be empty") is not this list: the client checks it is empty, and
    `ServerName(None).encode()` is that empty body."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.server_name
    host_name: str | None

    @classmethod
    def parse(cls, data: bytes) -> Self:
        """The host name in a ClientHello's body, if any; raises
        `ProtocolError` for an empty list (decode_error), a second host name
        or one that is not a DNS name (illegal_parameter)."""
        # An empty body is only the server's acknowledgement, which the client
        # checks as such; in a ClientHello the list is <1..2^16-1>.
        r = Reader(data)
        entries: tuple[_ServerNameEntry, ...] = _SERVER_NAME_LIST.read(r)
        r.expect_end("server_name")
        host_name: str | None = None
        for entry in entries:
            if entry.name_type != _HOST_NAME:
                continue
            # "The ServerNameList MUST NOT contain more than one name of the
            # same name_type."
            if host_name is not None:
                raise ProtocolError(Cause.duplicate_host_name)
            host_name = _dns_name(entry.name)
        return cls(host_name)

    def encode(self) -> bytes:
        """The body naming `host_name`, or empty for None."""
        if self.host_name is None:
            return b""
        w = Writer()
        _SERVER_NAME_LIST.write(w, (_ServerNameEntry(_HOST_NAME, self.host_name.encode("ascii")),))
        return w.getvalue()


# --- certificate_authorities (§4.2.4) ---------------------------------------


@wire
class CertificateAuthorities(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.certificate_authorities
    # DistinguishedName authorities<3..2^16-1>; opaque DistinguishedName<1..2^16-1>
    authorities: Annotated[tuple[bytes, ...], list_of(Vector(2, 3), opaque(Vector(2, 1)))]


# --- psk_key_exchange_modes (§4.2.9) ----------------------------------------


@wire
class PskKeyExchangeModes(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.psk_key_exchange_modes
    modes: Annotated[tuple[int, ...], uint8s(Vector(1, 1))]  # PskKeyExchangeMode ke_modes<1..255>


# --- application_layer_protocol_negotiation (RFC 7301 §3.1) -----------------


@wire
class ApplicationLayerProtocolNegotiation(_Body):
    extension_type: ClassVar[ExtensionType] = ExtensionType.application_layer_protocol_negotiation
    # ProtocolName protocol_name_list<2..2^16-1>; opaque ProtocolName<1..2^8-1>
    protocols: Annotated[tuple[bytes, ...], list_of(Vector(2, 2), opaque(Vector(1, 1)))]


# --- early_data (§4.2.10) ---------------------------------------------------


@wire
class EarlyDataIndication(_Body):
    """early_data as a ClientHello or EncryptedExtensions carries it: empty.
    (In NewSessionTicket it holds max_early_data_size; we issue no tickets.)"""

    extension_type: ClassVar[ExtensionType] = ExtensionType.early_data


# --- TLS 1.2: extended_master_secret (RFC 7627 §5.1), renegotiation_info
# (RFC 5746 §3.2), ec_point_formats (RFC 8422 §5.1.2) ------------------------


@wire
class ExtendedMasterSecret(_Body):
    """RFC 7627 §5.1: "The extension_data field of this extension is empty"."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.extended_master_secret


@wire
class RenegotiationInfo(_Body):
    """RFC 5746 §3.2: opaque renegotiated_connection<0..255>; empty on an
    initial handshake, the only kind we do."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.renegotiation_info
    renegotiated_connection: Annotated[bytes, Vector(1, 0, 255)] = b""


@wire
class EcPointFormats(_Body):
    """RFC 8422 §5.1.2: ECPointFormat ec_point_format_list<1..2^8-1>."""

    extension_type: ClassVar[ExtensionType] = ExtensionType.ec_point_formats
    formats: Annotated[tuple[int, ...], uint8s(Vector(1, 1))]


__all__ = [
    "ALLOWED_IN",
    "ALLOWED_IN_TLS12",
    "EXTENSIONS",
    "HELLO_EXTENSIONS",
    "PRESENT_EXTENSIONS",
    "TICKET_EXTENSIONS",
    "ApplicationLayerProtocolNegotiation",
    "Carrier",
    "CertificateAuthorities",
    "Cookie",
    "EarlyDataIndication",
    "EcPointFormats",
    "ExtendedMasterSecret",
    "Extension",
    "KeyShareClientHello",
    "KeyShareEntry",
    "KeyShareHelloRetryRequest",
    "KeyShareServerHello",
    "PskKeyExchangeModes",
    "RenegotiationInfo",
    "ServerName",
    "SignatureAlgorithms",
    "SignatureAlgorithmsCert",
    "SupportedGroups",
    "SupportedVersionsClientHello",
    "SupportedVersionsServerHello",
    "TypedExtension",
    "allowed_in",
    "allowed_in_tls12",
    "extension_block",
    "find_extension",
    "find_typed",
    "parse_extensions",
    "pre_shared_key_is_last",
    "refuse_misplaced",
    "write_extensions",
]
