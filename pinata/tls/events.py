"""What a connection reports after it is fed bytes (h11's events, for TLS)."""

from __future__ import annotations

from pinata.tls.config import VerifiedPeer
from pinata.tls.constants import CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.errors import AlertDescription, Cause, alert_for, alert_name
from pinata.tls.values import value


@value
class HandshakeComplete:
    """Both Finished messages verified; application data may flow both ways."""

    version: int
    cipher_suite: CipherSuite
    group: NamedGroup
    # The scheme we signed our CertificateVerify with (None: we sent none).
    signature_scheme: SignatureScheme | None
    # The scheme the peer signed with (None: the peer sent no certificate).
    peer_signature_scheme: SignatureScheme | None
    # The validated peer chain (None: the peer was not asked to authenticate).
    peer: VerifiedPeer | None


@value
class ApplicationData:
    data: bytes

    def __repr__(self) -> str:  # application data may be a secret
        return f"ApplicationData(<{len(self.data)} bytes>)"


@value
class PeerClosed:
    """The peer ended its side: `clean` when by close_notify, not by a bare EOF."""

    clean: bool


@value
class LocalFailure:
    """We found the fault, named by `cause`, and sent `alert` (from the one
    table in `pinata.tls.errors`). `detail` is a short note for logs."""

    cause: Cause
    detail: str = ""

    @property
    def alert(self) -> AlertDescription:
        alert = alert_for(self.cause)
        assert alert is not None  # a LocalFailure is built only for alerting causes
        return alert


@value
class PeerAlert:
    """The peer ended the connection with a fatal alert (RFC 8446 §6.2); an
    alert code outside the registry is kept as its number."""

    alert: AlertDescription | int


@value
class Ended:
    """The connection ended with no alert either way: `cause` says why (a
    bare EOF mid-handshake, a sequence number that would wrap, §5.3)."""

    cause: Cause


Failure = LocalFailure | PeerAlert | Ended


@value
class ConnectionFailed:
    """The connection is dead; `failure` says who ended it and why."""

    failure: Failure

    # Read-only views of `failure`, for callers that only log.
    @property
    def alert(self) -> AlertDescription | int | None:
        """The alert that crossed the wire, whoever sent it (None: none did)."""
        return None if isinstance(self.failure, Ended) else self.failure.alert

    @property
    def sent(self) -> bool:
        """Whether we sent the alert."""
        return isinstance(self.failure, LocalFailure)

    @property
    def cause(self) -> Cause | None:
        """Our cause, when the failure was ours to name (None: the peer's alert)."""
        return None if isinstance(self.failure, PeerAlert) else self.failure.cause

    @property
    def reason(self) -> str:
        """One line for logs: the cause (or the peer's alert) and the detail."""
        failure = self.failure
        if isinstance(failure, PeerAlert):
            return f"peer sent {alert_name(failure.alert)}"
        if isinstance(failure, LocalFailure) and failure.detail:
            return f"{failure.cause}: {failure.detail}"
        return str(failure.cause)


Event = HandshakeComplete | ApplicationData | PeerClosed | ConnectionFailed
