"""Harness 3a: arbitrary byte streams into a `ServerConnection`.

Input: [config][random seed][segment size] stream. With the seeds the
corpus records, the stream is a real client's whole side of a handshake
(the server's randomness is replayed, so its encrypted flight decrypts):
mutations reach every state the client's bytes can.
"""

from __future__ import annotations

from fuzz.harnesses import fixtures
from fuzz.harnesses.engine import Watched
from fuzz.harnesses.support import Input
from pinata.tls.connection import ServerConnection


def run(data: bytes) -> Watched:
    """One input through the harness; the connection under test, for inspection."""
    inp = Input(data)
    config = fixtures.server_config(inp.u8())
    random = fixtures.counter_random(inp.u8())
    segment = inp.u8()
    stream = inp.rest()
    server = Watched(
        ServerConnection(config, random=random, now=fixtures.NOW),
        peer_required=config.authenticate_client is not None,
    )
    step = segment * 13 or len(stream) or 1
    for start in range(0, len(stream), step):
        server.feed(stream[start : start + step])
    server.finish()
    return server


def one_input(data: bytes) -> None:
    run(data)
