"""The client's side of the TLS 1.3 handshake (RFC 8446 §2, §4), full
handshake only: the server must always authenticate, we authenticate when asked.
The ClientHello offers the configured versions; a ServerHello that picks
TLS 1.2 hands over to `client12` (RFC 8446 §4.1.3 decides which it is).

  ExpectServerHello ──(HelloRetryRequest, once)──> ExpectServerHello
        ├──> ExpectEncryptedExtensions -> ExpectCertificateOrRequest
        │    -> [ExpectCertificate] -> ExpectCertificateVerify -> ExpectFinished -> Established
        └──(TLS 1.2)──> client12's states
"""

from __future__ import annotations

from dataclasses import field, replace
from typing import ClassVar

from pinata.tls.config import ClientConfig, VerifiedPeer
from pinata.tls.constants import (
    DOWNGRADE_TLS11,
    DOWNGRADE_TLS12,
    TLS12,
    TLS13,
    CipherSuite,
    ExtensionType,
    NamedGroup,
    SignatureScheme,
    enum_name,
    version_name,
)
from pinata.tls.errors import Cause, LocalProtocolError, ProtocolError
from pinata.tls.established import ClientEstablished
from pinata.tls.events import HandshakeComplete
from pinata.tls.extensions import (
    Carrier,
    Cookie,
    Extension,
    KeyShareClientHello,
    KeyShareEntry,
    KeyShareHelloRetryRequest,
    KeyShareServerHello,
    SignatureAlgorithms,
    SupportedGroups,
    SupportedVersionsServerHello,
    refuse_misplaced,
)
from pinata.tls.handshake import client12
from pinata.tls.handshake.client12 import Client12State
from pinata.tls.handshake.common import (
    NOTE_FINISHED_IN,
    NOTE_FINISHED_OUT,
    ChooseVersion,
    Complete,
    HandshakeContext,
    Note,
    Output,
    SendChangeCipherSpec,
    SetReadKeys,
    SetWriteKeys,
    authenticate_peer,
    certificate_message,
    certificate_verify,
    chain_notes,
    check_certificate_verify,
    check_finished,
    extension_map,
    finished_message,
    note_in,
    note_out,
    refuse_unrequested,
    send,
)
from pinata.tls.key_exchange import ClientKeyShare
from pinata.tls.keyschedule import KeySchedule, schedule_for
from pinata.tls.messages import (
    Certificate,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    Finished,
    HandshakeMessage,
    ServerHello,
)
from pinata.tls.suites import SuiteParams, lookup_suite
from pinata.tls.transcript import Transcript
from pinata.tls.values import value


def _hello_extensions(config: ClientConfig, shares: tuple[ClientKeyShare, ...]) -> list[Extension]:
    """The ClientHello's extensions: the configuration's own (built once per
    configuration, `ClientConfig.hello_extensions`), with key_share between
    them when TLS 1.3 is offered."""
    before, after = config.hello_extensions
    if TLS13 not in config.versions:
        return [*before, *after]
    key_share = KeyShareClientHello(
        tuple([KeyShareEntry(s.group, s.key_exchange) for s in shares])
    ).to_extension()
    return [*before, key_share, *after]


# The trace notes that never vary, built once; the others are built with
# their details flat (`Note`'s comment in common.py).
_NOTE_ENCRYPTED_EXTENSIONS = note_in("EncryptedExtensions")
_NOTE_CERTIFICATE_REQUEST = note_in("CertificateRequest")
_TLS13_NAME = version_name(TLS13)


def start(config: ClientConfig, ctx: HandshakeContext) -> tuple[ClientState, list[Output]]:
    """Build the first ClientHello (§4.1.2; RFC 5246 §7.4.1.2) offering
    `config.versions`, with a key share per configured group when TLS 1.3
    is among them. Raises `LocalProtocolError` for a configuration that
    offers neither TLS 1.3 nor TLS 1.2, or no cipher suite for them."""
    offers13, offers12 = TLS13 in config.versions, TLS12 in config.versions
    if not (offers13 or offers12) or set(config.versions) - {TLS13, TLS12}:
        raise LocalProtocolError("a client offers TLS 1.3, TLS 1.2 or both, nothing else")
    shares: tuple[ClientKeyShare, ...] = ()
    if offers13:
        # §4.2.8: "Each KeyShareEntry value MUST correspond to a group offered
        # in the supported_groups extension"; with none left the share list is
        # empty and the server asks for one (HelloRetryRequest).
        shares = tuple(
            ClientKeyShare.generate(g, ctx.random)
            for g in config.key_share_groups
            if g in config.groups
        )
    suites = tuple(config.cipher_suites) if offers13 else ()
    if offers12:
        suites += tuple(config.cipher_suites_tls12)
    if not suites:
        raise LocalProtocolError("no cipher suite to offer for the configured versions")
    hello = ClientHello(
        random=ctx.random(32),
        # A random session id turns on middlebox compatibility mode
        # (Appendix D.4); a TLS 1.2-only client resumes nothing, so sends none.
        legacy_session_id=ctx.random(32) if offers13 else b"",
        cipher_suites=suites,
        legacy_compression_methods=b"\x00",
        extensions=tuple(_hello_extensions(config, shares)),
    )
    out: list[Output] = []
    transcript = send(hello.encode(), Transcript(), out)
    key_shares = tuple([enum_name(NamedGroup, s.group) for s in shares])
    out.append(Note("out", "ClientHello", ("key_shares", key_shares)))
    state = ClientExpectServerHello(
        config=config,
        hello=hello,
        shares=shares,
        transcript=transcript,
        retry_suite=None,
    )
    return state, out


def negotiated_version(config: ClientConfig, message: ServerHello, after_retry: bool) -> int:
    """The version a ServerHello (or HelloRetryRequest) picks among those we
    offered (RFC 8446 §4.1.3, §4.2.1; RFC 5246 §7.4.1.3); raises
    `ProtocolError` for any other answer."""
    versions_data = extension_map(message.extensions).get(ExtensionType.supported_versions)
    if versions_data is not None:
        selected = SupportedVersionsServerHello.parse(versions_data).selected_version
        # §4.2.1: a version not offered, or one before TLS 1.3, in this
        # extension is illegal_parameter.
        if selected != TLS13 or TLS13 not in config.versions:
            raise ProtocolError(Cause.version_not_offered, f"0x{selected:04x}")
        return TLS13
    # §4.1.3: a client that offered TLS 1.3 refuses either sentinel from a
    # server that picked an older version: someone stripped our 1.3 offer.
    if TLS13 in config.versions and message.random[-8:] in (DOWNGRADE_TLS12, DOWNGRADE_TLS11):
        raise ProtocolError(Cause.downgrade_sentinel)
    if TLS12 not in config.versions:
        raise ProtocolError(Cause.tls13_not_offered, "by the server")
    legacy = message.legacy_version
    if legacy < TLS12:
        # RFC 5246 Appendix E.1: a version we do not accept is protocol_version.
        raise ProtocolError(Cause.version_too_old, f"0x{legacy:04x}")
    if legacy != TLS12:
        raise ProtocolError(Cause.legacy_version_wrong, f"ServerHello 0x{legacy:04x}")
    if after_retry:
        # §4.1.4: the version a HelloRetryRequest chose is the version.
        raise ProtocolError(Cause.version_changed_after_retry)
    return TLS12


def _check_common_hello(
    hello: ClientHello, message: ServerHello, config: ClientConfig
) -> SuiteParams:
    """Checks shared by a TLS 1.3 ServerHello and HelloRetryRequest (§4.1.3, §4.1.4)."""
    if message.legacy_version != TLS12:
        raise ProtocolError(Cause.legacy_version_wrong, "ServerHello")
    if message.legacy_session_id_echo != hello.legacy_session_id:
        raise ProtocolError(Cause.session_id_echo_mismatch)
    if message.legacy_compression_method != 0:
        raise ProtocolError(Cause.compression_offered)
    suite = lookup_suite(message.cipher_suite)
    if suite is None or message.cipher_suite not in config.cipher_suites:
        raise ProtocolError(Cause.unoffered_cipher_suite)
    return suite


@value
class ClientExpectServerHello:
    config: ClientConfig
    hello: ClientHello
    shares: tuple[ClientKeyShare, ...]
    transcript: Transcript
    # Set after a HelloRetryRequest, which may happen only once (§4.1.4).
    retry_suite: int | None
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (ServerHello,)

    def _sent_extension_types(self) -> frozenset[int]:
        return frozenset([e.extension_type for e in self.hello.extensions])

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ClientState, list[Output]]:
        assert isinstance(message, ServerHello)
        if negotiated_version(self.config, message, self.retry_suite is not None) == TLS12:
            return client12.server_hello(self.config, self.hello, message, raw)
        suite = _check_common_hello(self.hello, message, self.config)
        if message.is_hello_retry_request:
            return self._retry(ctx, message, raw, suite)
        return self._server_hello(message, raw, suite)

    def _retry(
        self, ctx: HandshakeContext, message: ServerHello, raw: bytes, suite: SuiteParams
    ) -> tuple[ClientState, list[Output]]:
        if self.retry_suite is not None:
            raise ProtocolError(Cause.unexpected_handshake_message, "second HelloRetryRequest")
        sent = self._sent_extension_types()
        # The cookie is the server's to add (§4.2.2): we need not have sent one.
        refuse_unrequested(
            message.extensions, Carrier.hello_retry_request, sent | {ExtensionType.cookie}
        )
        exts = extension_map(message.extensions)
        group_data = exts.get(ExtensionType.key_share)
        cookie_data = exts.get(ExtensionType.cookie)
        if group_data is None and cookie_data is None:
            # §4.1.4: a retry that would not change the ClientHello is an error.
            raise ProtocolError(Cause.pointless_retry)
        new_shares = self.shares
        group: int | None = None
        if group_data is not None:
            group = KeyShareHelloRetryRequest.parse(group_data).selected_group
            if group not in self.config.groups or any(s.group == group for s in self.shares):
                raise ProtocolError(Cause.retry_group_unusable)
            new_shares = (ClientKeyShare.generate(group, ctx.random),)
        hello2 = self._second_hello(new_shares, cookie_data)
        transcript = (
            self.transcript.select_hash(suite.hash_name)
            .restart_after_hello_retry_request()
            .add(raw)
        )
        out: list[Output] = [
            note_in(
                "HelloRetryRequest",
                cipher_suite=enum_name(CipherSuite, suite.suite),
                group=enum_name(NamedGroup, group) if group is not None else "-",
            )
        ]
        if self.hello.legacy_session_id:
            out.append(SendChangeCipherSpec())
        transcript = send(hello2.encode(), transcript, out)
        out.append(note_out("ClientHello", retry=1))
        state = ClientExpectServerHello(
            config=self.config,
            hello=hello2,
            shares=new_shares,
            transcript=transcript,
            retry_suite=suite.suite,
        )
        return state, out

    def _second_hello(
        self, shares: tuple[ClientKeyShare, ...], cookie_data: bytes | None
    ) -> ClientHello:
        """§4.1.2: the first ClientHello with only the changes the retry asks for."""
        extensions = []
        for e in self.hello.extensions:
            if e.extension_type == ExtensionType.key_share:
                e = KeyShareClientHello(
                    tuple([KeyShareEntry(s.group, s.key_exchange) for s in shares])
                ).to_extension()
            extensions.append(e)
        if cookie_data is not None:
            extensions.append(Cookie(Cookie.parse(cookie_data).cookie).to_extension())
        return replace(self.hello, extensions=tuple(extensions))

    def _server_hello(
        self, message: ServerHello, raw: bytes, suite: SuiteParams
    ) -> tuple[ClientState, list[Output]]:
        refuse_unrequested(message.extensions, Carrier.server_hello, self._sent_extension_types())
        if self.retry_suite is not None and suite.suite != self.retry_suite:
            raise ProtocolError(Cause.suite_changed_after_retry)
        share_data = extension_map(message.extensions).get(ExtensionType.key_share)
        if share_data is None:
            raise ProtocolError(Cause.missing_key_share)
        server_share = KeyShareServerHello.parse(share_data).share
        ours = next((s for s in self.shares if s.group == server_share.group), None)
        if ours is None:
            raise ProtocolError(Cause.key_share_in_unoffered_group)
        shared_secret = ours.shared_secret(server_share.key_exchange)
        transcript = self.transcript
        if self.retry_suite is None:
            transcript = transcript.select_hash(suite.hash_name)
        transcript = transcript.add(raw)
        schedule = schedule_for(suite)
        hs = schedule.handshake_secrets(shared_secret, transcript.digest())
        keys = _HandshakeKeys(
            config=self.config,
            schedule=schedule,
            suite=suite,
            group=NamedGroup(server_share.group),
            handshake_secret=hs.handshake_secret,
            client_handshake_secret=hs.client_handshake_traffic_secret,
            server_handshake_secret=hs.server_handshake_traffic_secret,
            sent_extensions=self._sent_extension_types(),
            compatibility_mode=bool(self.hello.legacy_session_id),
            sent_ccs=self.retry_suite is not None and bool(self.hello.legacy_session_id),
        )
        return ClientExpectEncryptedExtensions(keys, transcript), [
            ChooseVersion(TLS13),
            Note(
                "in",
                "ServerHello",
                (
                    "version",
                    _TLS13_NAME,
                    "cipher_suite",
                    enum_name(CipherSuite, suite.suite),
                    "group",
                    enum_name(NamedGroup, server_share.group),
                ),
            ),
            SetReadKeys(suite, hs.server_handshake_traffic_secret, application=False),
            # Installed now so that an alert we send from here on is protected.
            SetWriteKeys(suite, hs.client_handshake_traffic_secret, application=False),
        ]


@value
class _HandshakeKeys:
    config: ClientConfig
    schedule: KeySchedule
    suite: SuiteParams
    group: NamedGroup
    handshake_secret: bytes = field(repr=False)
    client_handshake_secret: bytes = field(repr=False)
    server_handshake_secret: bytes = field(repr=False)
    sent_extensions: frozenset[int]
    compatibility_mode: bool
    sent_ccs: bool


@value
class ClientExpectEncryptedExtensions:
    keys: _HandshakeKeys
    transcript: Transcript
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (EncryptedExtensions,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ClientState, list[Output]]:
        assert isinstance(message, EncryptedExtensions)
        refuse_unrequested(
            message.extensions, Carrier.encrypted_extensions, self.keys.sent_extensions
        )
        exts = extension_map(message.extensions)
        if exts.get(ExtensionType.server_name, b"") != b"":
            # RFC 6066 §3: the server's acknowledgement is empty.
            raise ProtocolError(Cause.server_name_reply_not_empty)
        if ExtensionType.supported_groups in exts:
            SupportedGroups.parse(exts[ExtensionType.supported_groups])
        transcript = self.transcript.add(raw)
        return ClientExpectCertificateOrRequest(self.keys, transcript), [
            _NOTE_ENCRYPTED_EXTENSIONS
        ]


def _accept_server_certificate(
    keys: _HandshakeKeys,
    transcript: Transcript,
    ctx: HandshakeContext,
    message: Certificate,
    raw: bytes,
    request: CertificateRequest | None,
    requested_schemes: tuple[int, ...],
) -> tuple[ClientState, list[Output]]:
    if not message.certificate_list:
        # §4.4.2.4: a server must always send a certificate in this mode.
        raise ProtocolError(Cause.server_certificate_empty)
    peer = authenticate_peer(message, keys.config.authenticate_server, ctx.now)
    transcript = transcript.add(raw)
    state = ClientExpectCertificateVerify(keys, transcript, request, requested_schemes, peer)
    return state, chain_notes(peer, len(message.certificate_list))


@value
class ClientExpectCertificateOrRequest:
    keys: _HandshakeKeys
    transcript: Transcript
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (CertificateRequest, Certificate)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ClientState, list[Output]]:
        if isinstance(message, Certificate):
            return _accept_server_certificate(
                self.keys, self.transcript, ctx, message, raw, None, ()
            )
        assert isinstance(message, CertificateRequest)
        if message.certificate_request_context:
            # §4.3.2: empty during the handshake; only post-handshake auth uses it.
            raise ProtocolError(Cause.request_context_not_empty, "in CertificateRequest")
        # Unknown extensions in a CertificateRequest are ignored (§4.3.2);
        # known ones go only where §4.2 allows them.
        refuse_misplaced(message.extensions, Carrier.certificate_request)
        schemes_data = extension_map(message.extensions).get(ExtensionType.signature_algorithms)
        if schemes_data is None:
            raise ProtocolError(Cause.missing_signature_algorithms, "in CertificateRequest")
        schemes = SignatureAlgorithms.parse(schemes_data).schemes
        transcript = self.transcript.add(raw)
        return ClientExpectCertificate(self.keys, transcript, message, schemes), [
            _NOTE_CERTIFICATE_REQUEST
        ]


@value
class ClientExpectCertificate:
    keys: _HandshakeKeys
    transcript: Transcript
    request: CertificateRequest
    requested_schemes: tuple[int, ...]
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (Certificate,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ClientState, list[Output]]:
        assert isinstance(message, Certificate)
        return _accept_server_certificate(
            self.keys, self.transcript, ctx, message, raw, self.request, self.requested_schemes
        )


@value
class ClientExpectCertificateVerify:
    keys: _HandshakeKeys
    transcript: Transcript
    request: CertificateRequest | None
    requested_schemes: tuple[int, ...]
    peer: VerifiedPeer
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (CertificateVerify,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ClientState, list[Output]]:
        assert isinstance(message, CertificateVerify)
        scheme = check_certificate_verify(
            message,
            self.peer,
            self.keys.config.signature_schemes,
            self.transcript,
            peer_is_server=True,
        )
        state = ClientExpectFinished(
            self.keys,
            self.transcript.add(raw),
            self.request,
            self.requested_schemes,
            self.peer,
            scheme,
        )
        return state, [Note("in", "CertificateVerify", ("scheme", scheme.name))]


@value
class ClientExpectFinished:
    keys: _HandshakeKeys
    transcript: Transcript
    request: CertificateRequest | None
    requested_schemes: tuple[int, ...]
    peer: VerifiedPeer
    peer_scheme: SignatureScheme
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (Finished,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ClientState, list[Output]]:
        assert isinstance(message, Finished)
        k = self.keys
        check_finished(message, k.schedule, k.server_handshake_secret, self.transcript)
        transcript = self.transcript.add(raw)
        app = k.schedule.application_secrets(k.handshake_secret, transcript.digest())
        out: list[Output] = [
            NOTE_FINISHED_IN,
            SetReadKeys(k.suite, app.server_application_traffic_secret_0, application=True),
        ]
        if k.compatibility_mode and not k.sent_ccs:
            out.append(SendChangeCipherSpec())
        our_scheme: SignatureScheme | None = None
        if self.request is not None:
            transcript, our_scheme = self._authenticate(transcript, out)
        finished = finished_message(k.schedule, k.client_handshake_secret, transcript)
        send(finished.encode(), transcript, out)
        out.append(NOTE_FINISHED_OUT)
        out.append(SetWriteKeys(k.suite, app.client_application_traffic_secret_0, application=True))
        event = HandshakeComplete(
            version=TLS13,
            cipher_suite=k.suite.suite,
            group=k.group,
            signature_scheme=our_scheme,
            peer_signature_scheme=self.peer_scheme,
            peer=self.peer,
        )
        out.append(Complete(event))
        established = ClientEstablished(
            k.suite,
            read_secret=app.server_application_traffic_secret_0,
            write_secret=app.client_application_traffic_secret_0,
        )
        return established, out

    def _authenticate(
        self, transcript: Transcript, out: list[Output]
    ) -> tuple[Transcript, SignatureScheme | None]:
        """Our Certificate and CertificateVerify, as asked (§4.4.2, §4.4.3)."""
        assert self.request is not None
        credentials = self.keys.config.credentials
        our_scheme = None
        if credentials is not None:
            our_scheme = credentials.choose_scheme(self.requested_schemes)
        # Without a usable credential we answer with an empty Certificate (§4.4.2.4).
        chosen = credentials if our_scheme is not None else None
        cert = certificate_message(chosen, self.request.certificate_request_context)
        transcript = send(cert.encode(), transcript, out)
        out.append(Note("out", "Certificate", ("certificates", len(cert.certificate_list))))
        if chosen is not None and our_scheme is not None:
            verify_msg = certificate_verify(chosen, our_scheme, transcript, is_server=False)
            transcript = send(verify_msg.encode(), transcript, out)
            out.append(Note("out", "CertificateVerify", ("scheme", our_scheme.name)))
        return transcript, our_scheme


ClientState = (
    ClientExpectServerHello
    | ClientExpectEncryptedExtensions
    | ClientExpectCertificateOrRequest
    | ClientExpectCertificate
    | ClientExpectCertificateVerify
    | ClientExpectFinished
    | ClientEstablished
    | Client12State
)
