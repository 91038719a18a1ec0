"""A TLS 1.3 connection with no I/O of its own (the h11 pattern).

The caller moves bytes: `receive_data(bytes)` returns events,
`data_to_send()` returns what to write. Underneath, the record layer
(RFC 8446 §5) frames, decrypts and reassembles; complete handshake messages
go to the role's state machine (`pinata.tls.handshake`), whose outputs this
module carries out. Any `ProtocolError` raised below ends the connection with
exactly one alert; after that nothing more is accepted.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime

from pinata.tls.config import ClientConfig, ServerConfig
from pinata.tls.constants import (
    MAX_PLAINTEXT,
    TLS10,
    TLS12,
    TLS13,
    ContentType,
    HandshakeType,
    KeyUpdateRequest,
    version_name,
)
from pinata.tls.errors import (
    AlertDescription,
    AlertLevel,
    Cause,
    LocalProtocolError,
    ProtocolError,
    alert_name,
)
from pinata.tls.established import (
    MAX_EMPTY_RECORDS_IN_A_ROW,
    MAX_KEY_UPDATES_IN_A_ROW,
    MAX_WARNING_ALERTS_IN_A_ROW,
    QUIET,
    ClientEstablished,
    Established,
    ServerEstablished,
)
from pinata.tls.events import (
    ApplicationData,
    ConnectionFailed,
    Ended,
    Event,
    LocalFailure,
    PeerAlert,
    PeerClosed,
)
from pinata.tls.handshake import client as client_states
from pinata.tls.handshake.common import (
    ChooseVersion,
    Complete,
    HandshakeContext,
    Output,
    RandomSource,
    SendChangeCipherSpec,
    SendMessage,
    SetReadKeys,
    SetReadKeys12,
    SetWriteKeys,
    SetWriteKeys12,
    SkipEarlyData,
)
from pinata.tls.handshake.common12 import AwaitingChangeCipherSpec
from pinata.tls.handshake.server import ServerExpectClientHello, ServerState
from pinata.tls.messages import (
    ClientHello,
    HelloRequest,
    KeyUpdate,
    NewSessionTicket,
    handshake_message_kind,
    parse_handshake_message,
)
from pinata.tls.record import (
    Record,
    RecordDeframer,
    RecordProtector,
    RecordUnprotector,
    SequenceExhausted,
    encode_plaintext_records,
)
from pinata.tls.stages import (
    ReadAwaitingChangeCipherSpec,
    ReadClosed,
    ReadHandshake,
    ReadPlaintext,
    ReadSkippingEarlyData,
    ReadStage,
    ReadTraffic,
    WriteClosed,
    WriteHandshake,
    WritePlaintext,
    WriteStage,
    WriteTraffic,
    ccs_seen,
)
from pinata.tls.suites import TAG_LEN
from pinata.tls.trace import Trace, TraceEntry

# Bounds on what a peer can make us hold (bytes of handshake message body).
# Over these caps a message the grammar allows is refused as a policy
# (`illegal_parameter`: a parameter we will not accept).
MAX_HANDSHAKE_MESSAGE = 16 * 1024
# ClientHello's grammar (§4.1.2) bounds it by itself: 2 + 32 + (1 + 32) +
# (2 + 65534) + (1 + 255) + (2 + 65535) bytes. Allowing all of it lets a
# maximum-size signature_algorithms list (32,767 schemes) through.
MAX_CLIENT_HELLO = 131_396
MAX_MESSAGE_BY_TYPE: dict[int, int] = {
    HandshakeType.client_hello: MAX_CLIENT_HELLO,
    HandshakeType.certificate: 64 * 1024,
}
# Messages whose type fixes a maximum length (§4.4.4: verify_data is one hash,
# at most SHA-384's 48 bytes; §4.6.3: KeyUpdate is one byte; §4.5:
# EndOfEarlyData is empty). A longer one disagrees with its own type:
# `decode_error`, decided at the header so the body is never buffered.
MAX_BY_GRAMMAR: dict[int, int] = {
    HandshakeType.client_hello: MAX_CLIENT_HELLO,
    HandshakeType.finished: 48,
    HandshakeType.key_update: 1,
    HandshakeType.end_of_early_data: 0,
}
MAX_HANDSHAKE_TOTAL = 256 * 1024
# The limits on KeyUpdates, warning alerts and empty records in a row are the
# Established state's (`pinata.tls.established`); re-exported here.
# We never issue tickets, so any early data is from a PSK we do not know; we
# skip at most this much of it (RFC 8446 §4.2.10) before calling it an attack.
MAX_EARLY_DATA_SKIPPED = 64 * 1024

# Alerts sent at warning level (RFC 8446 §6; RFC 5246 §7.2.2 for no_renegotiation).
_WARNINGS = frozenset(
    (
        AlertDescription.close_notify,
        AlertDescription.user_canceled,
        AlertDescription.no_renegotiation,
    )
)
_CHANGE_CIPHER_SPEC_RECORD = bytes((ContentType.change_cipher_spec, 3, 3, 0, 1, 1))
_HANDSHAKE = int(ContentType.handshake)
_ALERT = int(ContentType.alert)
_APPLICATION_DATA = int(ContentType.application_data)
_CHANGE_CIPHER_SPEC = int(ContentType.change_cipher_spec)

State = ServerState | client_states.ClientState
# The stages every connection starts in are values (NamedTuples), so one of
# each is shared: a connection that never completes a ClientHello holds
# nothing of its own for them (issue 18: bytes per stalled handshake).
_READ_PLAINTEXT = ReadPlaintext()
_WRITE_PLAINTEXT = WritePlaintext()
_WRITE_PLAINTEXT_AFTER_FIRST = WritePlaintext(first_flight=False)


class _Connection:
    """What both roles share: the record layer and post-handshake messages.

    The connection is four pieces of state, none a flag or counter: the
    handshake state (`pinata.tls.handshake`, ending in `Established`, which
    owns the application traffic secrets for KeyUpdate and the counts of
    what a peer sends in a row without use), the read and the write key
    stage (`pinata.tls.stages`), and the reassembly buffer of a handshake
    message in flight. Closed means the read stage is closed; a failure
    closes both and drops the secrets.
    """

    _is_client: bool
    # Held by every handshake waiting for its peer: slotted, where a __dict__'s
    # values cost about 100 bytes more (issue 18).
    __slots__ = ("_ctx", "_deframer", "_handshake_buffer", "_handshake_total", "_out",
                 "_pending_handshake", "_read", "_state", "_version", "_write", "trace")

    def __init__(self, state: State, ctx: HandshakeContext, *, tls12: bool) -> None:
        self._ctx = ctx
        self._state: State = state
        self._read: ReadStage = _READ_PLAINTEXT
        self._write: WriteStage = _WRITE_PLAINTEXT
        # The negotiated version, once a ServerHello is sent or read.
        self._version: int | None = None
        self._deframer = RecordDeframer(tls12=tls12)
        # The start of a handshake message that a later record completes;
        # None (nothing held) while every record ends on a message boundary.
        self._handshake_buffer: bytearray | None = None
        self._handshake_total = 0
        # Handshake messages waiting to be framed, and records waiting to be
        # written, in order; each joined once per drain. The records are a
        # tuple, not a list: empty, it is the shared empty tuple, where an
        # empty list is 56 bytes held by every handshake waiting for its peer
        # (issue 18); a drain takes a few at most.
        self._pending_handshake = b""
        self._out: tuple[bytes | memoryview, ...] = ()
        self.trace = Trace()

    # ---- public API ------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Nothing more will be accepted from the peer."""
        return isinstance(self._read, ReadClosed)

    @property
    def handshake_complete(self) -> bool:
        """Both Finished messages verified (the handshake state is Established)."""
        return isinstance(self._state, Established)

    @property
    def version(self) -> int | None:
        """The negotiated protocol version (TLS13 or TLS12), None before the ServerHello."""
        return self._version

    @property
    def state_name(self) -> str:
        return type(self._state).__name__

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes from the peer; `b""` means the peer closed the transport.

        Returns the events they caused; never raises for anything the peer
        sent (a fault becomes one `ConnectionFailed` and one alert)."""
        events: list[Event] = []
        if self.closed:
            return events
        try:
            if not data:
                self._on_end_of_stream(events)
                return events
            self._deframer.feed(data)
            while not isinstance(self._read, ReadClosed):
                record = self._deframer.next_record()
                if record is None:
                    break
                self._on_record(record, events)
            self._flush_handshake()
        except ProtocolError as error:
            self._fail(error, events)
        except SequenceExhausted:
            # §5.3: a wrapped sequence number must end the connection; no alert
            # can be protected any more, so none is sent.
            self._end()
            events.append(ConnectionFailed(Ended(Cause.sequence_number_exhausted)))
        return events

    def data_to_send(self) -> bytes | memoryview:
        """Everything queued for the peer since the last call.

        Application data sealed alone comes as a view of the write key's
        reused buffer, not a copy: the engine writes that buffer again only
        once the view and every view made from it are released, so holding
        it costs memory, never correctness. Write it out, then let it go."""
        out = self._out
        self._out = ()
        return out[0] if len(out) == 1 else b"".join(out)

    def send_application_data(self, data: bytes | memoryview) -> None:
        """Queue application data; `LocalProtocolError` unless established and open.

        For bulk data pass at most a socket buffer's worth per call: it is
        sealed into one buffer (`RecordProtector.seal_reusing`) of that size."""
        write = self._write
        if not self.handshake_complete or not isinstance(write, WriteTraffic):
            raise LocalProtocolError("application data can flow only on an established connection")
        if data:
            try:
                self._out += (write.protector.seal_reusing(_APPLICATION_DATA, data),)
            except SequenceExhausted as exhausted:
                raise self._exhausted() from exhausted

    def close(self) -> None:
        """Queue close_notify (§6.1); the peer may still send until it closes too."""
        if isinstance(self._write, WriteClosed):
            return
        self._flush_handshake()
        self._send_alert(AlertDescription.close_notify)
        self._write = WriteClosed()
        state = self._state
        if isinstance(state, Established):
            self._state = state.after_write_closed()
        self.trace.record("alert_out", "close_notify")

    def update_keys(self, request_peer_update: bool = False) -> None:
        """Send KeyUpdate (§4.6.3) and move our write keys forward."""
        if not self.handshake_complete or not isinstance(self._write, WriteTraffic):
            raise LocalProtocolError("keys can be updated only on an established connection")
        if self._version == TLS12:
            raise LocalProtocolError("TLS 1.2 has no KeyUpdate")
        request = (
            KeyUpdateRequest.update_requested
            if request_peer_update
            else KeyUpdateRequest.update_not_requested
        )
        self._send_key_update(request)

    # ---- writing ---------------------------------------------------------

    def _seal_many(
        self, write: WriteHandshake | WriteTraffic, content_type: int, data: bytes | memoryview
    ) -> bytes:
        try:
            return write.protector.seal_many(content_type, data)
        except SequenceExhausted as exhausted:
            raise self._exhausted() from exhausted

    def _exhausted(self) -> LocalProtocolError:
        """§5.3: our write sequence number would wrap, so no record can be
        protected any more: the connection ends; the error to raise."""
        self._end()
        return LocalProtocolError("sequence number exhausted; the connection is closed")

    def _flush_handshake(self) -> None:
        if not self._pending_handshake:
            return
        data = self._pending_handshake
        self._pending_handshake = b""
        write = self._write
        if isinstance(write, WriteHandshake | WriteTraffic):
            self._out += (self._seal_many(write, _HANDSHAKE, data),)
        elif isinstance(write, WritePlaintext):
            # §5.1: an initial ClientHello may carry 0x0301 for old middleboxes.
            version = TLS10 if write.first_flight and self._is_client else TLS12
            self._out += (
                encode_plaintext_records(_HANDSHAKE, data, legacy_record_version=version),
            )
            self._write = _WRITE_PLAINTEXT_AFTER_FIRST

    def _send_alert(self, description: AlertDescription) -> None:
        level = AlertLevel.warning if description in _WARNINGS else AlertLevel.fatal
        body = bytes((level, description))
        write = self._write
        if isinstance(write, WriteHandshake | WriteTraffic):
            try:
                sealed = write.protector.seal(_ALERT, body)
            except SequenceExhausted:
                return  # §5.3: no record can be protected any more, this alert included
            self._out += (sealed,)
        elif isinstance(write, WritePlaintext):
            self._out += (encode_plaintext_records(_ALERT, body),)

    def _send_key_update(self, request: KeyUpdateRequest) -> None:
        write, state = self._write, self._state
        assert isinstance(write, WriteTraffic) and isinstance(state, Established)
        self._out += (self._seal_many(write, _HANDSHAKE, KeyUpdate(request).encode()),)
        self._state, protector = state.after_own_key_update()
        self._write = WriteTraffic(protector)
        self.trace.add("out", "KeyUpdate", request_update=int(request))

    # ---- endings ---------------------------------------------------------

    def _end(self) -> None:
        """Accept nothing and send nothing more; the keys go with the stages,
        the secrets with the Established state."""
        self._read = ReadClosed()
        self._write = WriteClosed()
        state = self._state
        if isinstance(state, Established):
            self._state = state.after_failure()

    def _fail(self, error: ProtocolError, events: list[Event]) -> None:
        with contextlib.suppress(LocalProtocolError):
            self._flush_handshake()
        self._send_alert(error.alert)
        if error.alert == AlertDescription.no_renegotiation:
            # A warning (RFC 5246 §7.2.2): the close_notify is what ends it.
            self._send_alert(AlertDescription.close_notify)
        self._end()
        self.trace.add("alert_out", error.alert.name, cause=error.cause.value)
        events.append(ConnectionFailed(LocalFailure(error.cause, error.detail[:200])))

    def _on_end_of_stream(self, events: list[Event]) -> None:
        state = self._state
        if isinstance(state, Established):
            self._read = ReadClosed()
            self._state = state.after_read_closed()
            self.trace.record("note", "eof_without_close_notify")
            events.append(PeerClosed(clean=False))
        else:
            self._end()
            self.trace.record("note", "eof_during_handshake")
            events.append(ConnectionFailed(Ended(Cause.closed_during_handshake)))

    # ---- reading: records ------------------------------------------------

    def _on_record(self, record: Record, events: list[Event]) -> None:
        if record.content_type == _CHANGE_CIPHER_SPEC:
            self._on_change_cipher_spec(record.fragment)
            return
        opened = self._open(record)
        if opened is None:
            return
        content_type, content = opened
        if content_type == _HANDSHAKE:
            self._on_handshake_fragment(content, events)
        elif content_type == _ALERT:
            self._on_alert(content, events)
        elif content_type == _APPLICATION_DATA:
            self._on_application_data(content, events)
        else:
            raise ProtocolError(Cause.forbidden_inner_content_type, f"type {content_type}")

    def _on_change_cipher_spec(self, content: bytes | memoryview) -> None:
        if self._version == TLS12:
            self._on_change_cipher_spec12(content)
            return
        # §5: one dummy CCS after the first ClientHello and before the peer's
        # Finished, never inside a handshake message.
        read = self._read
        resume = read.resume if isinstance(read, ReadSkippingEarlyData) else read
        allowed = (
            not ccs_seen(read)
            and not self._handshake_buffer
            and not isinstance(self._state, ServerExpectClientHello)
        )
        if (
            not isinstance(resume, ReadPlaintext | ReadHandshake)
            or not allowed
            or bytes(content) != b"\x01"
        ):
            raise ProtocolError(Cause.change_cipher_spec_not_allowed)
        seen = resume._replace(ccs_seen=True)
        self._read = (
            ReadSkippingEarlyData(seen, read.budget)
            if isinstance(read, ReadSkippingEarlyData)
            else seen
        )

    def _on_change_cipher_spec12(self, content: bytes | memoryview) -> None:
        # RFC 5246 §7.1: exactly once, right before the peer's Finished, not
        # inside a handshake message; its body is the single byte 1.
        read, state = self._read, self._state
        if (
            not isinstance(read, ReadAwaitingChangeCipherSpec)
            or not isinstance(state, AwaitingChangeCipherSpec)
            or self._handshake_buffer
        ):
            raise ProtocolError(Cause.change_cipher_spec_out_of_place)
        if bytes(content) != b"\x01":
            raise ProtocolError(Cause.malformed_change_cipher_spec, f"{len(content)} bytes")
        self._read = ReadTraffic(read.unprotector)
        self._state = state.after_change_cipher_spec()
        self.trace.record("in", "ChangeCipherSpec")

    def _open(self, record: Record) -> tuple[int, bytes | memoryview] | None:
        """(content type, content) of a record under the read stage; None when
        it was skipped as early data."""
        read = self._read
        if isinstance(read, ReadTraffic):  # the common case, kept short
            return read.unprotector.open(record)  # refuses an unprotected record
        if not isinstance(read, ReadSkippingEarlyData):
            stage, content_type, content = _open_in(read, record)
            self._read = stage
            return content_type, content
        try:
            stage, content_type, content = _open_in(read.resume, record)
        except ProtocolError as error:
            length = len(record.fragment)
            # Only a record that could be protected at all (a tag and a
            # content type, §5.2) and within the budget is skipped.
            if error.cause in _SKIPPABLE and TAG_LEN < length <= read.budget:
                self._read = ReadSkippingEarlyData(read.resume, read.budget - length)
                return None
            raise
        if (
            isinstance(stage, ReadTraffic)
            or (isinstance(stage, ReadHandshake) and stage.opened)
            or content_type == _HANDSHAKE
        ):
            # §4.2.10: early data comes only before the client's next flight:
            # the first record that opens, or a handshake record (a second
            # ClientHello, say), ends the skipping.
            self._read = stage
        else:
            assert not isinstance(stage, ReadAwaitingChangeCipherSpec)  # TLS 1.3 only
            self._read = ReadSkippingEarlyData(stage, read.budget)
        return content_type, content

    def _on_application_data(self, content: bytes | memoryview, events: list[Event]) -> None:
        state = self._state
        # Application traffic keys are read only once Established (both
        # roles install them with the last handshake message).
        if not isinstance(self._read, ReadTraffic) or not isinstance(state, Established):
            raise ProtocolError(Cause.application_data_before_handshake)
        if self._handshake_buffer:
            # §5.1: a handshake message's fragments may not be interleaved
            # with records of another type (here: a post-handshake message).
            raise ProtocolError(Cause.data_inside_handshake_message)
        if not content:
            # §5.4 allows zero-length application data, but not without end.
            self._state = state.after_empty_record()
            return
        if state.idle is not QUIET:
            self._state = state.after_application_data()
        events.append(ApplicationData(bytes(content)))

    # ---- reading: alerts -------------------------------------------------

    def _on_alert(self, content: bytes | memoryview, events: list[Event]) -> None:
        if self._handshake_buffer:
            raise ProtocolError(Cause.alert_inside_handshake_message)
        if not content:
            # §5.1: an alert record holds exactly one alert; an empty one holds
            # none, the same fault as an empty handshake record.
            raise ProtocolError(Cause.empty_alert_record)
        if len(content) != 2:
            # §5.1: alerts are never fragmented nor coalesced; a record of
            # one byte or of three or more is a malformed alert.
            raise ProtocolError(Cause.malformed_alert, f"{len(content)} bytes")
        description = content[1]
        self.trace.record("alert_in", alert_name(description))
        state = self._state
        if description == AlertDescription.user_canceled:
            # §6.1: a close_notify should follow; nothing ends yet.
            if isinstance(state, Established):
                self._state = state.after_warning_alert()
            else:
                self._read = _after_handshake_warning(self._read)
            return
        if description == AlertDescription.close_notify and isinstance(state, Established):
            self._read = ReadClosed()
            self._state = state.after_read_closed()
            events.append(PeerClosed(clean=True))
            return
        # §6.2: every other alert is an error; the connection is over.
        self._end()
        known: AlertDescription | int
        try:
            known = AlertDescription(description)
        except ValueError:
            known = description
        events.append(ConnectionFailed(PeerAlert(known)))

    # ---- reading: handshake messages ---------------------------------------

    def _on_handshake_fragment(self, content: bytes | memoryview, events: list[Event]) -> None:
        if not content:
            raise ProtocolError(Cause.empty_handshake_record)  # §5.1
        self._handshake_total += len(content)
        if self._handshake_total > MAX_HANDSHAKE_TOTAL and not isinstance(
            self._state, Established
        ):
            raise ProtocolError(Cause.handshake_over_cap)
        buffer = self._handshake_buffer
        if buffer is not None:
            # The rest of a message begun in an earlier record: it grows in
            # place, and is copied out once, when it is whole.
            buffer += content
            if not self._whole_message_in(buffer):
                return
            self._handshake_buffer = None
            content = bytes(buffer)
        # Whole messages are read where they lie; only an unfinished one's
        # bytes are kept for the next record.
        data = memoryview(content)
        start, end = 0, len(data)
        while end - start >= 4 and not isinstance(self._read, ReadClosed):
            msg_type = data[start]
            length = int.from_bytes(data[start + 1 : start + 4], "big")
            self._check_header(msg_type, length)
            if end - start < 4 + length:
                break
            raw = bytes(data[start : start + 4 + length])
            start += 4 + length
            keys_changed = self._on_handshake_message(msg_type, raw, events)
            if keys_changed and start < end:
                # §5.1: a handshake message may not span a change of keys.
                raise ProtocolError(Cause.handshake_message_spans_key_change)
        if start < end:
            self._handshake_buffer = bytearray(data[start:])

    def _whole_message_in(self, buffer: bytearray) -> bool:
        """Whether `buffer` starts with a whole message; its header is
        judged as soon as it is there (`_check_header`)."""
        if len(buffer) < 4:
            return False
        length = int.from_bytes(buffer[1:4], "big")
        self._check_header(buffer[0], length)
        return len(buffer) >= 4 + length

    def _check_header(self, msg_type: int, length: int) -> None:
        # RFC 5246 §7.2.2, RFC 8446 §6.2: a message the state does not expect
        # is unexpected_message, decided at its header, before its body is
        # buffered or read in a layout it was never meant to have; so is a
        # length over the message's grammar or our cap.
        state = self._state
        if not isinstance(state, Established):  # post-handshake messages are judged whole
            kind = handshake_message_kind(msg_type, self._version or TLS13)
            if not issubclass(kind, state.expects):
                raise ProtocolError(
                    Cause.unexpected_handshake_message,
                    f"{kind.__name__} in state {self.state_name}",
                )
        grammar = MAX_BY_GRAMMAR.get(msg_type)
        if grammar is not None and length > grammar:
            raise ProtocolError(Cause.message_too_long_for_type, f"type {msg_type}: {length} bytes")
        if length > MAX_MESSAGE_BY_TYPE.get(msg_type, MAX_HANDSHAKE_MESSAGE):
            raise ProtocolError(Cause.message_over_cap, f"type {msg_type}: {length} bytes")

    def _on_handshake_message(self, msg_type: int, raw: bytes, events: list[Event]) -> bool:
        message = parse_handshake_message(msg_type, memoryview(raw)[4:], self._version or TLS13)
        state = self._state
        if isinstance(state, Established):
            return self._on_post_handshake(state, message)
        self._state, outputs = state.handle(self._ctx, message, raw)
        return self._apply(outputs, events)

    def _apply(self, outputs: list[Output], events: list[Event]) -> bool:
        # The chain is in order of frequency: a handshake's outputs are
        # mostly messages and trace entries, then key changes.
        read_keys_changed = False
        for output in outputs:
            if isinstance(output, SendMessage):
                self._pending_handshake += output.data
            elif isinstance(output, TraceEntry):
                self.trace.append(output)
            elif isinstance(output, SetWriteKeys):
                self._flush_handshake()
                self._write = _write_stage(output)
            elif isinstance(output, SetReadKeys):
                self._read = _read_stage(output, self._read)
                read_keys_changed = True
            elif isinstance(output, ChooseVersion):
                self._version = output.version
                self.trace.record("note", version_name(output.version))
            elif isinstance(output, SendChangeCipherSpec):
                self._flush_handshake()
                self._out += (_CHANGE_CIPHER_SPEC_RECORD,)
            elif isinstance(output, Complete):
                self._flush_handshake()
                events.append(output.event)
            else:
                self._apply_rare(output)
        self.trace.record("state", type(self._state).__name__)
        return read_keys_changed

    def _apply_rare(self, output: SetWriteKeys12 | SetReadKeys12 | SkipEarlyData) -> None:
        """TLS 1.2's key changes and the skipping of early data: once per
        handshake of that kind at most. None changes the keys of the record
        being read (TLS 1.2's read keys wait for ChangeCipherSpec)."""
        if isinstance(output, SetWriteKeys12):
            # RFC 5246 §7.1: ChangeCipherSpec, then everything protected.
            self._flush_handshake()
            self._out += (_CHANGE_CIPHER_SPEC_RECORD,)
            self._write = WriteTraffic(output.protector)
        elif isinstance(output, SetReadKeys12):
            self._read = ReadAwaitingChangeCipherSpec(output.unprotector)
        else:
            read = self._read
            assert isinstance(read, ReadPlaintext | ReadHandshake)
            self._read = ReadSkippingEarlyData(read, MAX_EARLY_DATA_SKIPPED)

    def _on_post_handshake(
        self, state: ServerEstablished | ClientEstablished, message: object
    ) -> bool:
        if state.version == TLS12:
            _refuse_post_handshake12(message)
        if isinstance(message, KeyUpdate):
            self._state, unprotector = state.after_peer_key_update()
            self._read = ReadTraffic(unprotector)
            self.trace.add("in", "KeyUpdate", request_update=message.request_update)
            if message.request_update == KeyUpdateRequest.update_requested and isinstance(
                self._write, WriteTraffic
            ):
                self._send_key_update(KeyUpdateRequest.update_not_requested)
            return True
        if isinstance(message, NewSessionTicket) and self._is_client:
            # We never resume (no PSK), so a ticket is simply dropped (§4.6.1).
            self.trace.record("in", "NewSessionTicket")
            return False
        # Post-handshake authentication was never offered (§4.6.2).
        raise ProtocolError(
            Cause.unexpected_handshake_message, f"{type(message).__name__} after the handshake"
        )


_InTheClear = ReadPlaintext | ReadAwaitingChangeCipherSpec


def _refuse_post_handshake12(message: object) -> None:
    """Every handshake message after a TLS 1.2 handshake is refused: we do
    not renegotiate (RFC 5746 §4.2 lets us refuse; a fatal alert, because a
    peer that asks would wait for an answer forever), and KeyUpdate is a
    TLS 1.3 message."""
    if isinstance(message, HelloRequest | ClientHello):
        raise ProtocolError(Cause.renegotiation_refused, type(message).__name__)
    if isinstance(message, KeyUpdate):
        raise ProtocolError(Cause.key_update_in_tls12)
    raise ProtocolError(
        Cause.unexpected_handshake_message, f"{type(message).__name__} after the handshake"
    )


def _open_in(
    read: ReadPlaintext | ReadHandshake | ReadTraffic | ReadAwaitingChangeCipherSpec | ReadClosed,
    record: Record,
) -> tuple[
    ReadPlaintext | ReadHandshake | ReadTraffic | ReadAwaitingChangeCipherSpec,
    int,
    bytes | memoryview,
]:
    """The stage after `record`, and the record's content type and content."""
    content_type = record.content_type
    if isinstance(read, _InTheClear):
        if content_type == _APPLICATION_DATA:
            raise ProtocolError(Cause.protected_record_before_keys)
        if len(record.fragment) > MAX_PLAINTEXT:
            raise ProtocolError(Cause.record_too_long, "plaintext record")
        return read, content_type, record.fragment
    assert not isinstance(read, ReadClosed)  # receive_data stops at a closed stage
    if isinstance(read, ReadHandshake) and not read.opened and content_type == _ALERT:
        # The peer failed before it could install keys (it refused our
        # ServerHello, say): its alert is in the clear.
        return read, content_type, record.fragment
    if content_type != _APPLICATION_DATA:
        raise ProtocolError(Cause.unprotected_record_after_keys, f"type {content_type}")
    inner_type, content = read.unprotector.open(record)
    if isinstance(read, ReadHandshake) and not read.opened:
        return read._replace(opened=True), inner_type, content
    return read, inner_type, content


def _write_stage(keys: SetWriteKeys) -> WriteHandshake | WriteTraffic:
    # No secret is kept: the Established state holds the application one.
    protector = RecordProtector(keys.params, keys.secret)
    return WriteTraffic(protector) if keys.application else WriteHandshake(protector)


def _read_stage(keys: SetReadKeys, previous: ReadStage) -> ReadHandshake | ReadTraffic:
    unprotector = RecordUnprotector(keys.params, keys.secret)
    if keys.application:
        return ReadTraffic(unprotector)
    if isinstance(previous, ReadSkippingEarlyData):
        previous = previous.resume
    warnings = previous.warnings if isinstance(previous, ReadPlaintext | ReadHandshake) else 0
    return ReadHandshake(unprotector, ccs_seen=ccs_seen(previous), warnings=warnings)


def _after_handshake_warning(read: ReadStage) -> ReadStage:
    """A user_canceled warning during the handshake, counted in the read
    stage; `too_many_warning_alerts` past the Established state's limit."""
    if isinstance(read, ReadSkippingEarlyData):
        resume = _counted_warning(read.resume)
        assert isinstance(resume, ReadPlaintext | ReadHandshake)  # as it was
        return read._replace(resume=resume)
    assert not isinstance(read, ReadClosed)  # receive_data stops at a closed stage
    return _counted_warning(read)


_Counted = ReadPlaintext | ReadHandshake | ReadAwaitingChangeCipherSpec | ReadTraffic


def _counted_warning(read: _Counted) -> _Counted:
    if read.warnings >= MAX_WARNING_ALERTS_IN_A_ROW:
        raise ProtocolError(Cause.too_many_warning_alerts)
    return read._replace(warnings=read.warnings + 1)


# A record that does not open while early data is being skipped (§4.2.10).
_SKIPPABLE = frozenset({Cause.record_undecryptable, Cause.protected_record_before_keys})


class ServerConnection(_Connection):
    """The server side: waits for a ClientHello."""

    __slots__ = ()
    _is_client = False

    def __init__(
        self, config: ServerConfig, *, random: RandomSource = os.urandom, now: datetime
    ) -> None:
        super().__init__(
            ServerExpectClientHello(config),
            HandshakeContext(random, now),
            tls12=TLS12 in config.versions,
        )


class ClientConnection(_Connection):
    """The client side: its ClientHello is ready in `data_to_send()` at once."""

    __slots__ = ()
    _is_client = True

    def __init__(
        self, config: ClientConfig, *, random: RandomSource = os.urandom, now: datetime
    ) -> None:
        ctx = HandshakeContext(random, now)
        state, outputs = client_states.start(config, ctx)
        super().__init__(state, ctx, tls12=TLS12 in config.versions)
        self._apply(outputs, [])
        self._flush_handshake()


__all__ = [
    "MAX_EMPTY_RECORDS_IN_A_ROW",
    "MAX_KEY_UPDATES_IN_A_ROW",
    "MAX_WARNING_ALERTS_IN_A_ROW",
    "ClientConnection",
    "ServerConnection",
]
