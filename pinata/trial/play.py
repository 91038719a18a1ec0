"""Playing one port of the piñata with our engine, as an attacker would.

The attacker has nothing to protect, so the piñata's own chain is taken as
sent (its subjects are shown, not judged). Everything is bounded: one
connection, a deadline for the whole attempt, and at most `MAX_RECEIVED`
bytes of application data kept.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import trio
from cryptography import x509

from pinata.appliance.tls_stream import Engine, TLSFailed, TLSStream
from pinata.appliance.transport import SocketTransport, connect
from pinata.tls.config import (
    DEFAULT_VERSIONS,
    ClientConfig,
    Credentials,
    PeerRejected,
    ServerConfig,
    VerifiedPeer,
    spki_is_rsassa_pss,
)
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import version_name
from pinata.tls.errors import AlertDescription, alert_name

# The canonical port of each bounty listener, before any offset.
PORT_ROLES = {10000: "tls_server", 10001: "connect_back", 10002: "tls_client"}
CONNECT_BACK_PORT = 40001
MAX_RECEIVED = 1 << 16
READ_SIZE = 1 << 14


def accept_any_chain(certificates: Sequence[bytes], now: datetime) -> VerifiedPeer | PeerRejected:
    """The attacker's judgement of the piñata's chain: any parsable leaf will do."""
    try:
        leaf = x509.load_der_x509_certificate(certificates[0])
        subjects = tuple(x509.load_der_x509_certificate(c).subject.rfc4514_string()
                         for c in certificates)
    except (IndexError, ValueError):
        return PeerRejected(AlertDescription.bad_certificate, "unreadable peer certificate")
    return VerifiedPeer(chain=tuple(certificates), leaf_public_key=leaf.public_key(),
                        subjects=subjects,
                        leaf_key_is_rsassa_pss=spki_is_rsassa_pss(certificates[0]))


@dataclass(frozen=True)
class Trial:
    """One attempt: which port, where, and what we present."""

    port: int  # 10000, 10001 or 10002
    host: str
    port_offset: int
    credentials: Credentials
    timeout: float = 20.0
    # Where we wait for the connect-back (10001); None: the canonical 40001 + offset.
    listen_port: int | None = None
    # The TLS versions our side offers (client) or accepts (server), highest first.
    versions: tuple[int, ...] = DEFAULT_VERSIONS

    @property
    def role(self) -> str:
        """The listener's name: tls_server, connect_back or tls_client."""
        return PORT_ROLES[self.port]

    @property
    def target_port(self) -> int:
        """Where the listener is: the canonical port plus the offset."""
        return self.port + self.port_offset


@dataclass
class TrialResult:
    """What happened, from our side of the connection."""

    outcome: str = "no connection"
    alert: str | None = None
    alert_sent_by: str | None = None  # "us" or "the piñata"
    reason: str | None = None
    received: bytes = field(default=b"", repr=False)
    trace: list[dict[str, object]] = field(default_factory=list)
    # Our source port on the connection the piñata logs (the knock, for 10001).
    source_port: int | None = None
    peer_subjects: tuple[str, ...] = ()
    cipher_suite: str | None = None
    # The negotiated protocol version's name ("TLS 1.2"), once the handshake completed.
    version: str | None = None

    @property
    def secret_received(self) -> bool:
        """Whether the piñata sent application data after a completed handshake."""
        return self.outcome == "secret received"


@dataclass
class Attempt:
    """One trial being played, and what it has found so far."""

    trial: Trial
    result: TrialResult = field(default_factory=TrialResult)

    def engine(self, stream_role: str) -> Engine:
        """A fresh engine for our side: "client" presents on request, "server" always."""
        now = datetime.now(UTC)
        if stream_role == "client":
            config = ClientConfig(authenticate_server=accept_any_chain,
                                  credentials=self.trial.credentials,
                                  versions=self.trial.versions)
            return ClientConnection(config, random=os.urandom, now=now)
        return ServerConnection(ServerConfig(credentials=self.trial.credentials,
                                             versions=self.trial.versions),
                                random=os.urandom, now=now)

    async def converse(self, transport: trio.abc.Stream, stream_role: str) -> None:
        """The handshake and then everything the piñata sends, into the result."""
        engine = self.engine(stream_role)
        tls = TLSStream(transport, engine)
        result = self.result
        try:
            done = await tls.do_handshake()
            result.outcome = "handshake completed, nothing received"
            if done.peer is not None:
                result.peer_subjects = done.peer.subjects
            result.cipher_suite = done.cipher_suite.name
            result.version = version_name(done.version)
            while len(result.received) < MAX_RECEIVED:
                chunk = await tls.receive_some(READ_SIZE)
                if not chunk:
                    break
                result.received += chunk
                result.outcome = "secret received"
        except TLSFailed as exc:
            self._failed(exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            result.outcome, result.reason = "connection lost", type(exc).__name__
        finally:
            result.trace = [dict(entry.to_json()) for entry in engine.trace.entries]
            await tls.aclose()

    def _failed(self, exc: TLSFailed) -> None:
        failure, result = exc.failure, self.result
        result.reason = failure.reason
        if failure.alert is None:
            result.outcome = "closed by the piñata"
            return
        result.alert = alert_name(int(failure.alert))
        result.alert_sent_by = "us" if failure.sent else "the piñata"
        result.outcome = "alert sent" if failure.sent else "refused with an alert"


def _source_port(stream: SocketTransport) -> int:
    port: int = stream.socket.getsockname()[1]
    return port


async def _direct(attempt: Attempt, stream_role: str) -> None:
    trial = attempt.trial
    stream = await connect(trial.host, trial.target_port)
    attempt.result.source_port = _source_port(stream)
    await attempt.converse(stream, stream_role)


def _listen_host(host: str, family: int) -> str:
    """Where to wait for the connect-back: loopback when the piñata is local, else anywhere
    (the piñata dials the address it saw, which we cannot know before knocking)."""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    return "::" if family == socket.AF_INET6 else "0.0.0.0"


async def _connect_back(attempt: Attempt) -> None:
    """Listen first (the piñata dials at once), knock, then serve one TLS connection."""
    trial = attempt.trial
    family = socket.AF_INET6 if ":" in trial.host else socket.AF_INET
    listen_port = trial.listen_port or CONNECT_BACK_PORT + trial.port_offset
    listeners = await trio.open_tcp_listeners(listen_port, host=_listen_host(trial.host, family))
    try:
        knock = await connect(trial.host, trial.target_port)
        attempt.result.source_port = _source_port(knock)
        await trio.aclose_forcefully(knock)
        attempt.result.outcome = "no connect-back"
        inbound = await listeners[0].accept()
    finally:
        for listener in listeners:
            await listener.aclose()
    await attempt.converse(inbound, "server")


async def _run(attempt: Attempt) -> None:
    trial = attempt.trial
    with trio.move_on_after(trial.timeout) as deadline:
        if trial.role == "connect_back":
            await _connect_back(attempt)
        else:
            await _direct(attempt, "client" if trial.role == "tls_server" else "server")
    if deadline.cancelled_caught:
        result = attempt.result
        result.reason = f"no answer within {trial.timeout:g} s"
        if result.outcome in ("no connection", "no connect-back"):
            return
        result.outcome = "timeout"


def play(trial: Trial) -> TrialResult:
    """Run one attempt to the end (blocking); OSError if the port cannot be reached."""
    attempt = Attempt(trial)
    trio.run(_run, attempt)
    return attempt.result
