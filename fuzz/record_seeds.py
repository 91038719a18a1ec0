"""Regenerate the seed corpus under fuzz/corpus/ from real handshakes.

`python -m fuzz.record_seeds` records, over socket pairs (no network):
our engine against itself, against OpenSSL (Python's `ssl`) and against
tlslite-ng, in both roles, with the fixture credentials; then writes for
each harness the inputs that replay those handshakes (the engine's
randomness is a counter seeded by the input, so a peer's recorded flight
decrypts again on replay). OpenSSL's and tlslite-ng's flights carry their
own randomness, so a regeneration changes those files; our engine's are
reproducible byte for byte. `python -m fuzz.record_seeds tls12` adds the
TLS 1.2 seeds alone, leaving the others as they are; `--only HARNESS...`
rewrites only those harnesses' seeds (then add the 1.2 ones again).
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from fuzz.harnesses import chains, fixtures
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.events import ConnectionFailed, HandshakeComplete
from pinata.tls.handshake.common import Output, SendMessage, whole_messages

CORPUS = Path(__file__).resolve().parent / "corpus"
TIMEOUT = 10.0


def _pem_files(directory: Path) -> dict[str, str]:
    """The fixture credentials and CA as PEM files, for the foreign peers."""
    ca_cert, _ = fixtures.ca()
    files: dict[str, str] = {}
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files["ca"] = str(directory / "ca.pem")
    for role in ("server", "client"):
        credentials = fixtures.credentials(role)
        from cryptography import x509

        cert = x509.load_der_x509_certificate(credentials.chain[0])
        (directory / f"{role}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{role}.key").write_bytes(
            credentials.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        files[f"{role}_cert"] = str(directory / f"{role}.pem")
        files[f"{role}_key"] = str(directory / f"{role}.key")
    return files


def _drive(sock: socket.socket, conn: ServerConnection | ClientConnection) -> bytes:
    """Runs our side over `sock`; returns every byte the peer sent."""
    received = bytearray()
    sock.settimeout(TIMEOUT)
    done = False
    while True:
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
        if conn.closed:
            break
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            data = b""
        received += data
        events = conn.receive_data(data)
        for event in events:
            if isinstance(event, HandshakeComplete) and not done:
                done = True
                conn.send_application_data(b"hello from pinata\n")
                conn.close()
            if isinstance(event, ConnectionFailed):
                print(f"    our side failed: {event.alert} {event.reason}")
        if not data:
            break
    out = conn.data_to_send()
    if out:
        with contextlib.suppress(OSError):
            sock.sendall(out)
    return bytes(received)


def _peer_thread(target: Callable[[socket.socket], None], sock: socket.socket) -> threading.Thread:
    def run() -> None:
        try:
            target(sock)
        except Exception as error:  # the peer's view is only for the log
            print(f"    peer: {type(error).__name__}: {error}")
        finally:
            sock.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _record(
    our: ServerConnection | ClientConnection, peer: Callable[[socket.socket], None]
) -> bytes:
    ours, theirs = socket.socketpair()
    thread = _peer_thread(peer, theirs)
    try:
        return _drive(ours, our)
    finally:
        ours.close()
        thread.join(TIMEOUT)


# ---- foreign peers ---------------------------------------------------------


def openssl_client(
    files: dict[str, str], version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
) -> Callable[[socket.socket], None]:
    def run(sock: socket.socket) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = context.maximum_version = version
        context.check_hostname = False
        context.load_verify_locations(files["ca"])
        context.load_cert_chain(files["client_cert"], files["client_key"])
        with context.wrap_socket(sock, server_hostname="pinata.example") as tls:
            tls.settimeout(TIMEOUT)
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
            tls.recv(1024)

    return run


def openssl_server(
    files: dict[str, str], version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
) -> Callable[[socket.socket], None]:
    def run(sock: socket.socket) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = context.maximum_version = version
        context.load_cert_chain(files["server_cert"], files["server_key"])
        context.load_verify_locations(files["ca"])
        context.verify_mode = ssl.CERT_REQUIRED
        context.num_tickets = 1
        with context.wrap_socket(sock, server_side=True) as tls:
            tls.settimeout(TIMEOUT)
            tls.sendall(b"hello from openssl\n")
            tls.recv(1024)

    return run


def _tlslite_credentials(files: dict[str, str], role: str) -> tuple[Any, Any]:
    from tlslite import X509CertChain, parsePEMKey  # type: ignore[import-untyped]

    chain = X509CertChain()
    chain.parsePemList(Path(files[f"{role}_cert"]).read_text())
    key = parsePEMKey(Path(files[f"{role}_key"]).read_text(), private=True)
    return chain, key


def tlslite_client(files: dict[str, str]) -> Callable[[socket.socket], None]:
    def run(sock: socket.socket) -> None:
        from tlslite import HandshakeSettings, TLSConnection

        settings = HandshakeSettings()
        settings.minVersion = (3, 4)
        settings.maxVersion = (3, 4)
        # tlslite-ng 0.8.2 compresses its client Certificate (RFC 8879) when
        # its own ClientHello offered compress_certificate, though only the
        # server's CertificateRequest may ask for that; we refuse type 25.
        settings.certificate_compression_send = []
        chain, key = _tlslite_credentials(files, "client")
        tls = TLSConnection(sock)
        tls.handshakeClientCert(chain, key, settings=settings)
        tls.write(b"hello from tlslite-ng\n")
        tls.read(max=1024)
        tls.close()

    return run


def tlslite_server(files: dict[str, str]) -> Callable[[socket.socket], None]:
    def run(sock: socket.socket) -> None:
        from tlslite import HandshakeSettings, TLSConnection

        settings = HandshakeSettings()
        settings.minVersion = (3, 4)
        settings.maxVersion = (3, 4)
        chain, key = _tlslite_credentials(files, "server")
        tls = TLSConnection(sock)
        tls.handshakeServer(certChain=chain, privateKey=key, reqCert=True, settings=settings)
        tls.write(b"hello from tlslite-ng\n")
        tls.read(max=1024)
        tls.close()

    return run


# ---- our engine against itself, with every handshake message captured --------


class _Capture:
    messages: list[bytes]

    def _apply(self, outputs: list[Output], events: list[Any]) -> bool:
        for o in outputs:
            if isinstance(o, SendMessage):
                self.messages += whole_messages(o.data)
        result: bool = super()._apply(outputs, events)  # type: ignore[misc]
        return result


class _CaptureClient(_Capture, ClientConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.messages = []
        super().__init__(*args, **kwargs)


class _CaptureServer(_Capture, ServerConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.messages = []
        super().__init__(*args, **kwargs)


def self_pair(
    client_choice: int, server_choice: int, seed: int
) -> tuple[bytes, bytes, list[bytes]]:
    """(client's stream, server's stream, every handshake message) of one handshake."""
    client = _CaptureClient(
        fixtures.client_config(client_choice), random=fixtures.counter_random(seed),
        now=fixtures.NOW,
    )
    server = _CaptureServer(
        fixtures.server_config(server_choice), random=fixtures.counter_random(seed),
        now=fixtures.NOW,
    )
    to_server, to_client = bytearray(), bytearray()
    for _ in range(6):
        data = client.data_to_send()
        to_server += data
        server_events = server.receive_data(data) if data else []
        if any(isinstance(e, HandshakeComplete) for e in server_events):
            server.send_application_data(b"hello from pinata\n")
        data = server.data_to_send()
        to_client += data
        if data:
            client.receive_data(data)
    return bytes(to_server), bytes(to_client), client.messages + server.messages


# ---- writing -------------------------------------------------------------


# The harness directories a run rewrites (`--only NAME...`); empty: all.
_ONLY: set[str] = set()


def _write(harness: str, data: bytes, label: str) -> None:
    if _ONLY and harness not in _ONLY:
        return
    directory = CORPUS / harness
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()[:12]
    (directory / f"{label}-{digest}").write_bytes(data)


def _tls12_messages() -> list[bytes]:
    """TLS 1.2's own messages (RFC 5246 §7.4, RFC 8422 §5), built with the
    engine's codecs: what a 1.2 handshake sends besides the hellos,
    Certificate, CertificateVerify and Finished."""
    from pinata.tls.messages import (
        Certificate12,
        CertificateRequest12,
        ClientKeyExchange,
        HelloRequest,
        ServerHelloDone,
        ServerKeyExchange,
    )

    p256 = bytes.fromhex("04") + bytes(range(1, 65))
    x25519 = bytes(range(32))
    ca_name = fixtures.ca()[0].subject.public_bytes()
    return [
        ServerKeyExchange(3, 0x001D, x25519, 0x0807, bytes(64)).encode(),
        ServerKeyExchange(3, 0x0017, p256, 0x0403, bytes(72)).encode(),
        ServerHelloDone().encode(),
        HelloRequest().encode(),
        ClientKeyExchange(x25519).encode(),
        ClientKeyExchange(p256).encode(),
        CertificateRequest12((1, 64), (0x0403, 0x0804, 0x0807, 0x0401), (ca_name,)).encode(),
        Certificate12(fixtures.credentials("server").chain).encode(),
        Certificate12(()).encode(),
    ]


# (client choice, server choice) pairs of TLS 1.2 handshakes between our own
# two sides (fixtures.TLS12_ONLY = 64 on one side or both): each suite, both
# groups, with and without a client certificate, the toy credentials.
_TLS12_PAIRS = ((64, 0), (65, 1), (72, 0), (66, 1), (68, 0), (0, 64), (80, 0), (96, 32))


def _tls12_handshakes() -> list[bytes]:
    """Our engine against itself and OpenSSL over TLS 1.2; returns every
    handshake message seen, for the decoders."""
    messages: list[bytes] = []
    seed = 1
    for client_choice, server_choice in _TLS12_PAIRS:
        to_server, to_client, captured = self_pair(client_choice, server_choice, seed)
        messages += captured
        label = f"self12-{client_choice}-{server_choice}"
        _write("server_raw", bytes((server_choice, seed, 0)) + to_server, label)
        _write("client_raw", bytes((client_choice, seed, 0)) + to_client, label)
        _write("record", bytes((0, 0, 0)) + to_server, f"{label}-c2s")
        structured = bytes((client_choice, server_choice, seed, seed))
        _write("server_structured", structured, f"honest12-{client_choice}-{server_choice}")
        _write("client_structured", structured, f"honest12-{client_choice}-{server_choice}")
    with tempfile.TemporaryDirectory() as tmp:
        files = _pem_files(Path(tmp))
        seed = 3
        print("recording openssl over TLS 1.2")
        for choice in (0, 8):
            server = ServerConnection(fixtures.server_config(choice),
                                      random=fixtures.counter_random(seed), now=fixtures.NOW)
            stream = _record(server, openssl_client(files, ssl.TLSVersion.TLSv1_2))
            _write("server_raw", bytes((choice, seed, 0)) + stream, f"openssl12-client-{choice}")
            client = ClientConnection(fixtures.client_config(64 | choice),
                                      random=fixtures.counter_random(seed), now=fixtures.NOW)
            stream = _record(client, openssl_server(files, ssl.TLSVersion.TLSv1_2))
            _write("client_raw", bytes((64 | choice, seed, 0)) + stream,
                   f"openssl12-server-{64 | choice}")
    return messages


def tls12() -> None:
    """Add the TLS 1.2 seeds (without regenerating the others): our engine's
    1.2 handshakes with itself and OpenSSL for the engine harnesses, and for
    the decoders their messages, the 1.2 messages built by the codecs and
    the 1.2 extension bodies."""
    from fuzz.harnesses import decoders
    from pinata.tls import extensions as ext

    captured = _tls12_handshakes()
    for raw in [*_tls12_messages(), *captured]:
        if raw[0] not in decoders._MESSAGE_TYPES_TLS12:
            continue
        selector = decoders._MESSAGE_TYPES_TLS12.index(raw[0])
        _write("decoders", bytes((8, selector)) + raw[4:], f"message12-{raw[0]}")
    for body in (ext.ExtendedMasterSecret(), ext.RenegotiationInfo(),
                 ext.RenegotiationInfo(bytes(12)), ext.EcPointFormats((0,)),
                 ext.EcPointFormats((0, 1, 2))):
        selector = decoders._TYPED.index(type(body))
        _write("decoders", bytes((3, selector)) + body.encode(),
               f"extension-{body.extension_type}")


def main() -> None:
    if sys.argv[1:] == ["tls12"]:
        tls12()
        return
    if sys.argv[1:2] == ["--only"]:
        # Re-record some harnesses' seeds alone, e.g. the client_raw flights
        # after the client's ClientHello changed (a recorded server flight
        # answers one ClientHello, so it replays only against that one).
        _ONLY.update(sys.argv[2:])
    for directory in CORPUS.glob("*"):
        if _ONLY and directory.name not in _ONLY:
            continue
        for file in directory.glob("*"):
            file.unlink()
    messages: list[bytes] = []
    # Our engine against itself: client choices x server choices.
    # (32, 32): both sides on the toy credentials, chains judged by pinata.x509.
    for client_choice, server_choice in ((0, 0), (1, 1), (0, 8), (16, 0), (2, 0), (8, 0), (1, 0),
                                         (32, 32)):
        seed = 1
        to_server, to_client, captured = self_pair(client_choice, server_choice, seed)
        messages += captured
        header_s = bytes((server_choice, seed, 0))
        header_c = bytes((client_choice, seed, 0))
        _write("server_raw", header_s + to_server, f"self-{client_choice}-{server_choice}")
        _write("client_raw", header_c + to_client, f"self-{client_choice}-{server_choice}")
        _write("record", bytes((0, 0, 0)) + to_server, f"self-c2s-{client_choice}")
        _write("record", bytes((1, 0, 3)) + to_client, f"self-s2c-{client_choice}")
        structured = bytes((client_choice, server_choice, seed, seed))
        _write("server_structured", structured, f"honest-{client_choice}-{server_choice}")
        _write("client_structured", structured, f"honest-{client_choice}-{server_choice}")
    _write("record", bytes((2, 1, 0)) + bytes((22, 0, 0, 3)) + b"abc" + bytes((21, 0, 1, 2, 2, 0)),
           "sealed")

    with tempfile.TemporaryDirectory() as tmp:
        files = _pem_files(Path(tmp))
        seed = 3
        for name, server_peer, client_peer in (
            ("openssl", openssl_server(files), openssl_client(files)),
            ("tlslite", tlslite_server(files), tlslite_client(files)),
        ):
            print(f"recording {name}")
            for choice in (0, 8):
                server = ServerConnection(
                    fixtures.server_config(choice), random=fixtures.counter_random(seed),
                    now=fixtures.NOW,
                )
                stream = _record(server, client_peer)
                _write("server_raw", bytes((choice, seed, 0)) + stream, f"{name}-client-{choice}")
                if stream:
                    _write("record", bytes((0, 0, 7)) + stream, f"{name}-client")
                    hello_length = int.from_bytes(stream[3:5], "big")
                    hello = stream[5 : 5 + hello_length]
                    messages.append(hello)
            for choice in (0, 8):
                client = ClientConnection(
                    fixtures.client_config(choice), random=fixtures.counter_random(seed),
                    now=fixtures.NOW,
                )
                stream = _record(client, server_peer)
                _write("client_raw", bytes((choice, seed, 0)) + stream, f"{name}-server-{choice}")
                if stream[:1] == b"\x16":
                    hello_length = int.from_bytes(stream[3:5], "big")
                    messages.append(stream[5 : 5 + hello_length])

    # Decoders: every captured message (selector chooses its type), and the
    # extension blocks and bodies inside the hellos.
    from pinata.tls.messages import ClientHello, ServerHello, parse_handshake_message

    message_types = (1, 2, 4, 5, 8, 11, 13, 15, 20, 24, 254, 0, 3)
    seen: set[bytes] = set()
    for raw in messages:
        if len(raw) < 4 or raw[0] not in message_types:
            continue
        body = raw[4:]
        if body in seen:
            continue
        seen.add(body)
        _write("decoders", bytes((0, message_types.index(raw[0]))) + body, f"message-{raw[0]}")
        try:
            message = parse_handshake_message(raw[0], body)
        except Exception:
            continue
        if isinstance(message, ClientHello | ServerHello):
            for extension in message.extensions:
                _write("decoders", bytes((3, 0)) + extension.extension_data,
                       f"extension-{extension.extension_type}")
    # X.509: the valid chains as they are, and a bag of real certificates.
    for choice in (0, 1):
        _write("x509", bytes((0, 1, choice)), f"valid-chain-{choice}")
        _write("x509_differential", bytes((choice,)), f"valid-chain-{choice}")
    bag = b"".join(len(d).to_bytes(2, "big") + d for d in chains.toy_chain().certificates)
    _write("x509", bytes((0, 0)) + bag, "toy-bag")
    # HTTP: what browsers and curl send.
    for request in (
        b"GET / HTTP/1.1\r\nHost: pinata.example\r\nUser-Agent: curl/8.5\r\nAccept: */*\r\n\r\n",
        b"HEAD /anchor.pem HTTP/1.1\r\nHost: pinata.example\r\n\r\n",
        b"GET /stats HTTP/1.1\r\nHost: a\r\n\r\nGET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /connection?port=40001 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"POST /software HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        b"GET /selftalk HTTP/1.0\r\n\r\n",
    ):
        _write("http", b"\x00" + request, "request")
    total = sum(f.stat().st_size for f in CORPUS.rglob("*") if f.is_file())
    count = sum(1 for f in CORPUS.rglob("*") if f.is_file())
    print(f"{count} seeds, {total} bytes")


if __name__ == "__main__":
    main()
