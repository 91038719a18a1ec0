"""The server's side of the TLS 1.3 handshake (RFC 8446 §2, §4), full
handshake only: no PSK, no 0-RTT, optional client authentication; and the
choice of version, which hands a TLS 1.2 ClientHello to `server12`.

  ExpectClientHello ──(no usable key share)──> ExpectSecondClientHello
        │                                              │
        └──> [ExpectCertificate -> ExpectCertificateVerify] -> ExpectFinished -> Established
"""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar

from pinata.tls.config import ServerConfig, VerifiedPeer
from pinata.tls.constants import (
    HELLO_RETRY_REQUEST_RANDOM,
    SSL30,
    TLS12,
    TLS13,
    TLS_FALLBACK_SCSV,
    CipherSuite,
    ExtensionType,
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
    Carrier,
    Cookie,
    EarlyDataIndication,
    KeyShareClientHello,
    KeyShareEntry,
    KeyShareHelloRetryRequest,
    KeyShareServerHello,
    PskKeyExchangeModes,
    ServerName,
    SignatureAlgorithms,
    SignatureAlgorithmsCert,
    SupportedGroups,
    SupportedVersionsClientHello,
    SupportedVersionsServerHello,
    TypedExtension,
    pre_shared_key_is_last,
    refuse_misplaced,
)
from pinata.tls.handshake import server12
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
    SkipEarlyData,
    authenticate_peer,
    certificate_verify,
    chain_notes,
    check_certificate_verify,
    check_finished,
    extension_map,
    finished_message,
    note_in,
    note_out,
    send,
)
from pinata.tls.key_exchange import server_key_exchange
from pinata.tls.keyschedule import HandshakeSecrets, KeySchedule, schedule_for
from pinata.tls.messages import (
    Certificate,
    CertificateVerify,
    ClientHello,
    Finished,
    HandshakeMessage,
    ServerHello,
)
from pinata.tls.suites import SuiteParams, lookup_suite
from pinata.tls.trace import code_points
from pinata.tls.transcript import Transcript
from pinata.tls.values import value

# supported_versions in every TLS 1.3 ServerHello and HelloRetryRequest
# (§4.2.1): the same extension each time, built once.
_SUPPORTED_VERSIONS_TLS13 = SupportedVersionsServerHello(TLS13).to_extension()
_NOTE_ENCRYPTED_EXTENSIONS = note_out("EncryptedExtensions")
_NOTE_CERTIFICATE_REQUEST = note_out("CertificateRequest")
_TLS13_NAME = version_name(TLS13)


def _server_hello_note(suite: int, group: int) -> Note:
    return Note(
        "out",
        "ServerHello",
        (
            "version",
            _TLS13_NAME,
            "cipher_suite",
            enum_name(CipherSuite, suite),
            "group",
            enum_name(NamedGroup, group),
        ),
    )


def _certificate_verify_note(scheme: int) -> Note:
    return Note("out", "CertificateVerify", ("scheme", enum_name(SignatureScheme, scheme)))


# The notes of our flight, built once at import for every registered suite,
# group and scheme (and chains of up to 8): a trace holds the fields of its
# notes for as long as the handshake stalls, and shared ones cost it no tuple
# of its own (ServerHello's: 88 bytes; issue 18). Others are built as needed.
_SERVER_HELLO_NOTES = {
    (suite, group): _server_hello_note(suite, group)
    for suite in CipherSuite
    for group in NamedGroup
}
_CERTIFICATE_VERIFY_NOTES = {scheme: _certificate_verify_note(scheme) for scheme in SignatureScheme}
_CERTIFICATE_NOTES = tuple(Note("out", "Certificate", ("certificates", n)) for n in range(9))


def _certificate_note(certificates: int) -> Note:
    if certificates < len(_CERTIFICATE_NOTES):
        return _CERTIFICATE_NOTES[certificates]
    return Note("out", "Certificate", ("certificates", certificates))


@value
class HelloChoices:
    """What the server picked from a ClientHello before any key exchange."""

    suite: SuiteParams
    group: NamedGroup
    client_share: bytes | None  # None: the client sent no share for `group`
    scheme: SignatureScheme
    offers_early_data: bool


# Extensions we do not act on but parse, so a malformed one is `decode_error`
# rather than silently carried into the transcript (each codec knows its bounds).
_VALIDATED_IN_CLIENT_HELLO: tuple[type[TypedExtension], ...] = (
    SignatureAlgorithmsCert,
    ServerName,
    ApplicationLayerProtocolNegotiation,
    PskKeyExchangeModes,
    EarlyDataIndication,
)


def _choose_version(
    config: ServerConfig, hello: ClientHello, exts: dict[int, bytes]
) -> tuple[int, tuple[int, ...] | None]:
    """TLS13 or TLS12, the best version both sides speak (RFC 8446 §4.2.1,
    RFC 5246 Appendix E.1), and supported_versions' list if it was read;
    raises `ProtocolError` when there is none or the client signals a
    fallback we did not need (RFC 7507 §3)."""
    if TLS12 not in config.versions:
        return TLS13, None  # the TLS 1.3 checks decide, exactly as before TLS 1.2
    data = exts.get(ExtensionType.supported_versions)
    offered = None if data is None else SupportedVersionsClientHello.parse(data).versions
    # RFC 7507 §3: the client's highest version (supported_versions' when
    # present, RFC 8446 §4.2.1) below ours, with the SCSV, is a downgrade;
    # said before any other refusal, as OpenSSL does.
    highest = hello.legacy_version if offered is None else max(
        [v for v in offered if SSL30 <= v <= TLS13], default=0
    )
    if TLS_FALLBACK_SCSV in hello.cipher_suites and highest < max(config.versions):
        raise ProtocolError(Cause.inappropriate_fallback, f"client's highest 0x{highest:04x}")
    if offered is not None:
        if TLS13 in offered and TLS13 in config.versions:
            return TLS13, offered
        if TLS12 not in offered:
            cause = Cause.version_too_old if max(offered) < TLS12 else Cause.no_common_version
            raise ProtocolError(cause, f"offered {', '.join(f'0x{v:04x}' for v in offered[:8])}")
    elif hello.legacy_version < TLS12:
        # SSL 3.0, TLS 1.0 and 1.1 (RFC 8996 deprecates the last two).
        raise ProtocolError(Cause.version_too_old, f"legacy_version 0x{hello.legacy_version:04x}")
    return TLS12, offered


def _check_version(
    hello: ClientHello, exts: dict[int, bytes], offered: tuple[int, ...] | None
) -> None:
    """§4.1.2, §4.2.1, Appendix D.5: a TLS 1.3 offer, without compression.
    `offered` is supported_versions' list when `_choose_version` read it."""
    if hello.legacy_version <= 0x0300:
        # Appendix D.5: SSL 3.0 and below are refused outright.
        raise ProtocolError(Cause.legacy_version_wrong, "SSL 3.0 or older")
    versions_data = exts.get(ExtensionType.supported_versions)
    if versions_data is None:
        # §4.2.1: without supported_versions this is a TLS 1.2-or-older hello.
        raise ProtocolError(Cause.tls13_not_offered)
    if offered is None:
        offered = SupportedVersionsClientHello.parse(versions_data).versions
    if TLS13 not in offered:
        raise ProtocolError(Cause.tls13_not_offered)
    if hello.legacy_compression_methods != b"\x00":
        raise ProtocolError(Cause.compression_offered)


def _choose_suite(config: ServerConfig, hello: ClientHello) -> SuiteParams:
    for s in config.cipher_suites:
        if s in hello.cipher_suites and (params := lookup_suite(s)) is not None:
            return params
    raise ProtocolError(Cause.no_common_cipher_suite)


def _key_exchange_offer(
    exts: dict[int, bytes],
) -> tuple[tuple[int, ...], tuple[KeyShareEntry, ...]]:
    """(supported_groups, key shares), checked against each other (§4.2.7, §4.2.8)."""
    # §9.2: without a PSK, supported_groups and key_share are required.
    groups_data = exts.get(ExtensionType.supported_groups)
    shares_data = exts.get(ExtensionType.key_share)
    if groups_data is None and shares_data is None and ExtensionType.pre_shared_key in exts:
        # A PSK-only offer (psk_ke): we keep no PSKs, so nothing is in common (§4.2.9).
        raise ProtocolError(Cause.psk_only_offer)
    if groups_data is None or shares_data is None:
        raise ProtocolError(Cause.missing_key_exchange_extensions)
    offered_groups = SupportedGroups.parse(groups_data).groups
    shares = KeyShareClientHello.parse(shares_data).shares
    for share in shares:
        # §4.2.8: each share must be for a group the client lists in supported_groups.
        if share.group not in offered_groups:
            raise ProtocolError(Cause.key_share_for_unlisted_group)
    return offered_groups, shares


def _choose_scheme(config: ServerConfig, exts: dict[int, bytes]) -> SignatureScheme:
    schemes_data = exts.get(ExtensionType.signature_algorithms)
    if schemes_data is None:
        raise ProtocolError(Cause.missing_signature_algorithms, "in ClientHello")
    schemes = SignatureAlgorithms.parse(schemes_data).schemes
    for kind in _VALIDATED_IN_CLIENT_HELLO:
        if kind.extension_type in exts:
            kind.parse(exts[kind.extension_type])
    if ExtensionType.cookie in exts:
        # Only a ClientHello answering our HelloRetryRequest may carry a cookie.
        raise ProtocolError(Cause.unsolicited_cookie)
    # `config.signature_schemes` is what we accept from the peer; what we
    # sign with depends only on our credentials and the client's offer (§4.4.3).
    scheme = config.credentials.choose_scheme(schemes)
    if scheme is None:
        raise ProtocolError(Cause.no_common_signature_scheme)
    return scheme


def _check_client_hello(
    config: ServerConfig,
    hello: ClientHello,
    exts: dict[int, bytes],
    offered: tuple[int, ...] | None,
) -> HelloChoices:
    """RFC 8446 §4.1.2, §4.2 and §9.2: what a TLS 1.3 ClientHello must hold,
    and what we choose from it. `exts` is its extension map (`extension_map`),
    `offered` supported_versions' list if it was read already."""
    _check_version(hello, exts, offered)
    refuse_misplaced(hello.extensions, Carrier.client_hello)
    if ExtensionType.pre_shared_key in exts and not pre_shared_key_is_last(hello.extensions):
        raise ProtocolError(Cause.pre_shared_key_not_last)
    suite = _choose_suite(config, hello)
    offered_groups, shares = _key_exchange_offer(exts)
    scheme = _choose_scheme(config, exts)
    early_data = ExtensionType.early_data in exts
    shared_by_group = {s.group: s.key_exchange for s in shares}
    # Prefer a group the client already sent a share for: that saves a round trip.
    for group in config.groups:
        if group in shared_by_group:
            return HelloChoices(suite, group, shared_by_group[group], scheme, early_data)
    for group in config.groups:
        if group in offered_groups:
            return HelloChoices(suite, group, None, scheme, early_data)
    if offered_groups and all(_is_obsolete_group(group) for group in offered_groups):
        # §4.2.7: these "MUST NOT be offered" in TLS 1.3; offering nothing
        # else is a broken hello, not merely a lack of overlap (among other
        # unknown values they are just unknown: handshake_failure).
        raise ProtocolError(Cause.only_obsolete_groups)
    raise ProtocolError(Cause.no_common_group)


def _is_obsolete_group(group: int) -> bool:
    """RFC 8446 §4.2.7's obsolete_RESERVED ranges (the TLS 1.2 curves)."""
    return 0x0001 <= group <= 0x0016 or 0x001A <= group <= 0x001C or group in (0xFF01, 0xFF02)


def _send_server_hello(
    ctx: HandshakeContext,
    hello: ClientHello,
    choices: HelloChoices,
    transcript: Transcript,
    sent_ccs: bool,
    out: list[Output],
) -> tuple[Transcript, KeySchedule, HandshakeSecrets]:
    """ServerHello and the switch to handshake keys (§4.1.3, §7.1)."""
    assert choices.client_share is not None
    server_share, shared_secret = server_key_exchange(
        choices.group, choices.client_share, ctx.random
    )
    server_hello = ServerHello(
        random=ctx.random(32),
        legacy_session_id_echo=hello.legacy_session_id,
        cipher_suite=choices.suite.suite,
        extensions=(
            _SUPPORTED_VERSIONS_TLS13,
            KeyShareServerHello(KeyShareEntry(choices.group, server_share)).to_extension(),
        ),
    )
    out.append(ChooseVersion(TLS13))
    transcript = send(server_hello.encode(), transcript, out)
    suite, group = choices.suite.suite, choices.group
    out.append(_SERVER_HELLO_NOTES.get((suite, group)) or _server_hello_note(suite, group))
    if hello.legacy_session_id and not sent_ccs:
        out.append(SendChangeCipherSpec())  # Appendix D.4, middlebox compatibility
    schedule = schedule_for(choices.suite)
    hs = schedule.handshake_secrets(shared_secret, transcript.digest())
    out.append(SetWriteKeys(choices.suite, hs.server_handshake_traffic_secret, application=False))
    out.append(SetReadKeys(choices.suite, hs.client_handshake_traffic_secret, application=False))
    if choices.offers_early_data:
        out.append(SkipEarlyData())
    return transcript, schedule, hs


def _send_encrypted_flight(
    config: ServerConfig,
    choices: HelloChoices,
    schedule: KeySchedule,
    server_handshake_secret: bytes,
    transcript: Transcript,
    out: list[Output],
) -> Transcript:
    """EncryptedExtensions, [CertificateRequest], Certificate, CertificateVerify,
    Finished (§4.3, §4.4)."""
    # Nothing is derived between these three (§4.4.1 hashes them in order,
    # one update or three): one message queued and one hash update for all.
    transcript = send(config.encoded_flight_head, transcript, out)
    out.append(_NOTE_ENCRYPTED_EXTENSIONS)
    if config.authenticate_client is not None:
        out.append(_NOTE_CERTIFICATE_REQUEST)
    out.append(_certificate_note(len(config.credentials.chain)))
    verify_msg = certificate_verify(config.credentials, choices.scheme, transcript, is_server=True)
    transcript = send(verify_msg.encode(), transcript, out)
    out.append(
        _CERTIFICATE_VERIFY_NOTES.get(choices.scheme) or _certificate_verify_note(choices.scheme)
    )
    finished = finished_message(schedule, server_handshake_secret, transcript)
    transcript = send(finished.encode(), transcript, out)
    out.append(NOTE_FINISHED_OUT)
    return transcript


def _server_flight(
    config: ServerConfig,
    ctx: HandshakeContext,
    hello: ClientHello,
    choices: HelloChoices,
    transcript: Transcript,
    sent_ccs: bool,
) -> tuple[ServerState, list[Output]]:
    """ServerHello, then EncryptedExtensions, [CertificateRequest], Certificate,
    CertificateVerify, Finished (§2), and the key changes between them. The
    handshake secret and the server's handshake traffic secret are not kept:
    their last use is here."""
    out: list[Output] = []
    transcript, schedule, hs = _send_server_hello(ctx, hello, choices, transcript, sent_ccs, out)
    transcript = _send_encrypted_flight(
        config, choices, schedule, hs.server_handshake_traffic_secret, transcript, out
    )
    app = schedule.application_secrets(hs.handshake_secret, transcript.digest())
    out.append(
        SetWriteKeys(choices.suite, app.server_application_traffic_secret_0, application=True)
    )
    common = _AfterServerFlight(
        config=config,
        schedule=schedule,
        suite=choices.suite,
        group=choices.group,
        scheme=choices.scheme,
        client_handshake_secret=hs.client_handshake_traffic_secret,
        client_application_secret=app.client_application_traffic_secret_0,
        server_application_secret=app.server_application_traffic_secret_0,
    )
    if config.authenticate_client is not None:
        return ServerExpectCertificate(common, transcript), out
    return ServerExpectFinished(common, transcript, peer=None, peer_scheme=None), out


def _hello_retry_request(
    ctx: HandshakeContext, hello: ClientHello, choices: HelloChoices, transcript: Transcript
) -> tuple[bytes, bytes, Transcript]:
    """§4.1.4: ask for a share in the group we chose; the cookie proves the
    second ClientHello answers this HelloRetryRequest. Returns the message,
    the cookie and the transcript restarted (§4.4.1) before it is added."""
    cookie = ctx.random(32)
    hrr = ServerHello(
        random=HELLO_RETRY_REQUEST_RANDOM,
        legacy_session_id_echo=hello.legacy_session_id,
        cipher_suite=choices.suite.suite,
        extensions=(
            _SUPPORTED_VERSIONS_TLS13,
            KeyShareHelloRetryRequest(choices.group).to_extension(),
            Cookie(cookie).to_extension(),
        ),
    )
    restarted = transcript.select_hash(choices.suite.hash_name).restart_after_hello_retry_request()
    return hrr.encode(), cookie, restarted


# §4.1.2: what a second ClientHello may change. key_share and pre_shared_key
# keep their place but not their content; early_data must go, a cookie comes
# (it answers our HelloRetryRequest), and padding may come, go or change.
_MAY_CHANGE_CONTENT = frozenset({ExtensionType.key_share, ExtensionType.pre_shared_key})
_MAY_COME_OR_GO = frozenset({ExtensionType.early_data, ExtensionType.cookie, ExtensionType.padding})


def _comparable(hello: ClientHello) -> tuple[object, ...]:
    extensions = tuple(
        (e.extension_type, None if e.extension_type in _MAY_CHANGE_CONTENT else e.extension_data)
        for e in hello.extensions
        if e.extension_type not in _MAY_COME_OR_GO
    )
    return (
        hello.legacy_version,
        hello.random,
        hello.legacy_session_id,
        hello.cipher_suites,
        hello.legacy_compression_methods,
        extensions,
    )


def _check_unchanged(first: ClientHello, second: ClientHello) -> None:
    """§4.1.2: "the client MUST send the same ClientHello without modification"
    but for the listed changes; anything else, field or extension, content or
    order, is `illegal_parameter`."""
    if _comparable(first) != _comparable(second):
        raise ProtocolError(Cause.second_client_hello_changed)


@value
class ServerExpectClientHello:
    config: ServerConfig
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (ClientHello,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ServerState, list[Output]]:
        assert isinstance(message, ClientHello)
        # One map of the extensions, and supported_versions read once, for
        # the choice of version and then TLS 1.3's checks.
        exts = extension_map(message.extensions)
        version, offered = _choose_version(self.config, message, exts)
        if version == TLS12:
            return server12.start(self.config, ctx, message, raw, exts)
        choices = _check_client_hello(self.config, message, exts, offered)
        notes: list[Output] = [
            Note(
                "in",
                "ClientHello",
                (
                    "cipher_suites",
                    code_points(message.cipher_suites[:16]),
                    "extensions",
                    code_points([e.extension_type for e in message.extensions[:24]]),
                ),
            )
        ]
        transcript = Transcript().add(raw)
        if choices.client_share is None:
            hrr, cookie, transcript = _hello_retry_request(ctx, message, choices, transcript)
            out: list[Output] = [*notes]
            transcript = send(hrr, transcript, out)
            out.append(
                note_out(
                    "HelloRetryRequest",
                    cipher_suite=enum_name(CipherSuite, choices.suite.suite),
                    group=enum_name(NamedGroup, choices.group),
                )
            )
            if message.legacy_session_id:
                out.append(SendChangeCipherSpec())
            if choices.offers_early_data:
                out.append(SkipEarlyData())
            state = ServerExpectSecondClientHello(
                self.config,
                transcript,
                message,
                choices,
                cookie,
                sent_ccs=bool(message.legacy_session_id),
            )
            return state, out
        transcript = transcript.select_hash(choices.suite.hash_name)
        state2, flight = _server_flight(self.config, ctx, message, choices, transcript, False)
        return state2, [*notes, *flight]


@value
class ServerExpectSecondClientHello:
    config: ServerConfig
    transcript: Transcript
    first_hello: ClientHello
    choices: HelloChoices
    cookie: bytes = field(repr=False)
    sent_ccs: bool
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (ClientHello,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ServerState, list[Output]]:
        assert isinstance(message, ClientHello)
        exts = extension_map(message.extensions)
        cookie_data = exts.pop(ExtensionType.cookie, None)
        if cookie_data is None:
            raise ProtocolError(Cause.missing_cookie)
        if Cookie.parse(cookie_data).cookie != self.cookie:
            raise ProtocolError(Cause.cookie_mismatch)
        if ExtensionType.early_data in exts:
            raise ProtocolError(Cause.early_data_after_retry)
        _check_unchanged(self.first_hello, message)
        stripped = ClientHello(
            legacy_version=message.legacy_version,
            random=message.random,
            legacy_session_id=message.legacy_session_id,
            cipher_suites=message.cipher_suites,
            legacy_compression_methods=message.legacy_compression_methods,
            extensions=tuple(
                e for e in message.extensions if e.extension_type != ExtensionType.cookie
            ),
        )
        # `exts` lost the cookie above: it is the map of `stripped`.
        choices = _check_client_hello(self.config, stripped, exts, None)
        if choices.suite.suite != self.choices.suite.suite:
            raise ProtocolError(Cause.second_client_hello_changed, "cipher suite")
        shares = KeyShareClientHello.parse(exts[ExtensionType.key_share]).shares
        if len(shares) != 1 or shares[0].group != self.choices.group:
            # §4.2.8: exactly one share, for the group we asked for.
            raise ProtocolError(Cause.retry_key_share_wrong)
        chosen = HelloChoices(
            self.choices.suite, self.choices.group, shares[0].key_exchange, choices.scheme, False
        )
        state, flight = _server_flight(
            self.config, ctx, message, chosen, self.transcript.add(raw), self.sent_ccs
        )
        return state, [note_in("ClientHello", retry=1), *flight]


@value
class _AfterServerFlight:
    config: ServerConfig
    schedule: KeySchedule
    # What the hellos settled, for HandshakeComplete: fields of their own
    # rather than one object of them, one object fewer per handshake
    # waiting for the client's second flight (issue 18).
    suite: SuiteParams
    group: NamedGroup
    scheme: SignatureScheme
    client_handshake_secret: bytes = field(repr=False)
    client_application_secret: bytes = field(repr=False)
    # Kept for KeyUpdate (§7.2): the Established state takes it over.
    server_application_secret: bytes = field(repr=False)


@value
class ServerExpectCertificate:
    common: _AfterServerFlight
    transcript: Transcript
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (Certificate,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ServerState, list[Output]]:
        assert isinstance(message, Certificate)
        authenticate = self.common.config.authenticate_client
        assert authenticate is not None
        if not message.certificate_list:
            # §4.4.2.4: we required a certificate and got none.
            raise ProtocolError(Cause.client_certificate_missing)
        peer = authenticate_peer(message, authenticate, ctx.now)
        state = ServerExpectCertificateVerify(self.common, self.transcript.add(raw), peer)
        return state, chain_notes(peer, len(message.certificate_list))


@value
class ServerExpectCertificateVerify:
    common: _AfterServerFlight
    transcript: Transcript
    peer: VerifiedPeer
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (CertificateVerify,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ServerState, list[Output]]:
        assert isinstance(message, CertificateVerify)
        scheme = check_certificate_verify(
            message,
            self.peer,
            self.common.config.signature_schemes,
            self.transcript,
            peer_is_server=False,
        )
        return ServerExpectFinished(self.common, self.transcript.add(raw), self.peer, scheme), [
            Note("in", "CertificateVerify", ("scheme", enum_name(SignatureScheme, scheme)))
        ]


@value
class ServerExpectFinished:
    common: _AfterServerFlight
    transcript: Transcript
    peer: VerifiedPeer | None
    peer_scheme: SignatureScheme | None
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = (Finished,)

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[ServerState, list[Output]]:
        assert isinstance(message, Finished)
        c = self.common
        check_finished(message, c.schedule, c.client_handshake_secret, self.transcript)
        event = HandshakeComplete(
            version=TLS13,
            cipher_suite=c.suite.suite,
            group=c.group,
            signature_scheme=c.scheme,
            peer_signature_scheme=self.peer_scheme,
            peer=self.peer,
        )
        established = ServerEstablished(
            c.suite,
            read_secret=c.client_application_secret,
            write_secret=c.server_application_secret,
        )
        return established, [
            NOTE_FINISHED_IN,
            SetReadKeys(c.suite, c.client_application_secret, application=True),
            Complete(event),
        ]


ServerState = (
    server12.Server12State
    | ServerExpectClientHello
    | ServerExpectSecondClientHello
    | ServerExpectCertificate
    | ServerExpectCertificateVerify
    | ServerExpectFinished
    | ServerEstablished
)
