"""What every harness shares: the finding type, a byte-consuming input
reader, and the checks of the invariant on a connection's output.

The reader is our own (not atheris' FuzzedDataProvider) so that a harness
runs the same way under pytest, with atheris absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pinata.tls.constants import ContentType
from pinata.tls.errors import AlertDescription
from pinata.tls.events import ApplicationData, ConnectionFailed, Event, HandshakeComplete

# A marker the harnesses that drive a connection use as "the secret": it
# must never show up in anything the harness can observe except the
# application data of a peer that completed a verified handshake.
MARKER_SECRET = b"PINATA-FUZZ-MARKER-SECRET-7f3a9c1e"

_RECORD_HEADER = 5
# An encrypted alert: 2 bytes of alert, 1 of inner type, a 16-byte AEAD tag
# (RFC 8446 §5.2); the engine never pads.
_PROTECTED_ALERT_LEN = 2 + 1 + 16
# TLS 1.2 protects an alert under its own content type (RFC 5246 §6.2.3.3):
# the 2 bytes and a 16-byte tag, after AES-GCM's 8-byte explicit nonce (RFC
# 5288 §3); ChaCha20-Poly1305 has none (RFC 7905 §2).
_PROTECTED_ALERT_LENS_TLS12 = frozenset((2 + 16, 8 + 2 + 16))
_KNOWN_ALERTS = frozenset(int(a) for a in AlertDescription)


class FuzzFinding(AssertionError):
    """The harness's invariant does not hold for this input."""


class Input:
    """Reads structure out of fuzz bytes; past the end every read is zero/empty,
    so any byte string is a valid input (libFuzzer's mutations stay useful)."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def u8(self) -> int:
        if self._pos >= len(self._data):
            return 0
        self._pos += 1
        return self._data[self._pos - 1]

    def u16(self) -> int:
        return (self.u8() << 8) | self.u8()

    def below(self, n: int) -> int:
        """An int in [0, n): one byte when n <= 256, two otherwise."""
        if n <= 1:
            return 0
        return (self.u8() if n <= 256 else self.u16()) % n

    def bool(self) -> bool:
        return bool(self.u8() & 1)

    def take(self, n: int) -> bytes:
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def blob(self, max_len: int = 255) -> bytes:
        """A length-prefixed (one byte, capped at `max_len`) run of bytes."""
        return self.take(min(self.u8(), max_len))

    def rest(self) -> bytes:
        out = self._data[self._pos :]
        self._pos = len(self._data)
        return out

    def chunks(self, data: bytes) -> list[bytes]:
        """Cut `data` at points this input chooses (the peer's TCP segments)."""
        out: list[bytes] = []
        pos = 0
        while pos < len(data):
            step = self.u8()
            size = len(data) - pos if step == 0 else step * 7
            out.append(data[pos : pos + size])
            pos += size
        return out


def split_records(output: bytes) -> list[tuple[int, bytes]]:
    """(content type, fragment) of each record; a finding if framing is broken."""
    records: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(output):
        if len(output) - pos < _RECORD_HEADER:
            raise FuzzFinding(f"output ends in a partial record header at {pos}")
        content_type = output[pos]
        version = int.from_bytes(output[pos + 1 : pos + 3], "big")
        length = int.from_bytes(output[pos + 3 : pos + 5], "big")
        if content_type not in (20, 21, 22, 23) or version not in (0x0301, 0x0303):
            raise FuzzFinding(f"malformed record header {output[pos : pos + 5].hex()}")
        end = pos + _RECORD_HEADER + length
        if end > len(output) or length == 0 or length > 2**14 + 256:
            raise FuzzFinding(f"record of length {length} at {pos} in {len(output)} bytes")
        records.append((content_type, output[pos + _RECORD_HEADER : end]))
        pos = end
    return records


def check_events(events: Sequence[Event], output: bytes, *, protected: bool) -> None:
    """After a connection failed with an alert it sent, that alert must be
    the last record out, well formed (RFC 8446 §6): in the clear as
    (fatal, description) before keys exist, else one protected record of
    exactly the size of an alert (TLS 1.3: an application_data record; TLS
    1.2: an alert record the size of a sealed alert)."""
    records = split_records(output)
    failures = [e for e in events if isinstance(e, ConnectionFailed)]
    if len(failures) > 1:
        raise FuzzFinding(f"{len(failures)} ConnectionFailed events from one call")
    if failures and events[-1] is not failures[0]:
        raise FuzzFinding("events follow ConnectionFailed")
    if not failures or not failures[0].sent:
        return
    alert = failures[0].alert
    if alert is None or int(alert) not in _KNOWN_ALERTS:
        raise FuzzFinding(f"sent alert {alert!r} is not a known description")
    if not records:
        raise FuzzFinding("ConnectionFailed(sent=True) but nothing was sent")
    content_type, fragment = records[-1]
    if protected:
        if content_type != ContentType.application_data or len(fragment) != _PROTECTED_ALERT_LEN:
            raise FuzzFinding(f"last record {content_type}/{len(fragment)} is no protected alert")
    elif content_type == ContentType.alert and len(fragment) in _PROTECTED_ALERT_LENS_TLS12:
        return
    elif content_type == ContentType.alert:
        if fragment != bytes((2, int(alert))):
            raise FuzzFinding(f"alert record {fragment.hex()} does not say fatal {alert!r}")
    elif content_type != ContentType.application_data or len(fragment) != _PROTECTED_ALERT_LEN:
        raise FuzzFinding(f"last record {content_type}/{len(fragment)} is no alert")


def check_no_secret(*observed: bytes | str | Iterable[object]) -> None:
    """The marker secret appears in none of the observed outputs."""
    marker_text = MARKER_SECRET.decode()
    for item in observed:
        if isinstance(item, bytes):
            found = MARKER_SECRET in item
        elif isinstance(item, str):
            found = marker_text in item
        else:
            found = marker_text in repr(list(item))
        if found:
            raise FuzzFinding("the secret leaked into an observable output")


def check_completion(events: Sequence[Event], *, peer_required: bool) -> HandshakeComplete | None:
    """Refuse by default: a side that asked for a certificate never completes
    without a verified peer chain."""
    done = next((e for e in events if isinstance(e, HandshakeComplete)), None)
    if done is not None and peer_required and done.peer is None:
        raise FuzzFinding("handshake completed without a verified peer")
    return done


def received_data(events: Iterable[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, ApplicationData))
