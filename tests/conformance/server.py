"""A loopback TLS server built from our engine, for tlsfuzzer to probe.

It uses only the engine's public connection API (receive_data, data_to_send,
send_application_data, close and the four events), so that it tests what a
real caller sees. It behaves as the HTTP servers tlsfuzzer is written
against (`openssl s_server -www`): each complete HTTP request (ending in
a blank line) is answered with a short HTTP response (after a KeyUpdate
asking for the peer's when the path is `/keyupdate`), close_notify is
answered with close_notify, and a failed connection is closed after the
engine's alert went out. In echo mode (`test-tls13-lengths` expects it)
each application-data record is sent back as it came instead.

Every connection has an idle deadline, a bounded request buffer, and the
listener a bounded number of connection threads, so a stuck script cannot
hang the step.
"""

from __future__ import annotations

import re
import socket
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from bait_ca.ca import CertificateAuthority
from bait_ca.issued import Issued
from pinata.tls.config import Credentials, ServerConfig
from pinata.tls.connection import ServerConnection
from pinata.tls.events import (
    ApplicationData,
    ConnectionFailed,
    HandshakeComplete,
    LocalFailure,
    PeerClosed,
)
from pinata.x509 import Purpose, TrustAnchor, authenticator

RESPONSE = (
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\n"
    b"pinata conformance"
)
IDLE_SECONDS = 15.0
MAX_REQUEST_BUFFER = 64 * 1024
MAX_CONNECTIONS = 64
LINGER_SECONDS = 1.0
LINGER_READS = 64
# The blank line that ends a request: CRLF as HTTP says, or bare LF, which
# most of tlsfuzzer's TLS 1.2 scripts send ("GET / HTTP/1.0\n\n") and
# `openssl s_server -www` answers as well.
_END_OF_REQUEST = re.compile(rb"\r?\n\r?\n")
# test-tls13-keyupdate-from-server asks for a KeyUpdate (update_requested) this way.
_KEY_UPDATE_REQUEST = b"GET /keyupdate "


@dataclass(frozen=True)
class ConformancePki:
    """A throwaway CA, the servers' leaves and the clients' leaves under it."""

    authority: CertificateAuthority
    servers: dict[str, Issued]
    clients: dict[str, Issued]


def make_pki(now: datetime) -> ConformancePki:
    """Mint a CA, server leaves (RSA-2048, ECDSA P-256 and P-384, Ed25519) and
    client leaves (RSA-2048, ECDSA P-256, Ed25519).

    Takes the moment the certificates start; returns them in memory. The CA
    is P-256: what it signs with does not change what the leaves sign with.
    """
    authority = CertificateAuthority.create(
        not_before=now - timedelta(days=1), not_after=now + timedelta(days=30),
        name="Pinata Conformance CA",
    )
    servers = {
        kind: authority.issue("server", f"conformance {kind} server",
                              hosts=("localhost", "127.0.0.1"), key_type=key_type)
        for kind, key_type in (("rsa", "rsa2048"), ("ecdsa", "p256"), ("ecdsa384", "p384"),
                               ("ed25519", "ed25519"))
    }
    clients = {
        kind: authority.issue("client", f"conformance {kind} client", key_type=key_type)
        for kind, key_type in (("rsa", "rsa2048"), ("ecdsa", "p256"), ("ed25519", "ed25519"))
    }
    return ConformancePki(authority, servers, clients)


def write_client_files(pki: ConformancePki, directory: Path) -> dict[str, tuple[Path, Path]]:
    """Write each client leaf as PEM (key, certificate) for the scripts' -k and -c."""
    paths: dict[str, tuple[Path, Path]] = {}
    for kind, issued in pki.clients.items():
        key_path, cert_path = directory / f"client-{kind}.key", directory / f"client-{kind}.pem"
        key_path.write_bytes(issued.key_pem)
        cert_path.write_bytes(issued.pem)
        paths[kind] = (key_path, cert_path)
    return paths


def server_config(pki: ConformancePki, key: str, client_auth: bool) -> ServerConfig:
    """The engine's server configuration for one key kind, with or without
    requiring a client certificate (validated by `pinata.x509`), speaking
    the engine's default versions (TLS 1.3 and 1.2)."""
    leaf = pki.servers[key]
    credentials = Credentials((leaf.der,), leaf.private_key)
    if not client_auth:
        return ServerConfig(credentials=credentials)
    anchor_der = pki.authority.certificate.public_bytes(Encoding.DER)
    return ServerConfig(
        credentials=credentials,
        authenticate_client=authenticator(TrustAnchor.from_der(anchor_der), Purpose.CLIENT_AUTH),
        certificate_authorities=(pki.authority.certificate.subject.public_bytes(),),
    )


def serve_connection(sock: socket.socket, config: ServerConfig, echo: bool = False,
                     refusals: list[str] | None = None) -> None:
    """Run one connection to its end: the peer's close, a failure or the idle
    deadline. The cause of each refusal of ours is appended to `refusals`,
    so that a script's alert can be told apart by its cause (many causes
    share handshake_failure)."""
    conn = ServerConnection(config, now=datetime.now(UTC))
    request = bytearray()
    established = False
    sock.settimeout(IDLE_SECONDS)
    try:
        while True:
            data = sock.recv(65536)
            done = not data
            for event in conn.receive_data(data):
                if isinstance(event, HandshakeComplete):
                    established = True
                elif isinstance(event, ApplicationData) and established and echo:
                    conn.send_application_data(event.data)
                elif isinstance(event, ApplicationData) and established:
                    request += event.data
                    if _END_OF_REQUEST.search(request):
                        if request.startswith(_KEY_UPDATE_REQUEST):
                            conn.update_keys(request_peer_update=True)
                        conn.send_application_data(RESPONSE)
                        request.clear()
                    del request[:-MAX_REQUEST_BUFFER]
                elif isinstance(event, PeerClosed):
                    conn.close()
                    done = True
                elif isinstance(event, ConnectionFailed):
                    if refusals is not None and isinstance(event.failure, LocalFailure):
                        refusals.append(event.failure.cause.name)
                    done = True
            sock.sendall(conn.data_to_send())
            if done:
                return
    except OSError:
        return  # reset by the peer or idle too long: nothing left to say
    finally:
        _linger_and_close(sock)


def _linger_and_close(sock: socket.socket) -> None:
    """Close our side, then read (and drop) what the peer still sends for a
    moment: closing with unread data makes the kernel send a reset, which
    can destroy our last alert before the peer reads it."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(LINGER_SECONDS)
        for _ in range(LINGER_READS):
            if not sock.recv(65536):
                break
    except OSError:
        pass
    finally:
        sock.close()


class _Listener:
    def __init__(self, config: ServerConfig, host: str, echo: bool, crashes: list[str],
                 refusals: list[str] | None) -> None:
        self.config = config
        self.echo = echo
        self.crashes = crashes
        self.refusals = refusals
        self.sock = socket.create_server((host, 0))
        self.port: int = self.sock.getsockname()[1]
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return  # the listener was closed
            self.slots.acquire()
            threading.Thread(target=self._run, args=(client,), daemon=True).start()

    def _run(self, client: socket.socket) -> None:
        try:
            serve_connection(client, self.config, self.echo, self.refusals)
        except Exception:  # the engine must never raise: a crash is a finding
            self.crashes.append(traceback.format_exc())
        finally:
            self.slots.release()


@contextmanager
def running_server(config: ServerConfig, host: str = "127.0.0.1", echo: bool = False,
                   crashes: list[str] | None = None,
                   refusals: list[str] | None = None) -> Iterator[int]:
    """Serve `config` on an ephemeral loopback port; yields the port. An
    exception out of a connection is appended to `crashes`, the cause of
    each connection we refused to `refusals` (each if given)."""
    listener = _Listener(config, host, echo, crashes if crashes is not None else [], refusals)
    listener.thread.start()
    try:
        yield listener.port
    finally:
        listener.sock.close()

