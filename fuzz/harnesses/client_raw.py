"""Harness 4a: arbitrary byte streams into a `ClientConnection`.

Input: [config][random seed][segment size] stream. The client's ClientHello
depends only on the config and seed, so a recorded server flight (ours,
OpenSSL's, tlslite-ng's) replays to a completed handshake.
"""

from __future__ import annotations

from fuzz.harnesses import fixtures
from fuzz.harnesses.engine import Watched
from fuzz.harnesses.support import Input
from pinata.tls.connection import ClientConnection


def run(data: bytes) -> Watched:
    """One input through the harness; the connection under test, for inspection."""
    inp = Input(data)
    config = fixtures.client_config(inp.u8())
    random = fixtures.counter_random(inp.u8())
    segment = inp.u8()
    stream = inp.rest()
    client = Watched(ClientConnection(config, random=random, now=fixtures.NOW), peer_required=True)
    client.take_output()
    step = segment * 13 or len(stream) or 1
    for start in range(0, len(stream), step):
        client.feed(stream[start : start + step])
    client.finish()
    return client


def one_input(data: bytes) -> None:
    run(data)
