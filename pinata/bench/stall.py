"""The two sides of the memory benchmark, each a worker process.

`run_appliance`: the toy appliance as `pinata toy` runs it, on ephemeral
ports, its connection caps raised past the benchmark's load (every stalled
connection comes from 127.0.0.1, so the per-address cap matters most) and
its deadlines long enough that nothing is dropped while RSS is read.

`serve_stall_commands`: opens connections to the appliance's port 10000
(its TLS server), sends each one ClientHello and nothing more, and keeps
them open: the appliance answers with its flight and then waits for a
client Certificate that never comes.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pinata.appliance import toy_settings
from pinata.appliance.settings import LISTENER_NAMES, Ports
from pinata.bench import wire
from pinata.bench.procs import raise_open_file_limit
from pinata.bench.servers import serve_until_signalled

# Connections opened before waiting for their answers: below the appliance's
# listen backlog (128), so that no SYN is dropped and retried a second later.
STALL_BATCH = 100
ANSWER_TIMEOUT = 60.0
LONG = 3600.0
TOP_ALLOCATIONS = 15


class _Allocations:
    """tracemalloc, on request: the first SIGUSR1 takes a baseline, each later
    one reports the source lines that grew most since (to stdout, as JSON)."""

    def __init__(self) -> None:
        tracemalloc.start(1)
        self.baseline: tracemalloc.Snapshot | None = None

    def report(self) -> None:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            (tracemalloc.Filter(False, tracemalloc.__file__),))
        if self.baseline is None:
            self.baseline = snapshot
            wire.announce({"allocations": []})
            return
        grown = snapshot.compare_to(self.baseline, "lineno")
        by_file = snapshot.compare_to(self.baseline, "filename")
        wire.announce({
            "allocations": [
                {"where": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
                 "bytes": s.size_diff, "blocks": s.count_diff} for s in grown[:TOP_ALLOCATIONS]],
            "by_file": [
                {"where": _short(s.traceback[0].filename), "bytes": s.size_diff,
                 "blocks": s.count_diff} for s in by_file[:TOP_ALLOCATIONS]],
            "total_bytes": sum(s.size_diff for s in grown),
        })


# Where the checkout sits, found from the package itself: the report names
# files relative to it, wherever the project was installed or cloned.
_CHECKOUT = str(Path(__file__).resolve().parents[2]) + "/"


def _short(filename: str) -> str:
    """A source file's name without the machine-specific prefix before the
    checkout, site-packages or the standard library."""
    if filename.startswith(_CHECKOUT):
        return filename[len(_CHECKOUT):]
    for marker in ("/site-packages/", f"/lib/python{sys.version_info[0]}.{sys.version_info[1]}/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def run_appliance(max_connections: int, trace_allocations: bool = False) -> None:
    raise_open_file_limit()
    allocations = _Allocations() if trace_allocations else None
    toy = toy_settings()
    # The other listeners keep their reserved slots out of port 10000's reach:
    # without them counted in, 64 of 1,000 stalled connections were never
    # answered (and the bytes per connection read 6 % low).
    reserved = toy.budgets.reserved_per_listener * (len(LISTENER_NAMES) - 1)
    settings = replace(
        toy,
        ports=Ports(tls_server=0, connect_back=0, tls_client=0, http=0, https=0),
        limits=replace(toy.limits, max_connections=max_connections + reserved,
                       max_connections_per_address=max_connections,
                       handshake_timeout=LONG, connection_timeout=LONG),
        # Every stalled connection comes from one address and waits forever:
        # lift the budgets that exist to stop exactly that (issue 11).
        budgets=replace(toy.budgets, max_connections_per_network=max_connections,
                        step_timeout=LONG, first_byte_timeout=LONG),
        selftalk_interval=0.0,
    )

    def write_line(line: str) -> None:
        # The listening report goes to the parent; connection records nowhere
        # (thousands of them would fill the pipe and stall the appliance).
        if line.startswith('{"listening"'):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    serve_until_signalled(settings, write_line,
                          allocations.report if allocations is not None else None)


def client_hello() -> bytes:
    """One real ClientHello from our engine, sent on every stalled connection."""
    from bait_ca import toy
    from pinata.tls.config import ClientConfig
    from pinata.tls.connection import ClientConnection
    from pinata.x509 import Purpose, TrustAnchor, authenticator

    anchor = TrustAnchor.from_der(toy.load().anchor.der)
    config = ClientConfig(authenticate_server=authenticator(anchor, Purpose.SERVER_AUTH))
    return bytes(ClientConnection(config, now=datetime.now(UTC)).data_to_send())


def _stall_batch(port: int, hello: bytes, count: int, held: list[socket.socket]) -> int:
    """Open `count` connections, send each the ClientHello; how many got an answer."""
    batch: list[socket.socket] = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=wire.IO_TIMEOUT)
        held.append(s)
        s.sendall(hello)
        s.setblocking(False)
        batch.append(s)
    answered = 0
    with selectors.DefaultSelector() as selector:
        for s in batch:
            selector.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while answered < len(batch) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1.0):
                selector.unregister(key.fileobj)
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    if sock.recv(65536):
                        answered += 1
                except OSError:
                    pass
    return answered


def serve_stall_commands(port: int) -> None:
    """`{"op": "stall", "total": N}`: hold N stalled connections in all; answer
    with how many are open and how many the appliance answered."""
    raise_open_file_limit()
    hello = client_hello()
    held: list[socket.socket] = []
    answered = 0
    wire.announce({"ready": True})
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command.get("op") != "stall":
                break
            total = int(command["total"])
            started = time.perf_counter()
            while len(held) < total:
                answered += _stall_batch(port, hello, min(STALL_BATCH, total - len(held)), held)
            wire.announce({"open": len(held), "answered": answered,
                           "seconds": time.perf_counter() - started})
    finally:
        for s in held:
            s.close()
