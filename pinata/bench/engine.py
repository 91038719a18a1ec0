"""Our engine alone: the server side of a handshake in memory, no socket, no
event loop, the client's bytes handed over directly by our own client.

Only the server's calls are timed (CPU time of this process), so the figure
is what `pinata.tls` and `pinata.x509` cost per handshake, to set beside the
same handshake served over trio: the difference is the shell's.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

from pinata.bench import report, wire
from pinata.bench.creds import SERVER_NAME, read_pki
from pinata.tls.config import ClientConfig, ServerConfig
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import CipherSuite, NamedGroup
from pinata.tls.events import ApplicationData, HandshakeComplete
from pinata.x509 import Purpose, TrustAnchor, authenticator


def engine_alone_us(pki_dir: Path, handshakes: int) -> dict[str, float]:
    """Median server CPU µs per in-memory handshake + request + reply + close."""
    pki = read_pki(pki_dir)
    anchor = TrustAnchor.from_der(pki.anchor_der)
    server_config = ServerConfig(
        credentials=pki.server,
        authenticate_client=authenticator(anchor, Purpose.CLIENT_AUTH),
        certificate_authorities=(pki.anchor_subject_der,),
        cipher_suites=(CipherSuite.TLS_AES_128_GCM_SHA256,),
    )
    client_config = ClientConfig(
        authenticate_server=authenticator(anchor, Purpose.SERVER_AUTH, SERVER_NAME),
        credentials=pki.client,
        server_name=SERVER_NAME,
        cipher_suites=(CipherSuite.TLS_AES_128_GCM_SHA256,),
        groups=(NamedGroup.x25519,),
    )
    clock = time.process_time
    samples: list[float] = []
    for _ in range(handshakes):
        now = datetime.now(UTC)
        client = ClientConnection(client_config, now=now)
        hello = client.data_to_send()
        t0 = clock()
        server = ServerConnection(server_config, random=os.urandom, now=now)
        server.receive_data(hello)
        flight = server.data_to_send()
        spent = clock() - t0
        client.receive_data(flight)
        client.send_application_data(wire.HELLO + b"\n")
        finished_and_request = client.data_to_send()
        t0 = clock()
        events = server.receive_data(finished_and_request)
        done = next((e for e in events if isinstance(e, HandshakeComplete)), None)
        request = b"".join(e.data for e in events if isinstance(e, ApplicationData))
        if done is None or done.peer is None or not request.startswith(wire.HELLO):
            raise RuntimeError("the in-memory handshake did not complete")
        server.send_application_data(wire.reply_to(wire.HELLO))
        server.close()
        reply = server.data_to_send()
        spent += clock() - t0
        client.receive_data(reply)
        samples.append(spent * 1e6)
    return {"median": report.median(samples), "min": min(samples)}
