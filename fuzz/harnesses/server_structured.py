"""Harness 3b: a `ServerConnection` against our own client turned attacker.

Input: [client config][server config][client seed][server seed], then one
byte per handshake message the client sends choosing a mutation
(`fuzz.harnesses.mutate`), and a byte per round choosing what else the
client does (inject a record, truncate, append, update keys, close). An
empty tail is an honest handshake, so the fuzzer starts from a valid
ClientHello and a valid client flight.
"""

from __future__ import annotations

from fuzz.harnesses import fixtures
from fuzz.harnesses.engine import Watched, duel
from fuzz.harnesses.mutate import MutatingClient
from fuzz.harnesses.support import Input
from pinata.tls.connection import ServerConnection


def run(data: bytes) -> Watched:
    """One input through the harness; the connection under test, for inspection."""
    inp = Input(data)
    client_config = fixtures.client_config(inp.u8())
    server_config = fixtures.server_config(inp.u8())
    client_random = fixtures.counter_random(inp.u8())
    server_random = fixtures.counter_random(256 + inp.u8())
    attacker = MutatingClient(
        client_config, random=client_random, now=fixtures.NOW, mutation_input=inp
    )
    server = Watched(
        ServerConnection(server_config, random=server_random, now=fixtures.NOW),
        peer_required=server_config.authenticate_client is not None,
    )
    duel(server, attacker, inp)
    return server


def one_input(data: bytes) -> None:
    run(data)
