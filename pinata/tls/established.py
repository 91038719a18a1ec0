"""The handshake's last state: both Finished messages verified (RFC 8446 §4.4.4).

`Established` owns what the connection needs after the handshake and nothing
else: the current application traffic secret of each direction, from which
KeyUpdate derives the next generation (§7.2), dropped when that direction
closes (close_notify sent or received, §6.1) or the connection fails; and
the counts of things a peer may send without limit yet without use
(KeyUpdates, warning alerts, empty records), which application data resets.
Each step returns a new state, so the connection keeps no counter or flag
of its own. The roles share it; `ServerEstablished` and `ClientEstablished`
name it in traces.
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Self

from pinata.tls.constants import TLS13
from pinata.tls.errors import Cause, ProtocolError
from pinata.tls.keyschedule import KeySchedule
from pinata.tls.record import RecordProtector, RecordUnprotector
from pinata.tls.suites import SuiteParams
from pinata.tls.values import value

if TYPE_CHECKING:
    from pinata.tls.handshake.common import HandshakeContext, Output
    from pinata.tls.messages import HandshakeMessage

# A peer that sends nothing useful still costs us work: these many KeyUpdates,
# warning alerts or empty records in a row, with no application data between
# them, and the connection ends with `unexpected_message` (OpenSSL draws the
# same lines: 32 KeyUpdates, 5 warning alerts, 32 empty records).
MAX_KEY_UPDATES_IN_A_ROW = 32
MAX_WARNING_ALERTS_IN_A_ROW = 5
MAX_EMPTY_RECORDS_IN_A_ROW = 32


class Idle(NamedTuple):
    """What the peer sent in a row with no application data between."""

    key_updates: int = 0
    warning_alerts: int = 0
    empty_records: int = 0


QUIET = Idle()


@value
class Established:
    """Both Finished verified. `read_secret` / `write_secret`: the current
    application traffic secret of each direction, None once it is closed."""

    params: SuiteParams
    read_secret: bytes | None = field(repr=False)
    write_secret: bytes | None = field(repr=False)
    idle: Idle = QUIET
    # TLS 1.2 keeps no secrets here (it has no KeyUpdate) and refuses
    # renegotiation; the connection asks which version it is.
    version: int = TLS13
    expects: ClassVar[tuple[type[HandshakeMessage], ...]] = ()

    def handle(
        self, ctx: HandshakeContext, message: HandshakeMessage, raw: bytes
    ) -> tuple[Self, list[Output]]:
        """Never called: post-handshake messages go to the `after_*` steps."""
        raise ProtocolError(Cause.unexpected_handshake_message, "handshake is over")

    def _with(self, read: bytes | None, write: bytes | None, idle: Idle) -> Self:
        return type(self)(self.params, read, write, idle, self.version)

    def after_peer_key_update(self) -> tuple[Self, RecordUnprotector]:
        """The peer's KeyUpdate (§4.6.3): its next generation of keys, at
        sequence number 0; `too_many_key_updates` past the limit."""
        idle = self.idle
        if idle.key_updates >= MAX_KEY_UPDATES_IN_A_ROW:
            raise ProtocolError(Cause.too_many_key_updates)
        assert self.read_secret is not None  # a closed direction reads nothing
        secret = KeySchedule(self.params).next_traffic_secret(self.read_secret)
        idle = Idle(idle.key_updates + 1, idle.warning_alerts, idle.empty_records)
        state = self._with(secret, self.write_secret, idle)
        return state, RecordUnprotector(self.params, secret)

    def after_own_key_update(self) -> tuple[Self, RecordProtector]:
        """Our KeyUpdate is sealed under the current keys: the next generation
        of our keys (§4.6.3, §7.2), for the records after it."""
        assert self.write_secret is not None  # a closed direction writes nothing
        secret = KeySchedule(self.params).next_traffic_secret(self.write_secret)
        state = self._with(self.read_secret, secret, self.idle)
        return state, RecordProtector(self.params, secret)

    def after_warning_alert(self) -> Self:
        """A user_canceled warning (§6.1); `too_many_warning_alerts` past the limit."""
        idle = self.idle
        if idle.warning_alerts >= MAX_WARNING_ALERTS_IN_A_ROW:
            raise ProtocolError(Cause.too_many_warning_alerts)
        idle = Idle(idle.key_updates, idle.warning_alerts + 1, idle.empty_records)
        return self._with(self.read_secret, self.write_secret, idle)

    def after_empty_record(self) -> Self:
        """An empty application-data record (§5.4 allows it, not without end)."""
        idle = self.idle
        if idle.empty_records >= MAX_EMPTY_RECORDS_IN_A_ROW:
            raise ProtocolError(Cause.too_many_empty_records)
        idle = Idle(idle.key_updates, idle.warning_alerts, idle.empty_records + 1)
        return self._with(self.read_secret, self.write_secret, idle)

    def after_application_data(self) -> Self:
        """Application data arrived: the counts start again."""
        if self.idle is QUIET:
            return self
        return self._with(self.read_secret, self.write_secret, QUIET)

    def after_read_closed(self) -> Self:
        """The peer's close_notify (§6.1) or end of stream: its secret goes."""
        return self._with(None, self.write_secret, self.idle)

    def after_write_closed(self) -> Self:
        """Our close_notify is out (§6.1): our secret goes."""
        return self._with(self.read_secret, None, self.idle)

    def after_failure(self) -> Self:
        """The connection failed: both secrets go."""
        return self._with(None, None, self.idle)


@value
class ServerEstablished(Established):
    """The server's name for `Established` (traces show it)."""


@value
class ClientEstablished(Established):
    """The client's name for `Established` (traces show it)."""


__all__ = [
    "MAX_EMPTY_RECORDS_IN_A_ROW",
    "MAX_KEY_UPDATES_IN_A_ROW",
    "MAX_WARNING_ALERTS_IN_A_ROW",
    "QUIET",
    "ClientEstablished",
    "Established",
    "Idle",
    "ServerEstablished",
]
