"""The server's side of the TLS 1.2 handshake (RFC 5246 §7.3), full
handshake only, ECDHE with AEAD suites, extended master secret required:
no resumption, no tickets, no renegotiation, no compression.

  start ──> [ExpectCertificate] -> ExpectClientKeyExchange
        -> [ExpectCertificateVerify] -> ExpectChangeCipherSpec -> ExpectFinished -> Established

`start` answers the ClientHello the TLS 1.3 state handed over (it chose
1.2 by the version rules of RFC 8446 §4.2.1 and RFC 5246 Appendix E.1).
"""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar, TypeVar

from pinata.tls.config import ServerConfig, VerifiedPeer
from pinata.tls.constants import (
    DOWNGRADE_TLS12,
    TLS12,
    TLS13,
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV,
    CipherSuite,
    ECPointFormat,
    NamedGroup,
    SignatureScheme,
    enum_name,
    version_name,
)
from pinata.tls.errors import Cause, ProtocolError
from pinata.tls.established import ServerEstablished
from pinata.tls.events import HandshakeComplete
from pinata.tls.extensions import (
    ApplicationLayerProtocolNegotiation,
    EcPointFormats,
    ExtendedMasterSecret,
    Extension,
    RenegotiationInfo,
    ServerName,
    SignatureAlgorithms,
    SupportedGroups,
    TypedExtension,
)
from pinata.tls.handshake.common import (
    NOTE_FINISHED_IN,
    NOTE_FINISHED_OUT,
    ChooseVersion,
    Complete,
    HandshakeContext,
    Output,
    SendMessage,
    SetReadKeys12,
    SetWriteKeys12,
    chain_notes,
    judge_chain,
    note_in,
    note_out,
)
from pinata.tls.handshake.common12 import (
    TLS12_GROUPS,
    AwaitingChangeCipherSpec,
    EphemeralKey,
    certificate_curve,
    check_certificate_verify12,
    check_finished12,
    finished12,
    key_stages,
    master_secret,
    server_key_exchange_content,
    suite_fits_key,
)
from pinata.tls.messages import (
    Certificate12,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange,
    Finished,
    HandshakeMessage,
    ServerHello,
    ServerHelloDone,
    ServerKeyExchange,
)
from pinata.tls.record import RecordProtector12, RecordUnprotector12
from pinata.tls.suites import SuiteParams, lookup_suite12
from pinata.tls.transcript import Transcript
from pinata.tls.values import value

_SERVER_HELLO_DONE = ServerHelloDone().encode()
_NAMED_CURVE = 3  # RFC 8422 §5.4 ECCurveType named_curve
# Parsed so that a malformed one is decode_error, though we do not act on it.
_VALIDATED: tuple[type[TypedExtension], ...] = (ServerName, ApplicationLayerProtocolNegotiation)
_T = TypeVar("_T", bound=TypedExtension)


@value
class Choices12:
    """What the server picked from a TLS 1.2 ClientHello."""

    suite: SuiteParams
    group: NamedGroup
    scheme: SignatureScheme
    echo_point_formats: bool


@value
class _Offer:
    """A TLS 1.2 ClientHello's extensions, every body we use decoded first:
    a malformed one is decode_error before any policy of ours is applied."""

    renegotiation_info: RenegotiationInfo | None
    extended_master_secret: bool
    point_formats: tuple[int, ...] | None
    schemes: tuple[int, ...] | None
    groups: tuple[int, ...] | None


def _decode_offer(exts: dict[int, bytes]) -> _Offer:
    def parsed(kind: type[_T]) -> _T | None:
        data = exts.get(kind.extension_type)
        return None if data is None else kind.parse(data)

    ems = parsed(ExtendedMasterSecret)
    formats = parsed(EcPointFormats)
    schemes = parsed(SignatureAlgorithms)
    groups = parsed(SupportedGroups)
    for kind in _VALIDATED:
        parsed(kind)
    return _Offer(
        renegotiation_info=parsed(RenegotiationInfo),
        extended_master_secret=ems is not None,
        point_formats=None if formats is None else formats.formats,
        schemes=None if schemes is None else schemes.schemes,
        groups=None if groups is None else groups.groups,
    )


def _check_offer(hello: ClientHello, offer: _Offer) -> None:
    """The refusals RFC 5246, 5746, 7627 and 8422 ask of a 1.2 server:
    malformed parameters first, then what we require."""
    # RFC 5246 §7.4.1.2: the list "MUST contain" null (0); null is all we use.
    if 0 not in hello.legacy_compression_methods:
        raise ProtocolError(Cause.null_compression_missing)
    # RFC 8422 §5.1.2: the list MUST contain uncompressed.
    if offer.point_formats is not None and 0 not in offer.point_formats:
        raise ProtocolError(Cause.uncompressed_point_format_missing)
    # RFC 5746 §3.6: the SCSV or an empty renegotiation_info; without either,
    # the client may be open to renegotiation attacks, so we refuse.
    info = offer.renegotiation_info
    if info is not None and info.renegotiated_connection:
        raise ProtocolError(Cause.renegotiation_info_wrong, "non-empty on an initial handshake")
    if info is None and TLS_EMPTY_RENEGOTIATION_INFO_SCSV not in hello.cipher_suites:
        raise ProtocolError(Cause.no_secure_renegotiation)
    # RFC 7627 §5.3: a server that requires the extension aborts without it.
    if not offer.extended_master_secret:
        raise ProtocolError(Cause.no_extended_master_secret)
    if offer.schemes is None:
        # RFC 5246 §7.4.1.4.1 would default to SHA-1, which we never use.
        raise ProtocolError(Cause.signature_algorithms_absent_tls12)


def _choose(config: ServerConfig, hello: ClientHello, offer: _Offer) -> Choices12:
    """Suite (ours first, fitting our key), group and signature scheme."""
    assert offer.schemes is not None  # _check_offer refused a hello without
    scheme = config.credentials.choose_scheme_tls12(offer.schemes)
    # RFC 8422 §5.1: without supported_groups the server may pick any curve.
    offered = offer.groups
    group = None
    for g in config.groups:
        if g in TLS12_GROUPS and (offered is None or g in offered):
            group = g
            break
    # RFC 8422 §5.1: a server "MUST NOT negotiate the use of an ECC cipher
    # suite unless" it can complete the handshake "while respecting the
    # choice of curves specified by the client": our ECDSA key's curve too.
    curve = certificate_curve(config.credentials)
    key_usable = curve is None or offered is None or curve in offered
    suite = next(
        (
            params
            for s in config.cipher_suites_tls12
            if s in hello.cipher_suites
            and (params := lookup_suite12(s)) is not None
            and suite_fits_key(params, config.credentials)
        ),
        None,
    )
    if suite is None:
        raise ProtocolError(Cause.no_common_cipher_suite)
    if group is None:
        raise ProtocolError(Cause.no_common_group)
    if not key_usable:
        raise ProtocolError(Cause.no_common_cipher_suite, f"our key's curve {curve!r} not listed")
    if scheme is None:
        raise ProtocolError(Cause.no_common_signature_scheme)
    return Choices12(suite, NamedGroup(group), scheme, offer.point_formats is not None)


def _server_random(ctx: HandshakeContext, config: ServerConfig) -> bytes:
    random = ctx.random(32)
    if TLS13 in config.versions:
        # RFC 8446 §4.1.3: a 1.3-capable server negotiating 1.2 says so in
        # the last eight bytes, so a 1.3 client can detect a downgrade.
        return random[:24] + DOWNGRADE_TLS12
    return random


# The ServerHello's extensions are the same for every connection: built once.
_RENEGOTIATION_INFO = RenegotiationInfo(b"").to_extension()  # RFC 5746 §3.6
_EXTENDED_MASTER_SECRET = ExtendedMasterSecret().to_extension()  # RFC 7627 §5.2
_EC_POINT_FORMATS = EcPointFormats((ECPointFormat.uncompressed,)).to_extension()


def _server_hello(random: bytes, choices: Choices12) -> bytes:
    extensions: list[Extension] = [_RENEGOTIATION_INFO, _EXTENDED_MASTER_SECRET]
    if choices.echo_point_formats:  # RFC 8422 §5.2: only in reply
        extensions.append(_EC_POINT_FORMATS)
    # An empty session_id: this session will never be resumed (RFC 5246 §7.4.1.3).
    hello = ServerHello(
        legacy_version=TLS12,
        random=random,
        legacy_session_id_echo=b"",
        cipher_suite=choices.suite.suite,
        extensions=tuple(extensions),
    )
    return hello.encode()


def _server_key_exchange(
    config: ServerConfig,
    choices: Choices12,
    client_random: bytes,
    server_random: bytes,
    key: EphemeralKey,
) -> bytes:
    unsigned = ServerKeyExchange(_NAMED_CURVE, choices.group, key.key_exchange, choices.scheme, b"")
    content = server_key_exchange_content(client_random, server_random, unsigned.params())
    signature = config.credentials.sign_tls12(choices.scheme, content)
    return ServerKeyExchange(
        _NAMED_CURVE, choices.group, key.key_exchange, choices.scheme, signature
    ).encode()


def start(
    config: ServerConfig, ctx: HandshakeContext, hello: ClientHello, raw: bytes,
    exts: dict[int, bytes],
) -> tuple[Server12State, list[Output]]:
    """The server's first flight for a TLS 1.2 ClientHello (`exts`: its
    extensions by type, as the version choice read them): ServerHello,
    Certificate, ServerKeyExchange, [CertificateRequest], ServerHelloDone."""
    offer = _decode_offer(exts)
    _check_offer(hello, offer)
    choices = _choose(config, hello, offer)
    server_random = _server_random(ctx, config)
    key = EphemeralKey.generate(choices.group, ctx.random)
    flow = _Flow(
        config,
        choices,
        hello.random,
        server_random,
        client_hello=raw,
        server_hello=_server_hello(server_random, choices),
        key_exchange=_server_key_exchange(config, choices, hello.random, server_random, key),
    )
    out: list[Output] = [
        ChooseVersion(TLS12),
        note_in("ClientHello", version=version_name(TLS12), extensions=len(hello.extensions)),
        note_out(
            "ServerHello",
            version=version_name(TLS12),
            cipher_suite=enum_name(CipherSuite, choices.suite.suite),
            group=enum_name(NamedGroup, choices.group),
        ),
        note_out("ServerKeyExchange", scheme=choices.scheme.name),
    ]
    out.append(SendMessage(flow.flight()))  # the whole flight, queued as one
    if config.authenticate_client is not None:
        return Server12ExpectCertificate(flow, key), out
    return Server12ExpectClientKeyExchange(flow, key, b"", peer=None), out


@value
class _Flow:
    """What every later state needs from the hellos: the randoms, and the
    messages through our flight, which CertificateVerify signs (RFC 5246
    §7.4.8) with a hash that need not be the PRF's, or with none (Ed25519,
    RFC 8422 §5.10), so they are kept as sent. Only the per-connection ones
    are held: the rest of the flight is the configuration's, encoded once,
    so a handshake waiting for the client holds no copy of our chain."""

    config: ServerConfig
    choices: Choices12
    client_random: bytes
    server_random: bytes
    client_hello: bytes = field(repr=False)
    server_hello: bytes = field(repr=False)
    key_exchange: bytes = field(repr=False)

    def flight(self) -> bytes:
        """ServerHello, Certificate, ServerKeyExchange, [CertificateRequest],
        ServerHelloDone, as sent."""
        config = self.config
        asks = config.authenticate_client is not None
        request = config.encoded_certificate_request12 if asks else b""
        return b"".join((self.server_hello, config.encoded_certificate12, self.key_exchange,
                         request, _SERVER_HELLO_DONE))

    def messages(self) -> bytes:
        """Every handshake message through our ServerHelloDone, as sent."""
        return self.client_hello + self.flight()


@value
class Server12ExpectCertificate:
    flow: _Flow
    key: EphemeralKey = field(repr=False)
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (Certificate12,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Server12State, list[Output]]:
        assert isinstance(message, Certificate12)
        authenticate = self.flow.config.authenticate_client
        assert authenticate is not None
        if not message.certificate_list:
            # RFC 5246 §7.4.6: we require a certificate and got none.
            raise ProtocolError(Cause.client_certificate_missing_tls12)
        peer = judge_chain(message.certificate_list, authenticate, ctx.now)
        state = Server12ExpectClientKeyExchange(self.flow, self.key, raw, peer=peer)
        return state, chain_notes(peer, len(message.certificate_list))


@value
class Server12ExpectClientKeyExchange:
    flow: _Flow
    key: EphemeralKey = field(repr=False)
    # The client's messages since our flight: its Certificate, or nothing.
    received: bytes = field(repr=False)
    peer: VerifiedPeer | None
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (ClientKeyExchange,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Server12State, list[Output]]:
        assert isinstance(message, ClientKeyExchange)
        flow = self.flow
        suite = flow.choices.suite
        pre_master_secret = self.key.shared_secret(message.public)
        messages = b"".join((flow.messages(), self.received, raw))
        # RFC 7627 §3: session_hash covers the messages through ClientKeyExchange.
        session_hash = suite.new_hash()
        session_hash.update(messages)
        master = master_secret(suite, pre_master_secret, session_hash.digest())
        protector, unprotector = key_stages(
            suite, master, flow.client_random, flow.server_random, is_server=True
        )
        keys = _Keys(master, protector, unprotector)
        note = note_in("ClientKeyExchange")
        if self.peer is not None:
            return Server12ExpectCertificateVerify(flow, keys, messages, self.peer), [note]
        state = Server12ExpectChangeCipherSpec(flow, keys, _transcript(suite, messages), None, None)
        return state, [note, SetReadKeys12(unprotector)]


def _transcript(suite: SuiteParams, messages: bytes) -> Transcript:
    return Transcript().add(messages).select_hash(suite.hash_name)


@value
class _Keys:
    """The master secret (for both Finished) and the record keys; dropped
    with the state once the handshake is over."""

    master: bytes = field(repr=False)
    protector: RecordProtector12 = field(repr=False)
    unprotector: RecordUnprotector12 = field(repr=False)


@value
class Server12ExpectCertificateVerify:
    flow: _Flow
    keys: _Keys = field(repr=False)
    messages: bytes = field(repr=False)
    peer: VerifiedPeer
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (CertificateVerify,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Server12State, list[Output]]:
        assert isinstance(message, CertificateVerify)
        offered = self.flow.config.signature_schemes_tls12
        scheme = check_certificate_verify12(message, self.peer, offered, self.messages)
        suite = self.flow.choices.suite
        transcript = _transcript(suite, self.messages + raw)
        state = Server12ExpectChangeCipherSpec(self.flow, self.keys, transcript, self.peer, scheme)
        return state, [
            note_in("CertificateVerify", scheme=scheme.name),
            SetReadKeys12(self.keys.unprotector),
        ]


@value
class Server12ExpectChangeCipherSpec(AwaitingChangeCipherSpec):
    """No handshake message may come before the client's ChangeCipherSpec
    (RFC 5246 §7.1); the connection calls `after_change_cipher_spec`."""

    flow: _Flow
    keys: _Keys = field(repr=False)
    transcript: Transcript
    peer: VerifiedPeer | None
    peer_scheme: SignatureScheme | None
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = ()

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Server12State, list[Output]]:
        raise ProtocolError(Cause.unexpected_handshake_message, "before ChangeCipherSpec")

    def after_change_cipher_spec(self) -> Server12ExpectFinished:
        return Server12ExpectFinished(
            self.flow, self.keys, self.transcript, self.peer, self.peer_scheme
        )


@value
class Server12ExpectFinished:
    flow: _Flow
    keys: _Keys = field(repr=False)
    transcript: Transcript
    peer: VerifiedPeer | None
    peer_scheme: SignatureScheme | None
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (Finished,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ServerEstablished, list[Output]]:
        assert isinstance(message, Finished)
        choices = self.flow.choices
        suite, master = choices.suite, self.keys.master
        check_finished12(message, suite, master, self.transcript, from_server=False)
        transcript = self.transcript.add(raw)
        finished = finished12(suite, master, transcript, from_server=True)
        event = HandshakeComplete(
            version=TLS12,
            cipher_suite=suite.suite,
            group=choices.group,
            signature_scheme=choices.scheme,
            peer_signature_scheme=self.peer_scheme,
            peer=self.peer,
        )
        # No secret survives: TLS 1.2 has no KeyUpdate, and we never resume.
        established = ServerEstablished(suite, None, None, version=TLS12)
        return established, [
            NOTE_FINISHED_IN,
            SetWriteKeys12(self.keys.protector),
            SendMessage(finished.encode()),
            note_out("ChangeCipherSpec"),
            NOTE_FINISHED_OUT,
            Complete(event),
        ]


Server12State = (
    Server12ExpectCertificate
    | Server12ExpectClientKeyExchange
    | Server12ExpectCertificateVerify
    | Server12ExpectChangeCipherSpec
    | Server12ExpectFinished
)

__all__ = [
    "Server12ExpectCertificate",
    "Server12ExpectCertificateVerify",
    "Server12ExpectChangeCipherSpec",
    "Server12ExpectClientKeyExchange",
    "Server12ExpectFinished",
    "Server12State",
    "start",
]
