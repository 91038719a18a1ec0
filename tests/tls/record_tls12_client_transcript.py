"""Record a TLS 1.2 conversation between our client and `openssl s_server
-tls1_2`, for `test_tls12_client_transcript.py` to replay.

Our client runs with seeded randomness, a fixed clock and an Ed25519
certificate made the same way every time (Ed25519 signatures are
deterministic), so its every byte is a function of what the server sends.
The server is asked to request a client certificate, so the recording holds
our Certificate and CertificateVerify too. The test feeds the server's
recorded bytes to a fresh client with the same seed and expects our
recorded bytes, byte for byte.

Re-record only when the client's TLS 1.2 output changes on purpose (a new
extension in the ClientHello, say), then review the fixture's diff:

    .venv/bin/python -m tests.tls.record_tls12_client_transcript

Loopback only; one connection; every wait is bounded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from pinata.tls.config import ClientConfig, Credentials, PeerRejected, VerifiedPeer
from pinata.tls.connection import ClientConnection
from pinata.tls.errors import AlertDescription
from pinata.tls.events import (
    ApplicationData,
    ConnectionFailed,
    Event,
    HandshakeComplete,
    PeerClosed,
)
from tests.tls.record_tls12_transcript import seeded_random

FIXTURE = Path(__file__).parent / "fixtures" / "tls12_client_openssl_transcript.json"
SEED = "pinata tls12 client transcript"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SAY = b"ping\n"
ANSWER = b"gnip\n"  # s_server -rev answers each line reversed


def _self_signed(label: str) -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey]:
    """The same self-signed Ed25519 certificate and key for `label`, every time."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"{SEED}:{label}".encode()).digest()
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"pinata transcript {label}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2035, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, None)
    )
    return cert, key


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def config() -> ClientConfig:
    """Our client: the fixed client certificate; the server's, pinned."""
    client_cert, client_key = _self_signed("client")
    server_cert, _ = _self_signed("server")
    pinned = _der(server_cert)

    def authenticate(chain: Sequence[bytes], now: dt.datetime) -> VerifiedPeer | PeerRejected:
        if list(chain) != [pinned]:
            return PeerRejected(AlertDescription.bad_certificate, "not the recorded server")
        return VerifiedPeer((pinned,), server_cert.public_key(), ("pinata transcript server",))

    return ClientConfig(
        authenticate_server=authenticate, credentials=Credentials((_der(client_cert),), client_key)
    )


def new_client() -> ClientConnection:
    return ClientConnection(config(), random=seeded_random(SEED), now=NOW)


def answer(client: ClientConnection, events: list[Event], said: bytes) -> bytes:
    """What our client does after `events`: say SAY once the handshake is
    done, close once ANSWER has come, close in turn when the peer closes.
    Returns everything heard so far."""
    for event in events:
        if isinstance(event, ApplicationData):
            said += event.data
    if any(isinstance(e, HandshakeComplete) for e in events):
        client.send_application_data(SAY)
    if ANSWER in said or any(isinstance(e, PeerClosed) for e in events):
        client.close()  # once: a second call does nothing
    return said


def _converse(port: int) -> tuple[list[bytes], list[bytes]]:
    """One conversation: (our chunks, the server's chunks), each as sent."""
    client = new_client()
    ours = [client.data_to_send()]
    theirs: list[bytes] = []
    heard = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(ours[0])
        for _ in range(100):
            data = sock.recv(65536)
            if not data:
                break
            theirs.append(data)
            events = client.receive_data(data)
            heard = answer(client, events, heard)
            out = client.data_to_send()
            ours.append(out)
            if out:
                sock.sendall(out)
            if client.closed or any(isinstance(e, ConnectionFailed) for e in events):
                break
    return ours, theirs


def record() -> dict[str, object]:
    """Run `openssl s_server -tls1_2` once against our client; the recording."""
    server_cert, server_key = _self_signed("server")
    client_cert, _ = _self_signed("client")
    with tempfile.TemporaryDirectory() as directory:
        files = Path(directory)
        (files / "server.pem").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        (files / "server.key").write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (files / "ca.pem").write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
        command = [
            "openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-tls1_2",
            "-cert", str(files / "server.pem"), "-key", str(files / "server.key"),
            "-CAfile", str(files / "ca.pem"), "-Verify", "1", "-verify_return_error",
            "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", "-groups", "X25519", "-rev",
        ]  # fmt: skip
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert server.stdout is not None
            deadline = time.monotonic() + 20
            line = b""
            while not line.startswith(b"ACCEPT") and time.monotonic() < deadline:
                line = server.stdout.readline()
            ours, theirs = _converse(int(line.rsplit(b":", 1)[1]))
            server.wait(timeout=20)
            output = server.stdout.read().decode(errors="replace")
        finally:
            server.kill()
    version = subprocess.run(
        ["openssl", "version"], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()
    return {
        "peer": version,
        "command": " ".join(command).replace(directory, "DIR"),
        "seed": SEED,
        "server_verified_us": "depth=0 CN = pinata transcript client" in output,
        "ours": [c.hex() for c in ours],
        "theirs": [c.hex() for c in theirs],
    }


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(record(), indent=1) + "\n")
    print(f"recorded {FIXTURE}")
