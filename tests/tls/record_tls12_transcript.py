"""Record a TLS 1.2 handshake between `openssl s_client` and our server, for
`test_tls12_transcript.py` to replay.

Our server runs with seeded randomness and a certificate built the same way
every time (an Ed25519 key from a fixed seed, self-signed: Ed25519
signatures are deterministic), so its every byte is a function of what the
client sends. The recording keeps both directions; the test feeds the
client's bytes to a fresh server with the same seed and expects our bytes,
byte for byte.

Re-record (only when the engine's TLS 1.2 output changes on purpose, e.g. a
new extension in ServerHello; then review the diff of the fixture):

    .venv/bin/python -m tests.tls.record_tls12_transcript

Loopback only; one connection; every wait is bounded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from pinata.tls.config import Credentials, ServerConfig
from pinata.tls.connection import ServerConnection
from pinata.tls.constants import CipherSuite, NamedGroup

FIXTURE = Path(__file__).parent / "fixtures" / "tls12_openssl_transcript.json"
SEED = "pinata tls12 transcript"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SUITE = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
# What the server answers to the client's first application data.
REPLY = b"pong\n"


def seeded_random(seed: str = SEED) -> Callable[[int], bytes]:
    """Deterministic randomness: SHA-256 of the seed and a counter."""
    counter = 0

    def random(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            counter += 1
            out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        return out[:n]

    return random


def credentials() -> Credentials:
    """The same self-signed Ed25519 certificate and key on every call."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(SEED.encode()).digest())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinata transcript")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2035, 1, 1, tzinfo=dt.UTC))
        .sign(key, None)
    )
    return Credentials((cert.public_bytes(serialization.Encoding.DER),), key)


def config() -> ServerConfig:
    return ServerConfig(
        credentials=credentials(),
        cipher_suites_tls12=(SUITE,),
        groups=(NamedGroup.x25519,),
    )


def new_server() -> ServerConnection:
    return ServerConnection(config(), random=seeded_random(), now=NOW)


def _serve_one(listener: socket.socket) -> tuple[list[bytes], list[bytes]]:
    """Serve one connection: answer the first data with REPLY and
    close_notify. Returns (client chunks, server chunks)."""
    conn, _ = listener.accept()
    conn.settimeout(10)
    server = new_server()
    client_chunks: list[bytes] = []
    server_chunks: list[bytes] = []
    replied = False
    with conn:
        for _ in range(100):
            data = conn.recv(65536)
            client_chunks.append(data)
            events = server.receive_data(data)
            if not replied and any(type(e).__name__ == "ApplicationData" for e in events):
                server.send_application_data(REPLY)
                server.close()
                replied = True
            out = server.data_to_send()
            if out:
                server_chunks.append(out)
                conn.sendall(out)
            if not data or server.closed:
                break
    return client_chunks, server_chunks


def record() -> dict[str, object]:
    """Run `openssl s_client` against our server once and return the recording."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(20)
        port = listener.getsockname()[1]
        command = [
            "openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2",
            "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", "-curves", "X25519",
            "-sigalgs", "ed25519", "-quiet", "-no_ign_eof",
        ]  # fmt: skip
        client = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert client.stdin is not None
            client.stdin.write(b"ping\n")
            client.stdin.flush()
            client_chunks, server_chunks = _serve_one(listener)
            client.stdin.close()
            client.wait(timeout=20)
            assert client.stdout is not None
            stdout = client.stdout.read()
        finally:
            client.kill()
    version = subprocess.run(
        ["openssl", "version"], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()
    return {
        "peer": version,
        "command": " ".join(command).replace(f":{port}", ":PORT"),
        "seed": SEED,
        "client_said": stdout.decode(errors="replace"),
        "client": [c.hex() for c in client_chunks],
        "server": [c.hex() for c in server_chunks],
    }


if __name__ == "__main__":
    recording = record()
    FIXTURE.write_text(json.dumps(recording, indent=1) + "\n")
    print(f"recorded {FIXTURE}")
