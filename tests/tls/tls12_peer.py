"""Python's `ssl` (OpenSSL) as a TLS 1.2 client of our server, in memory:
two MemoryBIOs instead of a socket, so a test moves every byte itself."""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pinata.tls.config import ServerConfig
from pinata.tls.connection import ServerConnection
from pinata.tls.events import Event
from tests.tls.peers import NOW, cert_pem, key_pem, leaf, test_ca

# OpenSSL's names of the six suites (`openssl ciphers -V`).
OPENSSL_NAMES = {
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256",
    0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384",
    0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
    0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305",
}


def client_context(
    client_kind: str | None = None, *, maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
) -> ssl.SSLContext:
    """An `ssl` client that trusts the test CA, speaks at most `maximum`,
    and presents a `client_kind` certificate when asked."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = maximum
    context.load_verify_locations(cadata=test_ca().pem.decode())
    if client_kind is not None:
        credentials, _ = leaf("client", client_kind)
        with tempfile.TemporaryDirectory() as directory:
            cert, key = Path(directory, "cert.pem"), Path(directory, "key.pem")
            cert.write_bytes(cert_pem(credentials))
            key.write_bytes(key_pem(credentials))
            context.load_cert_chain(str(cert), str(key))
    return context


@dataclass
class SslClient:
    """One `ssl` client and our server, joined by two memory BIOs."""

    server: ServerConnection
    context: ssl.SSLContext
    to_client: ssl.MemoryBIO = field(default_factory=ssl.MemoryBIO)
    from_client: ssl.MemoryBIO = field(default_factory=ssl.MemoryBIO)
    events: list[Event] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)  # what the client wrote, per flight
    replies: list[bytes] = field(default_factory=list)  # what our server wrote, per flight

    def __post_init__(self) -> None:
        self.tls = self.context.wrap_bio(
            self.to_client, self.from_client, server_hostname="localhost"
        )

    def handshake(self, *, one_byte_at_a_time: bool = False) -> bool:
        """Run the handshake; whether `ssl` finished it (an `ssl.SSLError`
        from the client is raised)."""
        for _ in range(10):  # a TLS 1.2 handshake takes two round trips
            try:
                self.tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            self.deliver(self.from_client.read(), one_byte_at_a_time=one_byte_at_a_time)
            reply = self.server.data_to_send()
            if reply:
                self.replies.append(reply)
                self.to_client.write(reply)
            elif done or self.server.closed:
                return done
        raise AssertionError("the handshake did not settle in 10 rounds")

    def deliver(self, data: bytes, *, one_byte_at_a_time: bool = False) -> None:
        if not data:
            return
        self.sent.append(data)
        if one_byte_at_a_time:
            for i in range(len(data)):
                self.events += self.server.receive_data(data[i : i + 1])
        else:
            self.events += self.server.receive_data(data)

    def round_trip(self, data: bytes) -> bytes:
        """`ssl` sends `data`, our server echoes it, `ssl` reads the echo."""
        self.tls.write(data)
        self.deliver(self.from_client.read())
        self.server.send_application_data(data)
        self.to_client.write(self.server.data_to_send())
        return self.tls.read(len(data) + 1)


def connect(
    config: ServerConfig, client_kind: str | None = None, **context_options: object
) -> SslClient:
    """An `SslClient` for `config`, its handshake not yet run."""
    server = ServerConnection(config, now=NOW)
    return SslClient(server, client_context(client_kind, **context_options))  # type: ignore[arg-type]
