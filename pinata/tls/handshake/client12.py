"""The client's side of the TLS 1.2 handshake (RFC 5246 §7.3), full handshake
only: ECDHE with AEAD suites, the extended master secret required (RFC 7627),
renegotiation refused (RFC 5746). The server always authenticates; we
authenticate when asked.

  ServerHello (read by `server_hello`, handed over by the first client state)
    -> ExpectCertificate -> ExpectServerKeyExchange
    -> ExpectCertificateRequestOrDone -> [ExpectServerHelloDone]
    ==> [Certificate] ClientKeyExchange [CertificateVerify] ChangeCipherSpec Finished
    -> ExpectChangeCipherSpec -> ExpectFinished -> Established (version TLS12)

Each state keeps the handshake messages so far (`messages`, as sent and
received, joined): TLS 1.2's CertificateVerify signs the messages
themselves, not a hash of them (RFC 5246 §7.4.8); the extended master
secret and both Finished hash them with the suite's PRF hash (RFC 7627 §3,
RFC 5246 §7.4.9). The connection bounds their total (`MAX_HANDSHAKE_TOTAL`).

A HelloRequest is never expected: during the handshake it is out of place
(`unexpected_message`; RFC 5246 §7.4.1.1 lets a client ignore it there, we
refuse what we have no use for), and after it the connection refuses it as
renegotiation (a `no_renegotiation` warning, then close_notify).
"""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from pinata.tls.config import (
    ClientConfig,
    Credentials,
    VerifiedPeer,
)
from pinata.tls.constants import (
    TLS12,
    CipherSuite,
    ClientCertificateType,
    ECPointFormat,
    ExtensionType,
    NamedGroup,
    SignatureScheme,
    enum_name,
    version_name,
)
from pinata.tls.errors import Cause, ProtocolError
from pinata.tls.established import ClientEstablished
from pinata.tls.events import HandshakeComplete
from pinata.tls.extensions import (
    EcPointFormats,
    ExtendedMasterSecret,
    RenegotiationInfo,
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
    extension_map,
    judge_chain,
    note_in,
    note_out,
)
from pinata.tls.handshake.common12 import (
    TLS12_GROUPS,
    AwaitingChangeCipherSpec,
    EphemeralKey,
    check_finished12,
    check_signature12,
    finished12,
    key_stages,
    master_secret,
    server_key_exchange_content,
)
from pinata.tls.messages import (
    Certificate12,
    CertificateRequest12,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange,
    Finished,
    HandshakeMessage,
    ServerHello,
    ServerHelloDone,
    ServerKeyExchange,
)
from pinata.tls.suites import SuiteParams, lookup_suite12
from pinata.tls.transcript import Transcript
from pinata.tls.values import value

# RFC 5246 §7.4.1.4.1: TLS 1.2 peers sign ServerKeyExchange and
# CertificateVerify with these too; never in TLS 1.3 (RFC 8446 §4.2.3).
# What a TLS 1.2 ServerHello may answer of what we send (RFC 5246 §7.4.1.4;
# server_name's acknowledgement is empty, RFC 6066 §3).
_SERVER_HELLO_EXTENSIONS = frozenset(
    (
        ExtensionType.server_name,
        ExtensionType.ec_point_formats,
        ExtensionType.extended_master_secret,
        ExtensionType.renegotiation_info,
    )
)


def _transcript(suite: SuiteParams, messages: bytes) -> Transcript:
    return Transcript().add(messages).select_hash(suite.hash_name)


@value
class _Hellos:
    """What the hellos settled; every later state shares it."""

    config: ClientConfig
    client_random: bytes
    server_random: bytes
    suite: SuiteParams


# ---- ServerHello -------------------------------------------------------------


def _check_extensions(hello: ClientHello, message: ServerHello) -> None:
    """Only what we sent and a 1.2 ServerHello may carry (RFC 5246 §7.4.1.4);
    an empty renegotiation_info (RFC 5746 §3.4); the extended master secret
    (RFC 7627 §5.2); uncompressed points (RFC 8422 §5.1.2)."""
    sent = {e.extension_type for e in hello.extensions}
    for e in message.extensions:
        name = enum_name(ExtensionType, e.extension_type)
        if e.extension_type not in sent:
            raise ProtocolError(Cause.unrequested_extension, f"ServerHello carries {name}")
        if e.extension_type not in _SERVER_HELLO_EXTENSIONS:
            raise ProtocolError(Cause.extension_not_allowed_here, f"TLS 1.2 ServerHello: {name}")
    exts = extension_map(message.extensions)
    if exts.get(ExtensionType.server_name, b"") != b"":
        raise ProtocolError(Cause.server_name_reply_not_empty)
    renegotiation = exts.get(ExtensionType.renegotiation_info)
    if renegotiation is None:
        raise ProtocolError(Cause.no_secure_renegotiation)
    if RenegotiationInfo.parse(renegotiation).renegotiated_connection:
        raise ProtocolError(Cause.renegotiation_info_wrong, "non-empty on an initial handshake")
    ems = exts.get(ExtensionType.extended_master_secret)
    if ems is None:
        raise ProtocolError(Cause.no_extended_master_secret)
    ExtendedMasterSecret.parse(ems)  # RFC 7627 §5.1: an empty body
    formats = exts.get(ExtensionType.ec_point_formats)
    uncompressed = ECPointFormat.uncompressed
    if formats is not None and uncompressed not in EcPointFormats.parse(formats).formats:
        raise ProtocolError(Cause.uncompressed_point_format_missing)


def server_hello(
    config: ClientConfig, hello: ClientHello, message: ServerHello, raw: bytes
) -> tuple[Client12State, list[Output]]:
    """Takes a ServerHello that chose TLS 1.2 (the first client state
    decided the version, RFC 8446 §4.1.3) and the ClientHello it answers;
    returns the state expecting the server's Certificate; raises
    `ProtocolError` for a suite, compression or extension we cannot accept
    (RFC 5246 §7.4.1.3)."""
    if message.legacy_compression_method != 0:
        raise ProtocolError(Cause.compression_offered)
    suite = lookup_suite12(message.cipher_suite)
    if suite is None or message.cipher_suite not in config.cipher_suites_tls12:
        raise ProtocolError(Cause.unoffered_cipher_suite, f"0x{message.cipher_suite:04x}")
    _check_extensions(hello, message)
    hellos = _Hellos(config, hello.random, message.random, suite)
    # The session_id the server sends is ignored: we never resume (RFC 5246
    # §7.4.1.3), and an abbreviated handshake would find no state expecting it.
    state = Client12ExpectCertificate(hellos, hello.encode() + raw)
    return state, [
        ChooseVersion(TLS12),
        note_in(
            "ServerHello",
            version=version_name(TLS12),
            cipher_suite=enum_name(CipherSuite, suite.suite),
        ),
    ]


# ---- the server's Certificate and ServerKeyExchange ------------------------


def _key_fits(suite: SuiteParams, key: CertificatePublicKeyTypes) -> bool:
    """RFC 8422 §5.3, RFC 5246 §7.4.2: ECDHE_ECDSA needs an ECDSA or EdDSA
    key, ECDHE_RSA an RSA one."""
    if suite.authentication == "RSA":
        return isinstance(key, rsa.RSAPublicKey)
    return isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)


@value
class Client12ExpectCertificate:
    hellos: _Hellos
    messages: bytes = field(repr=False)
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (Certificate12,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Client12State, list[Output]]:
        assert isinstance(message, Certificate12)
        if not message.certificate_list:
            # RFC 5246 §7.4.2: with an ECDHE suite the server always sends one.
            raise ProtocolError(Cause.server_certificate_empty)
        judge = self.hellos.config.authenticate_server
        peer = judge_chain(message.certificate_list, judge, ctx.now)
        if not _key_fits(self.hellos.suite, peer.leaf_public_key):
            raise ProtocolError(Cause.certificate_unsupported, "the key does not fit the suite")
        state = Client12ExpectServerKeyExchange(self.hellos, self.messages + raw, peer)
        return state, chain_notes(peer, len(message.certificate_list))


@value
class _KeyExchange:
    """The server's authenticated ECDHE parameters and our answer to them."""

    hellos: _Hellos
    peer: VerifiedPeer
    peer_scheme: SignatureScheme
    group: NamedGroup
    our_public: bytes
    pre_master_secret: bytes = field(repr=False)


@value
class Client12ExpectServerKeyExchange:
    hellos: _Hellos
    messages: bytes = field(repr=False)
    peer: VerifiedPeer
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (ServerKeyExchange,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Client12State, list[Output]]:
        assert isinstance(message, ServerKeyExchange)
        hellos, group = self.hellos, message.named_curve
        # RFC 8422 §5.4: a curve we offered, and one TLS 1.2 can use here.
        if group not in hellos.config.groups or group not in TLS12_GROUPS:
            raise ProtocolError(Cause.key_share_in_unoffered_group, enum_name(NamedGroup, group))
        # RFC 8422 §5.4: the signature covers both randoms and the params;
        # a scheme we did not offer is refused first (RFC 5246 §7.4.1.4.1).
        scheme = check_signature12(
            message.algorithm,
            message.signature,
            hellos.config.offered_schemes,
            self.peer.leaf_public_key,
            server_key_exchange_content(
                hellos.client_random, hellos.server_random, message.params()
            ),
            key_is_rsassa_pss=self.peer.leaf_key_is_rsassa_pss,
        )
        # Our key pair now, so that a point off the curve, or a compressed
        # one, is refused here (illegal_parameter, RFC 8422 §5.1.2, §5.4).
        key = EphemeralKey.generate(group, ctx.random)
        exchange = _KeyExchange(
            hellos,
            self.peer,
            scheme,
            NamedGroup(group),
            key.key_exchange,
            key.shared_secret(message.public),
        )
        state = Client12ExpectCertificateRequestOrDone(exchange, self.messages + raw)
        return state, [
            note_in("ServerKeyExchange", group=enum_name(NamedGroup, group), scheme=scheme.name)
        ]


@value
class Client12ExpectCertificateRequestOrDone:
    exchange: _KeyExchange
    messages: bytes = field(repr=False)
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (
        CertificateRequest12,
        ServerHelloDone,
    )

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Client12State, list[Output]]:
        if isinstance(message, ServerHelloDone):
            return _second_flight(self.exchange, self.messages + raw, None)
        assert isinstance(message, CertificateRequest12)
        state = Client12ExpectServerHelloDone(self.exchange, self.messages + raw, message)
        return state, [
            note_in("CertificateRequest", types=tuple(map(str, message.certificate_types)))
        ]


@value
class Client12ExpectServerHelloDone:
    exchange: _KeyExchange
    messages: bytes = field(repr=False)
    request: CertificateRequest12
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (ServerHelloDone,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Client12State, list[Output]]:
        assert isinstance(message, ServerHelloDone)
        return _second_flight(self.exchange, self.messages + raw, self.request)


# ---- our flight --------------------------------------------------------------


def _answer_request(
    config: ClientConfig, request: CertificateRequest12
) -> tuple[Credentials, SignatureScheme] | None:
    """Our credentials and a scheme the server listed, when both fit its
    request (RFC 5246 §7.4.4, §7.4.6; RFC 8422 §5.5: ecdsa_sign covers
    EdDSA keys too); None: we answer with an empty Certificate."""
    credentials = config.credentials
    if credentials is None:
        return None
    rsa_key = credentials.schemes[0].name.startswith("rsa_")
    kind = ClientCertificateType.rsa_sign if rsa_key else ClientCertificateType.ecdsa_sign
    if kind not in request.certificate_types:
        return None
    scheme = credentials.choose_scheme_tls12(request.supported_signature_algorithms)
    return None if scheme is None else (credentials, scheme)


def _second_flight(
    exchange: _KeyExchange, messages: bytes, request: CertificateRequest12 | None
) -> tuple[Client12State, list[Output]]:
    """Our answer to ServerHelloDone (RFC 5246 §7.3): [Certificate]
    ClientKeyExchange [CertificateVerify] ChangeCipherSpec Finished."""
    hellos = exchange.hellos
    suite = hellos.suite
    out: list[Output] = [note_in("ServerHelloDone")]
    ours = None if request is None else _answer_request(hellos.config, request)
    if request is not None:
        chain = ours[0].chain if ours is not None else ()
        messages = _send(Certificate12(chain).encode(), messages, out)
        out.append(note_out("Certificate", certificates=len(chain)))
    messages = _send(ClientKeyExchange(exchange.our_public).encode(), messages, out)
    out.append(note_out("ClientKeyExchange"))
    # RFC 7627 §4: the session hash runs through ClientKeyExchange.
    master = master_secret(suite, exchange.pre_master_secret, _transcript(suite, messages).digest())
    if ours is not None:
        credentials, scheme = ours
        # RFC 5246 §7.4.8: the signature is over the messages themselves.
        verify = CertificateVerify(scheme, credentials.sign_tls12(scheme, messages))
        messages = _send(verify.encode(), messages, out)
        out.append(note_out("CertificateVerify", scheme=scheme.name))
    protector, unprotector = key_stages(
        suite, master, hellos.client_random, hellos.server_random, is_server=False
    )
    finished = finished12(suite, master, _transcript(suite, messages), from_server=False)
    # RFC 5246 §7.1: our ChangeCipherSpec, then our Finished under our keys;
    # the server's keys wait for its ChangeCipherSpec.
    out += [SetWriteKeys12(protector), note_out("ChangeCipherSpec")]
    messages = _send(finished.encode(), messages, out)
    out += [NOTE_FINISHED_OUT, SetReadKeys12(unprotector)]
    our_scheme = None if ours is None else ours[1]
    state = Client12ExpectChangeCipherSpec(
        exchange, master, our_scheme, _transcript(suite, messages)
    )
    return state, out


def _send(message: bytes, messages: bytes, out: list[Output]) -> bytes:
    out.append(SendMessage(message))
    return messages + message


# ---- the server's ChangeCipherSpec and Finished ----------------------------


@value
class Client12ExpectChangeCipherSpec(AwaitingChangeCipherSpec):
    """No handshake message may come before the server's ChangeCipherSpec
    (RFC 5246 §7.1); the connection calls `after_change_cipher_spec`."""

    exchange: _KeyExchange
    master: bytes = field(repr=False)
    our_scheme: SignatureScheme | None
    transcript: Transcript
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = ()

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Client12State, list[Output]]:
        raise ProtocolError(Cause.unexpected_handshake_message, "before ChangeCipherSpec")

    def after_change_cipher_spec(self) -> Client12ExpectFinished:
        """The state that reads the server's Finished under its keys."""
        return Client12ExpectFinished(self.exchange, self.master, self.our_scheme, self.transcript)


@value
class Client12ExpectFinished:
    exchange: _KeyExchange
    master: bytes = field(repr=False)
    our_scheme: SignatureScheme | None
    transcript: Transcript
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (Finished,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ClientEstablished, list[Output]]:
        assert isinstance(message, Finished)
        exchange = self.exchange
        suite = exchange.hellos.suite
        # decrypt_error on a mismatch (RFC 5246 §7.4.9).
        check_finished12(message, suite, self.master, self.transcript, from_server=True)
        event = HandshakeComplete(
            version=TLS12,
            cipher_suite=suite.suite,
            group=exchange.group,
            signature_scheme=self.our_scheme,
            peer_signature_scheme=exchange.peer_scheme,
            peer=exchange.peer,
        )
        # No secret survives: TLS 1.2 has no KeyUpdate, and we never resume.
        established = ClientEstablished(suite, None, None, version=TLS12)
        return established, [NOTE_FINISHED_IN, Complete(event)]


Client12State = (
    Client12ExpectCertificate
    | Client12ExpectServerKeyExchange
    | Client12ExpectCertificateRequestOrDone
    | Client12ExpectServerHelloDone
    | Client12ExpectChangeCipherSpec
    | Client12ExpectFinished
)

__all__ = [
    "Client12ExpectCertificate",
    "Client12ExpectCertificateRequestOrDone",
    "Client12ExpectChangeCipherSpec",
    "Client12ExpectFinished",
    "Client12ExpectServerHelloDone",
    "Client12ExpectServerKeyExchange",
    "Client12State",
    "server_hello",
]
