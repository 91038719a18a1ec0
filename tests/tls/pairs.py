"""Our client against our server, in memory: bytes are moved by hand, so a
test can split, drop, reorder or rewrite them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from pinata.tls.config import ClientConfig, Credentials, ServerConfig
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.events import ConnectionFailed, Event, HandshakeComplete
from tests.tls.peers import NOW, leaf, pinned_authenticator, test_ca


def server_config(
    kind: str = "p256", *, client_auth: bool = True, **overrides: object
) -> ServerConfig:
    credentials, _ = leaf("server", kind)
    config = ServerConfig(
        credentials=credentials,
        authenticate_client=pinned_authenticator() if client_auth else None,
        certificate_authorities=(test_ca().certificate.subject.public_bytes(),),
    )
    return dataclasses.replace(config, **overrides)  # type: ignore[arg-type]


def client_config(kind: str | None = "p256", **overrides: object) -> ClientConfig:
    credentials: Credentials | None = leaf("client", kind)[0] if kind is not None else None
    config = ClientConfig(authenticate_server=pinned_authenticator(), credentials=credentials)
    return dataclasses.replace(config, **overrides)  # type: ignore[arg-type]


def counter_random(seed: int = 0) -> Callable[[int], bytes]:
    """Deterministic randomness, so a handshake can be replayed exactly."""
    import hashlib

    state = {"n": 0}

    def random(n: int) -> bytes:
        out = b""
        while len(out) < n:
            state["n"] += 1
            out += hashlib.sha256(f"{seed}:{state['n']}".encode()).digest()
        return out[:n]

    return random


def pump(
    client: ClientConnection,
    server: ServerConnection,
    *,
    rounds: int = 10,
    to_server: Callable[[bytes], bytes] = lambda b: b,
    to_client: Callable[[bytes], bytes] = lambda b: b,
) -> tuple[list[Event], list[Event]]:
    """Move bytes both ways until neither side has anything to say."""
    client_events: list[Event] = []
    server_events: list[Event] = []
    for _ in range(rounds):
        moved = False
        data = client.data_to_send()
        if data:
            moved = True
            server_events += server.receive_data(to_server(data))
        data = server.data_to_send()
        if data:
            moved = True
            client_events += client.receive_data(to_client(data))
        if not moved:
            break
    return client_events, server_events


def completed(events: list[Event]) -> HandshakeComplete | None:
    return next((e for e in events if isinstance(e, HandshakeComplete)), None)


def failure(events: list[Event]) -> ConnectionFailed | None:
    return next((e for e in events if isinstance(e, ConnectionFailed)), None)


def new_pair(
    server_cfg: ServerConfig | None = None,
    client_cfg: ClientConfig | None = None,
    seed: int | None = None,
) -> tuple[ClientConnection, ServerConnection]:
    kwargs_c = {} if seed is None else {"random": counter_random(seed)}
    kwargs_s = {} if seed is None else {"random": counter_random(seed + 1000)}
    client = ClientConnection(client_cfg or client_config(), now=NOW, **kwargs_c)
    server = ServerConnection(server_cfg or server_config(), now=NOW, **kwargs_s)
    return client, server
