"""Benchmark clients, run in their own worker processes: Python's ssl (the
client for every server compared) and our own engine over a blocking socket
(for X25519MLKEM768, which this Python's OpenSSL does not offer).

A client worker reads one JSON command per line on stdin and answers one
JSON line: `{"op": "hello", "port": P, "n": N}` runs N fresh connections
(handshake, one request, its reply, close; never a resumption);
`{"op": "secret", "port": P, "n": N}` runs N connections that only read
what the server sends unasked (the appliance's port 10000);
`{"op": "bulk", "port": P, "bytes": B}` reads B bytes on one connection.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from pinata.bench import wire
from pinata.bench.creds import SERVER_NAME, read_pki
from pinata.tls.config import ClientConfig
from pinata.tls.connection import ClientConnection
from pinata.tls.constants import NamedGroup
from pinata.tls.events import ApplicationData, ConnectionFailed, HandshakeComplete, PeerClosed
from pinata.x509 import Purpose, TrustAnchor, authenticator

READ_BUFFER = 1 << 20


class BenchClientError(Exception):
    pass


def _connect(port: int) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=wire.IO_TIMEOUT)
    # The client's flight must not wait on Nagle; trio does the same for servers.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return raw


# The TLS 1.2 suites the TLS 1.2 clients offer: ECDHE with AES-128-GCM, as
# in TLS 1.3 (RFC 5289 §3.2); the bench's ECDSA certificates select the first.
TLS12_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"


def ssl_client_context(pki_dir: Path, *, tls12: bool = False) -> ssl.SSLContext:
    """Python's ssl as the bench's client: TLS 1.3, or with `tls12` TLS 1.2 only
    (`maximum_version`), each with the client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls12:
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(TLS12_CIPHERS)
    else:
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(pki_dir / "anchor.pem")
    context.load_cert_chain(pki_dir / "client.pem", pki_dir / "client.key")
    context.options |= ssl.OP_NO_TICKET
    return context


class SSLClient:
    def __init__(self, pki_dir: Path, *, tls12: bool = False) -> None:
        self.context = ssl_client_context(pki_dir, tls12=tls12)

    def hello(self, port: int) -> str:
        with _connect(port) as raw, self.context.wrap_socket(
            raw, server_hostname=SERVER_NAME
        ) as tls:
            tls.sendall(wire.HELLO + b"\n")
            reply = _read_reply(tls.recv)
            if reply != wire.HELLO_REPLY:
                raise BenchClientError(f"unexpected reply {reply[:20]!r}")
            return str(tls.cipher()[0])  # type: ignore[index]

    def secret(self, port: int) -> str:
        """Handshake, then read what the server sends until it closes (the
        appliance's port 10000 sends its secret unasked)."""
        with _connect(port) as raw, self.context.wrap_socket(
            raw, server_hostname=SERVER_NAME
        ) as tls:
            received = b""
            while chunk := tls.recv(wire.MAX_REQUEST):
                received += chunk
                if len(received) > READ_BUFFER:
                    raise BenchClientError("the server sends without end")
            if not received:
                raise BenchClientError("nothing received")
            return str(tls.cipher()[0])  # type: ignore[index]

    def bulk(self, port: int, size: int) -> str:
        buffer = memoryview(bytearray(READ_BUFFER))
        with _connect(port) as raw, self.context.wrap_socket(
            raw, server_hostname=SERVER_NAME
        ) as tls:
            tls.sendall(wire.bulk_request(size))
            received = 0
            while received < size:
                n = tls.recv_into(buffer)
                if not n:
                    raise BenchClientError(f"EOF after {received} of {size} bytes")
                received += n
            return str(tls.cipher()[0])  # type: ignore[index]


def _read_reply(receive: Callable[[int], bytes]) -> bytes:
    reply = bytearray()
    while b"\n" not in reply and len(reply) <= wire.MAX_REQUEST:
        chunk = receive(wire.MAX_REQUEST)
        if not chunk:
            break
        reply += chunk
    return bytes(reply).partition(b"\n")[0]


class PlainClient:
    """No TLS: the same request and reply over bare TCP (the shell's floor)."""

    def hello(self, port: int) -> str:
        with _connect(port) as raw:
            raw.sendall(wire.HELLO + b"\n")
            if _read_reply(raw.recv) != wire.HELLO_REPLY:
                raise BenchClientError("unexpected reply")
        return "no TLS"


class OurClient:
    """Our ClientConnection over a blocking socket: the smallest possible shell."""

    def __init__(self, pki_dir: Path, group: NamedGroup) -> None:
        pki = read_pki(pki_dir)
        anchor = TrustAnchor.from_der(pki.anchor_der)
        self.config = ClientConfig(
            authenticate_server=authenticator(anchor, Purpose.SERVER_AUTH, SERVER_NAME),
            credentials=pki.client,
            server_name=SERVER_NAME,
            groups=(group,),
            key_share_groups=(group,),
        )

    def hello(self, port: int) -> str:
        engine = ClientConnection(self.config, now=datetime.now(UTC))
        done: HandshakeComplete | None = None
        reply = bytearray()
        ended = False
        with _connect(port) as raw:
            raw.sendall(engine.data_to_send())
            while b"\n" not in reply:
                data = raw.recv(65536)
                for event in engine.receive_data(data):
                    if isinstance(event, HandshakeComplete):
                        done = event
                        engine.send_application_data(wire.HELLO + b"\n")
                    elif isinstance(event, ApplicationData):
                        reply += event.data
                    elif isinstance(event, ConnectionFailed):
                        raise BenchClientError(f"connection failed: {event.reason}")
                    elif isinstance(event, PeerClosed):
                        ended = True
                out = engine.data_to_send()
                if out and not ended:
                    raw.sendall(out)
                if b"\n" not in reply and (ended or not data or len(reply) > wire.MAX_REQUEST):
                    raise BenchClientError("no reply")
            if not engine.closed:
                engine.close()
                raw.sendall(engine.data_to_send())
        if done is None or bytes(reply).partition(b"\n")[0] != wire.HELLO_REPLY:
            raise BenchClientError("unexpected reply")
        return f"{done.cipher_suite.name} {done.group.name}"


def _run(op: Callable[[], str], count: int) -> dict[str, object]:
    ok, failed, detail, first_error = 0, 0, "", ""
    started = time.perf_counter()
    for _ in range(count):
        try:
            detail = op()
            ok += 1
        except (OSError, ssl.SSLError, BenchClientError) as exc:
            failed += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
    return {"ok": ok, "failed": failed, "wall": time.perf_counter() - started,
            "detail": detail, "first_error": first_error}


def serve_commands(client: SSLClient | OurClient | PlainClient) -> None:
    """Answer commands from stdin until it closes or says quit."""
    wire.announce({"ready": True})
    for line in sys.stdin:
        command = json.loads(line)
        op, port = command.get("op"), int(command.get("port", 0))
        if op == "hello":
            wire.announce(_run(partial(client.hello, port), int(command["n"])))
        elif op == "secret" and isinstance(client, SSLClient):
            wire.announce(_run(partial(client.secret, port), int(command["n"])))
        elif op == "bulk" and isinstance(client, SSLClient):
            wire.announce(_run(partial(client.bulk, port, int(command["bytes"])), 1))
        else:
            return
