"""What both roles share: the outputs a handler returns, and helpers for the
messages whose logic is the same on both sides (Certificate, CertificateVerify,
Finished)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import field
from datetime import datetime

from pinata.tls.config import Credentials, PeerAuthenticator, PeerRejected, VerifiedPeer
from pinata.tls.constants import ExtensionType, SignatureScheme, enum_name
from pinata.tls.errors import Cause, ProtocolError, rejection_cause
from pinata.tls.events import HandshakeComplete
from pinata.tls.extensions import Carrier, Extension, allowed_in
from pinata.tls.keyschedule import KeySchedule
from pinata.tls.messages import Certificate, CertificateEntry, CertificateVerify, Finished
from pinata.tls.record import RecordProtector12, RecordUnprotector12
from pinata.tls.signatures import certificate_verify_message, verify
from pinata.tls.suites import SuiteParams
from pinata.tls.trace import TraceEntry, TraceValue, flatten
from pinata.tls.transcript import Transcript
from pinata.tls.values import value

RandomSource = Callable[[int], bytes]


@value
class HandshakeContext:
    """The inputs from outside: where randomness and time come from."""

    random: RandomSource
    now: datetime


# ---- outputs -------------------------------------------------------------


@value
class SendMessage:
    """Complete handshake messages (one, or several back to back), sent
    under the current write keys."""

    data: bytes


def whole_messages(block: bytes) -> list[bytes]:
    """The handshake messages of a `SendMessage` block, each with its header
    (for tools that look at what we send one message at a time)."""
    messages = []
    while block:
        end = 4 + int.from_bytes(block[1:4], "big")
        messages.append(block[:end])
        block = block[end:]
    return messages


@value
class SendChangeCipherSpec:
    """The middlebox-compatibility CCS (RFC 8446 Appendix D.4)."""


@value
class SetWriteKeys:
    params: SuiteParams
    secret: bytes = field(repr=False)
    application: bool


@value
class SetReadKeys:
    params: SuiteParams
    secret: bytes = field(repr=False)
    application: bool


@value
class ChooseVersion:
    """The protocol version is decided (the ServerHello is sent or read):
    the connection records it, names it in the trace, and reads handshake
    messages as that version lays them out."""

    version: int


@value
class SetWriteKeys12:
    """TLS 1.2: send ChangeCipherSpec, then protect everything after it
    with `protector` (RFC 5246 §7.1)."""

    protector: RecordProtector12


@value
class SetReadKeys12:
    """TLS 1.2: the peer's records are protected with `unprotector` from its
    ChangeCipherSpec on, which must come next (RFC 5246 §7.1)."""

    unprotector: RecordUnprotector12


@value
class SkipEarlyData:
    """The client offered 0-RTT, which we reject by skipping its early data
    records (RFC 8446 §4.2.10) rather than failing the connection."""


@value
class Complete:
    event: HandshakeComplete


# A trace entry: never keys, secrets or application data. The connection
# stores it in its trace as it is (`pinata.tls.trace`). A hot path builds it
# with its details flat, Note(kind, what, (key, value, ...)): `note_in` and
# `note_out` read better but a keyword dict and its flattening cost twice
# the entry (issue 18).
Note = TraceEntry


Output = (
    SendMessage
    | SendChangeCipherSpec
    | SetWriteKeys
    | SetReadKeys
    | ChooseVersion
    | SetWriteKeys12
    | SetReadKeys12
    | SkipEarlyData
    | Complete
    | Note
)


def note_in(what: str, **details: TraceValue) -> Note:
    """A trace entry for a message received."""
    return Note("in", what, flatten(details))


def note_out(what: str, **details: TraceValue) -> Note:
    """A trace entry for a message sent."""
    return Note("out", what, flatten(details))


# The Finished notes, the same in every handshake of either role and
# version: built once.
NOTE_FINISHED_IN = note_in("Finished")
NOTE_FINISHED_OUT = note_out("Finished")


def send(message: bytes, transcript: Transcript, out: list[Output]) -> Transcript:
    """Queue `message` in `out`; the transcript with it added."""
    out.append(SendMessage(message))
    return transcript.add(message)


# ---- extension blocks ----------------------------------------------------


def extension_map(extensions: Sequence[Extension]) -> dict[int, bytes]:
    """Extension type to body, for a block the parser already checked."""
    # Duplicates were refused by the parser (RFC 8446 §4.2), so a dict loses nothing.
    return {e.extension_type: e.extension_data for e in extensions}


def refuse_unrequested(
    extensions: Sequence[Extension],
    carrier: Carrier,
    requested: frozenset[int],
) -> None:
    """RFC 8446 §4.2, for a server's message: an extension we never asked for
    is `unsupported_extension`; one we know but that the table (`ALLOWED_IN`)
    does not allow in this message is `illegal_parameter`."""
    allowed = allowed_in(carrier)
    message = carrier.value
    for e in extensions:
        if e.extension_type in allowed and e.extension_type in requested:
            continue
        if e.extension_type not in requested:
            raise ProtocolError(
                Cause.unrequested_extension,
                f"{message} carries {enum_name(ExtensionType, e.extension_type)}",
            )
        raise ProtocolError(
            Cause.extension_not_allowed_here,
            f"{message} may not carry {enum_name(ExtensionType, e.extension_type)}",
        )


# ---- Certificate, CertificateVerify, Finished ----------------------------


def certificate_message(credentials: Credentials | None, context: bytes = b"") -> Certificate:
    """Our Certificate (§4.4.2): the chain, or an empty list without credentials."""
    chain = credentials.chain if credentials is not None else ()
    return Certificate(context, tuple([CertificateEntry(der, ()) for der in chain]))


def authenticate_peer(
    message: Certificate,
    authenticate: PeerAuthenticator,
    now: datetime,
) -> VerifiedPeer:
    """Hand the list, exactly as sent, to the configured judge (RFC 8446 §4.4.2.4)."""
    if message.certificate_request_context:
        raise ProtocolError(Cause.request_context_not_empty, "in Certificate")
    for entry in message.certificate_list:
        if entry.extensions:
            # We request neither OCSP nor SCTs, so no entry extension is allowed (§4.4.2).
            raise ProtocolError(Cause.unrequested_certificate_extension)
    return judge_chain(tuple([e.cert_data for e in message.certificate_list]), authenticate, now)


def judge_chain(
    chain: tuple[bytes, ...], authenticate: PeerAuthenticator, now: datetime
) -> VerifiedPeer:
    """The configured judge's verdict on a peer's chain, exactly as sent (both
    versions); raises `ProtocolError` with the rejection's cause."""
    verdict = authenticate(chain, now)
    if isinstance(verdict, PeerRejected):
        raise ProtocolError(rejection_cause(verdict.alert), verdict.reason)
    return verdict


def chain_notes(peer: VerifiedPeer, certificates: int) -> list[Output]:
    """The trace's two entries for a peer's accepted Certificate."""
    return [
        Note("in", "Certificate", ("certificates", certificates)),
        Note("in", "peer_chain", ("subjects", peer.subjects[:8])),
    ]


def certificate_verify(
    credentials: Credentials,
    scheme: SignatureScheme,
    transcript: Transcript,
    is_server: bool,
) -> CertificateVerify:
    """Our CertificateVerify (§4.4.3) over the transcript so far."""
    signed = certificate_verify_message(is_server, transcript.digest())
    return CertificateVerify(scheme, credentials.sign(scheme, signed))


def check_certificate_verify(
    message: CertificateVerify,
    peer: VerifiedPeer,
    offered: Sequence[int],
    transcript: Transcript,
    peer_is_server: bool,
) -> SignatureScheme:
    """The peer's scheme, once its CertificateVerify checks out (§4.4.3);
    raises `ProtocolError` otherwise."""
    # §4.4.3: the scheme must be one we offered in signature_algorithms.
    if message.algorithm not in offered:
        raise ProtocolError(Cause.signature_scheme_not_offered, f"0x{message.algorithm:04x}")
    signed = certificate_verify_message(peer_is_server, transcript.digest())
    verify(
        message.algorithm,
        peer.leaf_public_key,
        signed,
        message.signature,
        key_is_rsassa_pss=peer.leaf_key_is_rsassa_pss,
    )
    return SignatureScheme(message.algorithm)


def finished_message(schedule: KeySchedule, base_key: bytes, transcript: Transcript) -> Finished:
    """Our Finished (§4.4.4) over the transcript so far."""
    return Finished(schedule.finished_verify_data(base_key, transcript.digest()))


def check_finished(
    message: Finished, schedule: KeySchedule, base_key: bytes, transcript: Transcript
) -> None:
    """§4.4.4: `finished_wrong_length` or `bad_finished` unless the peer's
    Finished matches the transcript."""
    expected = schedule.finished_verify_data(base_key, transcript.digest())
    if len(message.verify_data) != len(expected):
        raise ProtocolError(Cause.finished_wrong_length)
    if not hmac.compare_digest(message.verify_data, expected):
        raise ProtocolError(Cause.bad_finished)
