"""Harness 4b: a `ClientConnection` against our own server turned attacker.

Input: [client config][server config][client seed][server seed], then one
byte per handshake message the server sends (ServerHello or
HelloRetryRequest, EncryptedExtensions, CertificateRequest, Certificate,
CertificateVerify, Finished) choosing a mutation, and a byte per round
choosing what else the server does. An empty tail is an honest handshake.
"""

from __future__ import annotations

from fuzz.harnesses import fixtures
from fuzz.harnesses.engine import Watched, duel
from fuzz.harnesses.mutate import MutatingServer
from fuzz.harnesses.support import Input
from pinata.tls.connection import ClientConnection


def run(data: bytes) -> Watched:
    """One input through the harness; the connection under test, for inspection."""
    inp = Input(data)
    client_config = fixtures.client_config(inp.u8())
    server_config = fixtures.server_config(inp.u8())
    client_random = fixtures.counter_random(inp.u8())
    server_random = fixtures.counter_random(256 + inp.u8())
    client = Watched(
        ClientConnection(client_config, random=client_random, now=fixtures.NOW),
        peer_required=True,
    )
    attacker = MutatingServer(
        server_config, random=server_random, now=fixtures.NOW, mutation_input=inp
    )
    attacker.receive_data(client.take_output())
    duel(client, attacker, inp)
    return client


def one_input(data: bytes) -> None:
    run(data)
