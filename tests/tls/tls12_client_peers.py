"""A TLS 1.2 server for the client-role tests: Python's `ssl` (OpenSSL) on
memory BIOs, in this thread, so a test moves every byte by hand and can
rewrite the server's first flight (which TLS 1.2 sends in the clear,
RFC 5246 §7.3) before our client sees it.

Nothing here is a TLS implementation of its own: the rewriting cuts the
server's clear-text records into handshake messages by their length
prefixes, hands each to the test (which parses and re-encodes it with the
engine's own codecs), and frames the result again.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

from pinata.tls.connection import ClientConnection
from pinata.tls.constants import ContentType
from pinata.tls.events import ApplicationData, ConnectionFailed, Event, LocalFailure, PeerClosed
from tests.tls.peers import cert_pem, key_pem, leaf, test_ca

# Rewrites one handshake message (type, whole message with its header) of the
# server's clear-text flight; returns the bytes to send instead.
MessageRewrite = Callable[[int, bytes], bytes]

# OpenSSL's names for the six suites (RFC 5289, RFC 7905).
OPENSSL_SUITE_NAMES = {
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
    0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305",
}
OPENSSL_GROUP_NAMES = {0x001D: "X25519", 0x0017: "prime256v1", 0x0018: "secp384r1"}


def write_server_files(directory: Path, kind: str) -> tuple[Path, Path, Path]:
    """(CA, server certificate, server key) as PEM files for `ssl` and openssl."""
    credentials, _ = leaf("server", kind)
    ca = directory / "ca.pem"
    cert = directory / f"server-{kind}.pem"
    key = directory / f"server-{kind}.key"
    ca.write_bytes(test_ca().pem)
    cert.write_bytes(cert_pem(credentials))
    key.write_bytes(key_pem(credentials))
    return ca, cert, key


def server_context(
    directory: Path,
    kind: str = "p256",
    *,
    suite: int | None = None,
    group: int | None = None,
    client_auth: bool = False,
    allow_tls13: bool = False,
) -> ssl.SSLContext:
    """An `ssl` server speaking TLS 1.2 (and 1.3 only with `allow_tls13`)."""
    ca, cert, key = write_server_files(directory, kind)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not allow_tls13:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    if suite is not None:
        context.set_ciphers(OPENSSL_SUITE_NAMES[suite])
    if group is not None:
        context.set_ecdh_curve(OPENSSL_GROUP_NAMES[group])
    if client_auth:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(ca))
    return context


class MemoryServer:
    """One `ssl` server connection on memory BIOs."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.handshake_done = False
        self.error: ssl.SSLError | None = None
        self.received = b""
        self.closed_by_peer = False
        self.shutting_down = False

    def feed(self, data: bytes) -> None:
        """Give the server bytes from our client and let it act on them."""
        if data:
            self.incoming.write(data)
        if self.error is not None:
            return
        if self.shutting_down:
            self._finish_shutdown()
            return
        try:
            if not self.handshake_done:
                self.tls.do_handshake()
                self.handshake_done = True
            while True:
                chunk = self.tls.read(65536)
                if not chunk:
                    self.closed_by_peer = True
                    return
                self.received += chunk
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except ssl.SSLZeroReturnError:
            self.closed_by_peer = True
        except ssl.SSLError as error:
            self.error = error

    def close(self) -> None:
        """Send close_notify (RFC 5246 §7.2.1); the peer's completes the shutdown."""
        self.shutting_down = True
        self._finish_shutdown()

    def _finish_shutdown(self) -> None:
        try:
            self.tls.unwrap()
            self.closed_by_peer = True
        except ssl.SSLWantReadError:
            return
        except ssl.SSLError as error:
            self.error = error

    def take(self) -> bytes:
        return self.outgoing.read()


def split_records(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(content type, header, fragment) of each whole record in `data`."""
    records = []
    pos = 0
    while pos + 5 <= len(data):
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        header = data[pos : pos + 5]
        records.append((data[pos], header, data[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    assert pos == len(data), "a record was cut short"
    return records


def rewrite_clear_flight(data: bytes, rewrite: MessageRewrite) -> bytes:
    """The server's bytes with each clear-text handshake message rewritten.

    Only the handshake records before the first change_cipher_spec are
    touched; the rest passes as it came. The rewritten messages are framed
    again into one record (they fit: a test flight is a few kilobytes).
    """
    out: list[bytes] = []
    messages = bytearray()
    clear = True
    version = b"\x03\x03"
    for content_type, header, fragment in split_records(data):
        if clear and content_type == ContentType.handshake:
            messages += fragment
            version = header[1:3]
            continue
        clear = clear and content_type != ContentType.change_cipher_spec
        out.append(header + fragment)
    if not messages:
        return data
    rewritten = bytearray()
    pos = 0
    while pos < len(messages):
        length = int.from_bytes(messages[pos + 1 : pos + 4], "big")
        whole = bytes(messages[pos : pos + 4 + length])
        rewritten += rewrite(whole[0], whole)
        pos += 4 + length
    first = bytes((ContentType.handshake,)) + version + len(rewritten).to_bytes(2, "big")
    return first + bytes(rewritten) + b"".join(out)


def replace_message(message_type: int, change: Callable[[bytes], bytes]) -> MessageRewrite:
    """A rewrite that changes only messages of `message_type`."""

    def rewrite(kind: int, whole: bytes) -> bytes:
        return change(whole) if kind == message_type else whole

    return rewrite


def pump(
    client: ClientConnection,
    server: MemoryServer,
    *,
    to_client: Callable[[bytes], bytes] = lambda b: b,
    to_server: Callable[[bytes], bytes] = lambda b: b,
    send: bytes = b"",
    reply: bytes = b"",
    rounds: int = 20,
) -> list[Event]:
    """Move bytes both ways until neither side has anything to say (bounded).

    Once our client completes, it sends `send`; once the server has read it,
    the server answers `reply` and closes; our client closes in turn.
    """
    events: list[Event] = []
    sent = replied = False
    for _ in range(rounds):
        moved = False
        data = client.data_to_send()
        if data:
            moved = True
            server.feed(to_server(data))
        if server.handshake_done and send and server.received == send and not replied:
            replied = True
            server.tls.write(reply)
            server.close()
        data = server.take()
        if data:
            moved = True
            new = client.receive_data(to_client(data))
            events += new
            if any(isinstance(e, PeerClosed) for e in new):
                client.close()
            if any(isinstance(e, ConnectionFailed) for e in new):
                server.feed(client.data_to_send())
                break
        if client.handshake_complete and send and not sent:
            sent = True
            client.send_application_data(send)
        if not moved:
            break
    return events


def received(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, ApplicationData))


def refused(
    client: ClientConnection,
    server: MemoryServer,
    to_client: Callable[[bytes], bytes],
    to_server: Callable[[bytes], bytes] = lambda b: b,
) -> LocalFailure:
    """Our client's one failure when the server's bytes pass `to_client`
    (and ours `to_server`); the server must have received our alert (OpenSSL
    names it in its error)."""
    events = pump(client, server, to_client=to_client, to_server=to_server)
    failures = [e for e in events if isinstance(e, ConnectionFailed)]
    assert len(failures) == 1, events
    failure = failures[0].failure
    assert isinstance(failure, LocalFailure), failure
    assert client.closed
    assert server.error is not None
    assert failure.alert.name.upper() in str(server.error).upper().replace(" ", "_")
    return failure
