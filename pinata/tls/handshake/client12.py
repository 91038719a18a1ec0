"""The client's side of the TLS 1.2 handshake (RFC 5246 §7.3), full handshake
only: ECDHE with AEAD suites, the extended master secret required (RFC 7627),
renegotiation refused (RFC 5746). The server always authenticates; we
authenticate when asked.

  ServerHello (read by `server_hello`, called from the first client state)
    -> ExpectCertificate -> ExpectServerKeyExchange
    -> ExpectCertificateRequestOrDone -> [ExpectServerHelloDone]
    ==> [Certificate] ClientKeyExchange [CertificateVerify] ChangeCipherSpec Finished
    -> ExpectChangeCipherSpec -> ExpectFinished -> Established

Each state keeps the handshake messages so far (`messages`, as sent and
received): TLS 1.2's CertificateVerify signs the messages themselves, not a
hash of them (RFC 5246 §7.4.8), and the extended master secret and both
Finished hash them with the suite's PRF hash (RFC 7627 §3, RFC 5246 §7.4.9).
The connection bounds their total (`MAX_HANDSHAKE_TOTAL`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from pinata.tls.config import ClientConfig, Credentials, VerifiedPeer
from pinata.tls.constants import (
    TLS12,
    CipherSuite,
    ClientCertificateType,
    ECPointFormat,
    ExtensionType,
    NamedGroup,
    SignatureScheme,
    enum_name,
)
from pinata.tls.errors import Cause, ProtocolError, rejection_cause
from pinata.tls.events import HandshakeComplete
from pinata.tls.extensions import (
    EcPointFormats,
    ExtendedMasterSecret,
    Extension,
    RenegotiationInfo,
)
from pinata.tls.handshake.common import (
    Complete,
    HandshakeContext,
    Output,
    SendChangeCipherSpec,
    SendMessage,
    extension_map,
    note_in,
    note_out,
)
from pinata.tls.handshake.common12 import SetReadKeys12, SetWriteKeys12
from pinata.tls.key_exchange import ClientKeyShare
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
from pinata.tls.prf import (
    CLIENT_FINISHED_LABEL,
    SERVER_FINISHED_LABEL,
    extended_master_secret,
    key_block,
    verify_data,
)
from pinata.tls.signatures import verify12
from pinata.tls.suites import SuiteParams, lookup_suite12

# RFC 5246 §7.4.1.4.1: TLS 1.2 signs ServerKeyExchange and CertificateVerify
# with these too (its peers need them); never in TLS 1.3 (RFC 8446 §4.2.3).
# Never SHA-1 or MD5.
TLS12_ONLY_SCHEMES: tuple[SignatureScheme, ...] = (
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.rsa_pkcs1_sha384,
    SignatureScheme.rsa_pkcs1_sha512,
)

# What a ClientHello offering TLS 1.2 adds: uncompressed points only (RFC
# 8422 §5.1.2), the extended master secret (RFC 7627 §5.1), and an empty
# renegotiation_info (RFC 5746 §3.4; the extension, not the SCSV, so that
# every extension in the ServerHello is one we sent).
TLS12_HELLO_EXTENSIONS: tuple[Extension, ...] = (
    EcPointFormats((ECPointFormat.uncompressed,)).to_extension(),
    ExtendedMasterSecret().to_extension(),
    RenegotiationInfo(b"").to_extension(),
)

# RFC 5246 §7.4.1.4: what a TLS 1.2 ServerHello may answer of what we sent
# (server_name's acknowledgement is empty, RFC 6066 §3).
_SERVER_HELLO_EXTENSIONS = frozenset(
    (
        ExtensionType.server_name,
        ExtensionType.ec_point_formats,
        ExtensionType.extended_master_secret,
        ExtensionType.renegotiation_info,
    )
)
# The curves TLS 1.2 ECDHE may use here (RFC 8422 §5.1.1, RFC 7748).
_TLS12_GROUPS = frozenset((NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1))


def offered_schemes(config: ClientConfig) -> tuple[int, ...]:
    """What our signature_algorithms lists: the configured schemes, and the
    PKCS#1 v1.5 ones when TLS 1.2 is offered (RFC 5246 §7.4.1.4.1)."""
    schemes = tuple(config.signature_schemes)
    if TLS12 in config.versions:
        schemes += tuple(s for s in TLS12_ONLY_SCHEMES if s not in schemes)
    return schemes


def _digest(hash_name: str, messages: tuple[bytes, ...]) -> bytes:
    h = hashlib.new(hash_name)
    for message in messages:
        h.update(message)
    return h.digest()


@dataclass(frozen=True)
class _Hello:
    """What the hellos settled; every later state shares it."""

    config: ClientConfig
    client_random: bytes
    server_random: bytes
    suite: SuiteParams


# ---- ServerHello -----------------------------------------------------------


def _check_extensions(hello: ClientHello, message: ServerHello) -> None:
    """RFC 5246 §7.4.1.4: only what we sent, only what a 1.2 ServerHello may
    carry; renegotiation_info empty (RFC 5746 §3.4), the extended master
    secret (RFC 7627 §5.2), uncompressed points (RFC 8422 §5.1.2)."""
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
        raise ProtocolError(Cause.renegotiation_info_wrong)
    ems = exts.get(ExtensionType.extended_master_secret)
    if ems is None:
        raise ProtocolError(Cause.no_extended_master_secret)
    ExtendedMasterSecret.parse(ems)  # RFC 7627 §5.1: an empty body
    formats = exts.get(ExtensionType.ec_point_formats)
    if (
        formats is not None
        and ECPointFormat.uncompressed not in EcPointFormats.parse(formats).formats
    ):
        raise ProtocolError(Cause.uncompressed_point_format_missing)


def server_hello(
    ctx: HandshakeContext,
    config: ClientConfig,
    hello: ClientHello,
    message: ServerHello,
    raw: bytes,
) -> tuple[Client12State, list[Output]]:
    """The TLS 1.2 ServerHello (RFC 5246 §7.4.1.3), once the first state
    saw that the server chose 1.2; raises `ProtocolError` if it may not stand."""
    if message.legacy_compression_method != 0:
        raise ProtocolError(Cause.compression_offered)
    suite = lookup_suite12(message.cipher_suite)
    if suite is None or message.cipher_suite not in config.cipher_suites_tls12:
        raise ProtocolError(Cause.unoffered_cipher_suite, f"0x{message.cipher_suite:04x}")
    _check_extensions(hello, message)
    settled = _Hello(config, hello.random, message.random, suite)
    state = Client12ExpectCertificate(settled, (hello.encode(), raw))
    return state, [
        note_in(
            "ServerHello",
            version="TLS 1.2",
            cipher_suite=enum_name(CipherSuite, message.cipher_suite),
        )
    ]


# ---- the server's certificate and key exchange ---------------------------


def _key_fits(suite: SuiteParams, key: CertificatePublicKeyTypes) -> bool:
    if suite.authentication == "RSA":
        return isinstance(key, rsa.RSAPublicKey)
    return isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)


def _authenticate(hello: _Hello, message: Certificate12, ctx: HandshakeContext) -> VerifiedPeer:
    if not message.certificate_list:
        # RFC 5246 §7.4.2: an ECDHE suite's server always sends a certificate.
        raise ProtocolError(Cause.server_certificate_empty)
    verdict = hello.config.authenticate_server(tuple(message.certificate_list), ctx.now)
    if not isinstance(verdict, VerifiedPeer):
        raise ProtocolError(rejection_cause(verdict.alert), verdict.reason)
    # RFC 8422 §5.3 / RFC 5246 §7.4.2: the key must fit the suite's
    # authentication (ECDSA or EdDSA for ECDHE_ECDSA, RSA for ECDHE_RSA).
    if not _key_fits(hello.suite, verdict.leaf_public_key):
        raise ProtocolError(Cause.certificate_unsupported, "key does not fit the suite")
    return verdict


@dataclass(frozen=True)
class Client12ExpectCertificate:
    hello: _Hello
    messages: tuple[bytes, ...] = field(repr=False)
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (Certificate12,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Client12State, list[Output]]:
        assert isinstance(message, Certificate12)
        peer = _authenticate(self.hello, message, ctx)
        state = Client12ExpectServerKeyExchange(self.hello, (*self.messages, raw), peer)
        return state, [
            note_in("Certificate", certificates=len(message.certificate_list)),
            note_in("peer_chain", subjects=peer.subjects[:8]),
        ]


@dataclass(frozen=True)
class Client12ExpectServerKeyExchange:
    hello: _Hello
    messages: tuple[bytes, ...] = field(repr=False)
    peer: VerifiedPeer
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (ServerKeyExchange,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Client12State, list[Output]]:
        assert isinstance(message, ServerKeyExchange)
        config = self.hello.config
        group = message.named_curve
        # RFC 8422 §5.4: a curve we offered (and one TLS 1.2 can use).
        if group not in config.groups or group not in _TLS12_GROUPS:
            raise ProtocolError(Cause.key_share_in_unoffered_group, enum_name(NamedGroup, group))
        # RFC 5246 §7.4.1.4.1: a scheme from our signature_algorithms.
        if message.algorithm not in offered_schemes(config):
            raise ProtocolError(Cause.signature_scheme_not_offered, f"0x{message.algorithm:04x}")
        # RFC 8422 §5.4: the signature covers both randoms and the params.
        signed = b"".join((self.hello.client_random, self.hello.server_random, message.params()))
        verify12(
            message.algorithm,
            self.peer.leaf_public_key,
            signed,
            message.signature,
            key_is_rsassa_pss=self.peer.leaf_key_is_rsassa_pss,
        )
        # Our share now, so that a point off the curve or compressed is
        # refused here (illegal_parameter, RFC 8422 §5.1.2, §5.4).
        share = ClientKeyShare.generate(group, ctx.random)
        pre_master_secret = share.shared_secret(message.public)
        state = Client12ExpectCertificateRequestOrDone(
            _KeyExchange(
                self.hello,
                self.peer,
                SignatureScheme(message.algorithm),
                NamedGroup(group),
                share.key_exchange,
                pre_master_secret,
            ),
            (*self.messages, raw),
        )
        return state, [
            note_in(
                "ServerKeyExchange",
                group=enum_name(NamedGroup, group),
                scheme=enum_name(SignatureScheme, message.algorithm),
            )
        ]


@dataclass(frozen=True)
class _KeyExchange:
    hello: _Hello
    peer: VerifiedPeer
    peer_scheme: SignatureScheme
    group: NamedGroup
    our_public: bytes
    pre_master_secret: bytes = field(repr=False)


@dataclass(frozen=True)
class Client12ExpectCertificateRequestOrDone:
    exchange: _KeyExchange
    messages: tuple[bytes, ...] = field(repr=False)
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (
        CertificateRequest12,
        ServerHelloDone,
    )

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Client12State, list[Output]]:
        messages = (*self.messages, raw)
        if isinstance(message, ServerHelloDone):
            return _second_flight(self.exchange, messages, None)
        assert isinstance(message, CertificateRequest12)
        state = Client12ExpectServerHelloDone(self.exchange, messages, message)
        return state, [note_in("CertificateRequest", version="TLS 1.2")]


@dataclass(frozen=True)
class Client12ExpectServerHelloDone:
    exchange: _KeyExchange
    messages: tuple[bytes, ...] = field(repr=False)
    request: CertificateRequest12
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (ServerHelloDone,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Client12State, list[Output]]:
        assert isinstance(message, ServerHelloDone)
        return _second_flight(self.exchange, (*self.messages, raw), self.request)


# ---- our flight --------------------------------------------------------------


def _our_credentials(
    config: ClientConfig, request: CertificateRequest12
) -> tuple[Credentials, SignatureScheme] | None:
    """Our credentials and a scheme the server listed, when both fit the
    request (RFC 5246 §7.4.4, §7.4.6); None sends an empty Certificate."""
    credentials = config.credentials
    if credentials is None:
        return None
    kind = (
        ClientCertificateType.rsa_sign
        if credentials.schemes[0].name.startswith("rsa")
        else ClientCertificateType.ecdsa_sign
    )
    if kind not in request.certificate_types:
        return None
    scheme = credentials.choose_scheme(request.supported_signature_algorithms)
    return None if scheme is None else (credentials, scheme)


def _second_flight(
    exchange: _KeyExchange, messages: tuple[bytes, ...], request: CertificateRequest12 | None
) -> tuple[Client12State, list[Output]]:
    """Our answer to ServerHelloDone (RFC 5246 §7.3): [Certificate]
    ClientKeyExchange [CertificateVerify] ChangeCipherSpec Finished."""
    hello = exchange.hello
    hash_name = hello.suite.hash_name
    out: list[Output] = [note_in("ServerHelloDone")]
    ours = None if request is None else _our_credentials(hello.config, request)
    if request is not None:
        chain = ours[0].chain if ours is not None else ()
        certificate = Certificate12(tuple(chain)).encode()
        messages = _sent(certificate, messages, out)
        out.append(note_out("Certificate", certificates=len(chain)))
    messages = _sent(ClientKeyExchange(exchange.our_public).encode(), messages, out)
    out.append(note_out("ClientKeyExchange"))
    # RFC 7627 §4: session_hash covers the messages through ClientKeyExchange.
    master = extended_master_secret(
        hash_name, exchange.pre_master_secret, _digest(hash_name, messages)
    )
    if ours is not None:
        credentials, scheme = ours
        # RFC 5246 §7.4.8: the signature is over the messages themselves.
        signature = credentials.sign(scheme, b"".join(messages))
        messages = _sent(CertificateVerify(scheme, signature).encode(), messages, out)
        out.append(note_out("CertificateVerify", scheme=scheme.name))
    suite = hello.suite
    keys = key_block(
        hash_name, master, hello.server_random, hello.client_random, suite.key_len, suite.iv_len
    )
    out += [
        # RFC 5246 §7.1: our ChangeCipherSpec, then our keys; the server's
        # keys wait for its ChangeCipherSpec.
        SendChangeCipherSpec(),
        SetWriteKeys12(suite, keys.client_write_key, keys.client_write_iv),
        SetReadKeys12(suite, keys.server_write_key, keys.server_write_iv),
    ]
    finished = Finished(
        verify_data(hash_name, master, CLIENT_FINISHED_LABEL, _digest(hash_name, messages))
    )
    messages = _sent(finished.encode(), messages, out)
    out.append(note_out("Finished"))
    our_scheme = None if ours is None else ours[1]
    return Client12ExpectFinished(_Keys(exchange, master, our_scheme), messages), out


def _sent(message: bytes, messages: tuple[bytes, ...], out: list[Output]) -> tuple[bytes, ...]:
    out.append(SendMessage(message))
    return (*messages, message)


@dataclass(frozen=True)
class _Keys:
    """After our Finished: what checking the server's needs."""

    exchange: _KeyExchange
    master_secret: bytes = field(repr=False)
    our_scheme: SignatureScheme | None


# ---- the server's ChangeCipherSpec and Finished ----------------------------


@dataclass(frozen=True)
class Client12ExpectFinished:
    """Our flight is out; the server's ChangeCipherSpec moves the read stage
    to its keys (the connection's business, RFC 5246 §7.1), then its
    Finished arrives under them."""

    keys: _Keys
    messages: tuple[bytes, ...] = field(repr=False)
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (Finished,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ClientEstablished12, list[Output]]:
        assert isinstance(message, Finished)
        exchange = self.keys.exchange
        hash_name = exchange.hello.suite.hash_name
        expected = verify_data(
            hash_name,
            self.keys.master_secret,
            SERVER_FINISHED_LABEL,
            _digest(hash_name, self.messages),
        )
        if len(message.verify_data) != len(expected):
            raise ProtocolError(Cause.finished_wrong_length)
        if not hmac.compare_digest(message.verify_data, expected):
            raise ProtocolError(Cause.bad_finished)  # RFC 5246 §7.4.9: decrypt_error
        event = HandshakeComplete(
            version=TLS12,
            cipher_suite=CipherSuite(exchange.hello.suite.suite),
            group=exchange.group,
            signature_scheme=self.keys.our_scheme,
            peer_signature_scheme=exchange.peer_scheme,
            peer=exchange.peer,
        )
        return ClientEstablished12(exchange.hello.suite), [note_in("Finished"), Complete(event)]


Client12State = (
    Client12ExpectCertificate
    | Client12ExpectServerKeyExchange
    | Client12ExpectCertificateRequestOrDone
    | Client12ExpectServerHelloDone
    | Client12ExpectFinished
    | ClientEstablished12
)
