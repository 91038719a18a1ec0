"""What a connection reports after it is fed bytes (h11's events, for TLS)."""

from __future__ import annotations

from dataclasses import dataclass

from pinata.tls.config import VerifiedPeer
from pinata.tls.constants import CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.errors import AlertDescription


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class ApplicationData:
    data: bytes

    def __repr__(self) -> str:  # application data may be a secret
        return f"ApplicationData(<{len(self.data)} bytes>)"


@dataclass(frozen=True)
class PeerClosed:
    """The peer ended its side: `clean` when by close_notify, not by a bare EOF."""

    clean: bool


@dataclass(frozen=True)
class ConnectionFailed:
    """The connection is dead. `sent`: we sent `alert`; otherwise the peer did
    (or, for a bare EOF mid-handshake, nobody did and `alert` is None)."""

    alert: AlertDescription | int | None
    sent: bool
    reason: str


Event = HandshakeComplete | ApplicationData | PeerClosed | ConnectionFailed
