"""`pinata bench budgets`: what one handshake costs in work and memory, as
counts CI can assert without a clock (issue 18).

Timing varies ±30 % on a shared machine; these do not: the Python function
calls each role makes per handshake (`sys.setprofile`), the bytes each role
allocates at its peak (`tracemalloc`), and the bytes held per stalled
handshake (a server that sent its flight and waits for a client's second
flight forever), both in the engine alone and in the appliance's port 10000
handler with its guard, adapter and trio task. `tests/bench/budgets.toml`
holds the committed figures; `tests/bench/test_budgets.py` fails when a
figure exceeds its budget by more than the margin. After an intended change
(the engine is still being reshaped), re-measure and commit the file:

    python -m pinata.bench.budgets --write
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tomllib
import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import trio
import trio.testing

from bait_ca import toy
from pinata.bench import report, wire
from pinata.tls.config import ClientConfig, Credentials, ServerConfig
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import TLS12, TLS13
from pinata.tls.events import ApplicationData, HandshakeComplete
from pinata.x509 import Purpose, TrustAnchor, authenticator

BUDGET_FILE = Path(__file__).resolve().parents[2] / "tests" / "bench" / "budgets.toml"
# A figure may exceed its budget by this much before CI fails: allocation
# sizes move by a few bytes with random key shares and signature lengths.
MARGIN = 0.10
# Handshakes measured per figure (after one that warms the caches), and
# stalled handshakes held at once: the median and the mean hide noise.
SAMPLES = 5
STALLED = 200

FIGURES = {
    "server_calls": "Python function calls, server role, per handshake",
    "client_calls": "Python function calls, client role, per handshake",
    "server_peak_bytes": "bytes allocated at the peak, server role, per handshake",
    "client_peak_bytes": "bytes allocated at the peak, client role, per handshake",
    "adapter_calls": "Python calls per handshake over TLSStream, both roles, trio included",
    "appliance_calls": "Python calls per bounty through port 10000's path, our client included",
    "appliance_steps": "event-loop task steps per bounty through port 10000's path, both ends",
    "engine_stalled_bytes": "bytes held per stalled handshake, engine alone",
    "appliance_stalled_bytes": "bytes held per stalled handshake, appliance port 10000",
    "appliance_silent_bytes": "bytes held per connection to port 10000 that sent nothing",
}


# Reported beside the budgets, not enforced by them (yet): RSS per stalled
# server engine, which sees what tracemalloc cannot (OpenSSL's hash and
# cipher contexts, key objects, the allocator's overhead). Each run is a
# fresh interpreter, so arenas freed by earlier work do not absorb the
# engines; three runs here agreed to within 0.1 %.
RSS_STALLED = 10_000
RSS_RUNS = 3
REPORTED = {
    "engine_stalled_rss_tls13": "RSS bytes per stalled TLS 1.3 server engine, {count:,} held",
    "engine_stalled_rss_tls12": "RSS bytes per stalled TLS 1.2 server engine, {count:,} held",
}
# Engines stalled and dropped before RSS is read: the caches (validator,
# encodings) and the interpreter's free lists are warm.
_RSS_WARM = 50


@dataclass(frozen=True)
class Configs:
    server: ServerConfig
    client: ClientConfig


def toy_configs() -> Configs:
    """Both roles with the toy credentials, client certificate required."""
    ca = toy.load()
    anchor = TrustAnchor.from_der(ca.anchor.der)
    return Configs(
        server=ServerConfig(
            credentials=Credentials((ca.server.der,), ca.server.private_key),
            authenticate_client=authenticator(anchor, Purpose.CLIENT_AUTH),
        ),
        client=ClientConfig(
            authenticate_server=authenticator(anchor, Purpose.SERVER_AUTH),
            credentials=Credentials((ca.client.der,), ca.client.private_key),
        ),
    )


Meter = Callable[[Callable[[], object]], int]


def count_calls(work: Callable[[], object]) -> int:
    """Python function calls (not C functions) made while `work` runs."""
    calls = 0

    def observe(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(observe)
    try:
        work()
    finally:
        sys.setprofile(None)
    return calls - 1  # `work` itself


def peak_bytes(work: Callable[[], object]) -> int:
    """Bytes allocated at the peak while `work` runs, above what was held before."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def handshake(configs: Configs, meter: Meter) -> tuple[int, int]:
    """One handshake, request, reply and close in memory; `meter` applied to
    each role's calls, summed per role: (server, client)."""
    now = datetime.now(UTC)
    spent = {"server": 0, "client": 0}
    box: dict[str, object] = {}

    def on(role: str, work: Callable[[], object]) -> object:
        def keep() -> None:
            box["out"] = work()

        spent[role] += meter(keep)
        return box["out"]

    client = on("client", lambda: ClientConnection(configs.client, random=os.urandom, now=now))
    assert isinstance(client, ClientConnection)
    server = on("server", lambda: ServerConnection(configs.server, random=os.urandom, now=now))
    assert isinstance(server, ServerConnection)

    hello = on("client", client.data_to_send)

    def server_flight() -> bytes | memoryview:
        server.receive_data(hello)  # type: ignore[arg-type]
        return server.data_to_send()

    flight = on("server", server_flight)

    def client_flight() -> bytes | memoryview:
        client.receive_data(flight)  # type: ignore[arg-type]
        client.send_application_data(wire.HELLO + b"\n")
        return client.data_to_send()

    finished = on("client", client_flight)

    def reply() -> bytes | memoryview:
        events = server.receive_data(finished)  # type: ignore[arg-type]
        done = next((e for e in events if isinstance(e, HandshakeComplete)), None)
        request = b"".join(e.data for e in events if isinstance(e, ApplicationData))
        if done is None or done.peer is None or not request.startswith(wire.HELLO):
            raise RuntimeError("the in-memory handshake did not complete")
        server.send_application_data(wire.reply_to(wire.HELLO))
        server.close()
        return server.data_to_send()

    answer = on("server", reply)
    on("client", lambda: client.receive_data(answer))  # type: ignore[arg-type]
    return spent["server"], spent["client"]


def per_handshake(configs: Configs, meter: Meter, samples: int) -> tuple[int, int]:
    """The median over `samples` handshakes, after one that warms the caches."""
    handshake(configs, meter)
    runs = [handshake(configs, meter) for _ in range(samples)]
    return (round(statistics.median(r[0] for r in runs)),
            round(statistics.median(r[1] for r in runs)))


def over_trio(configs: Configs) -> None:
    """One handshake, 64 bytes server to client and close, both roles on
    `TLSStream` over trio's in-memory streams: the adapter and the loop."""
    from pinata.appliance.tls_stream import TLSStream

    now = datetime.now(UTC)
    left, right = trio.testing.memory_stream_pair()
    server = TLSStream(left, ServerConnection(configs.server, random=os.urandom, now=now))
    client = TLSStream(right, ClientConnection(configs.client, random=os.urandom, now=now))

    async def serve() -> None:
        await server.do_handshake()
        await server.send_all(bytes(64))
        await server.aclose()

    async def receive() -> None:
        await client.do_handshake()
        while await client.receive_some():
            pass
        await client.aclose()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            nursery.start_soon(receive)

    trio.run(main)


class _TaskSteps(trio.abc.Instrument):
    """Counts every step the scheduler runs: each is a trip through trio's loop."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1


def over_appliance(configs: Configs) -> tuple[int, int]:
    """One bounty through the appliance's port 10000 path (record, guard,
    adapter, validator, release, linger, journal, close) with our client on
    `TLSStream` over in-memory streams: (Python calls, event-loop task steps),
    both ends together, from the first byte of the connection to its end."""
    from pinata.appliance import server as appliance
    from pinata.appliance import toy_settings
    from pinata.appliance.state import build_state
    from pinata.appliance.tls_stream import TLSStream

    steps = _TaskSteps()
    calls = 0
    received = bytearray()

    def observe(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    async def main() -> None:
        state = build_state(toy_settings(), lambda line: None, trio.current_time())
        state.bound["tls_server"] = ("127.0.0.1", 10000)
        ours, theirs = trio.testing.memory_stream_pair()
        client = TLSStream(theirs, ClientConnection(configs.client, random=os.urandom,
                                                    now=datetime.now(UTC)))

        async def bounty_hunter() -> None:
            await client.do_handshake()
            while data := await client.receive_some():
                received.extend(data)
            await client.aclose()

        trio.lowlevel.add_instrument(steps)
        sys.setprofile(observe)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(appliance._run_connection, state, "tls_server", ours,
                                   ("127.0.0.1", 1024))
                nursery.start_soon(bounty_hunter)
        finally:
            sys.setprofile(None)
            trio.lowlevel.remove_instrument(steps)

    trio.run(main)
    if not received:
        raise RuntimeError("the appliance released nothing to the toy client")
    return calls, steps.steps


def client_hellos(configs: Configs, count: int) -> list[bytes]:
    now = datetime.now(UTC)
    return [bytes(ClientConnection(configs.client, random=os.urandom, now=now).data_to_send())
            for _ in range(count)]


def engine_stalled_bytes(configs: Configs, count: int) -> int:
    """Bytes the server engine holds after its flight, waiting for the client's."""
    hellos = client_hellos(configs, count)
    now = datetime.now(UTC)
    held: list[ServerConnection] = []
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for hello in hellos:
            server = ServerConnection(configs.server, random=os.urandom, now=now)
            # A fresh object, as a socket gives: whatever the engine keeps
            # of it is counted (the caller's hello is not).
            server.receive_data(bytearray(hello))
            server.data_to_send()
            held.append(server)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (after - before) // count


def _rss() -> int:
    """This process's resident set, in bytes (Linux's /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def stalled_rss_here(version: int, count: int) -> int:
    """RSS growth per server engine, in this process, after `count` engines
    answered a ClientHello offering only `version` and now wait for the
    client's second flight (client certificate required); garbage collected
    before each reading. Run it in a fresh interpreter (`engine_stalled_rss`)."""
    configs = toy_configs()
    client = replace(configs.client, versions=(version,))
    hellos = client_hellos(Configs(configs.server, client), count + _RSS_WARM)
    now = datetime.now(UTC)

    def stall(hello: bytes) -> ServerConnection:
        server = ServerConnection(configs.server, random=os.urandom, now=now)
        server.receive_data(bytearray(hello))  # a fresh object, as a socket gives
        if not server.data_to_send() or server.closed:
            raise RuntimeError("the server engine did not answer the ClientHello")
        return server

    warm = [stall(hello) for hello in hellos[count:]]
    del warm
    gc.collect()
    before = _rss()
    held = [stall(hello) for hello in hellos[:count]]
    gc.collect()
    grown = _rss() - before
    del held  # alive until the RSS was read
    return grown // count


def engine_stalled_rss(version: int, count: int = RSS_STALLED, runs: int = RSS_RUNS) -> int:
    """Median over `runs` fresh interpreters of `stalled_rss_here`: RSS bytes
    per stalled server engine, TLS 1.3 or TLS 1.2 (`version`)."""
    code = ("import sys\nfrom pinata.bench.budgets import stalled_rss_here\n"
            "print(stalled_rss_here(int(sys.argv[1]), int(sys.argv[2])))")
    samples = [
        int(subprocess.run([sys.executable, "-c", code, str(version), str(count)],
                           check=True, capture_output=True, text=True, timeout=600).stdout)
        for _ in range(runs)]
    return round(statistics.median(samples))


def reported(count: int = RSS_STALLED, runs: int = RSS_RUNS) -> dict[str, int]:
    """Every figure of `REPORTED`, measured now."""
    return {
        "engine_stalled_rss_tls13": engine_stalled_rss(TLS13, count, runs),
        "engine_stalled_rss_tls12": engine_stalled_rss(TLS12, count, runs),
    }


def appliance_stalled_bytes(configs: Configs, count: int, *, hello: bool = True) -> int:
    """Bytes the appliance holds per connection to port 10000 whose ClientHello
    it answered and whose next flight never comes (or, with `hello` False, whose
    peer never says a word): the connection's task, its record, guard, adapter
    and engine (over in-memory streams, whose own cost is left out by creating
    them before the baseline)."""
    from pinata.appliance import server as appliance
    from pinata.appliance import toy_settings
    from pinata.appliance.state import build_state

    hellos = client_hellos(configs, count)

    async def main() -> int:
        state = build_state(toy_settings(), lambda line: None, trio.current_time())
        state.bound["tls_server"] = ("127.0.0.1", 10000)
        pairs = [trio.testing.memory_stream_pair() for _ in range(count)]
        async with trio.open_nursery() as nursery:
            gc.collect()
            tracemalloc.start()
            try:
                before, _ = tracemalloc.get_traced_memory()
                for i, (ours, theirs) in enumerate(pairs):
                    nursery.start_soon(appliance._run_connection, state, "tls_server", ours,
                                       ("127.0.0.1", 1024 + i))
                    if hello:
                        await theirs.send_all(hellos[i])
                await trio.testing.wait_all_tasks_blocked()
                for _, theirs in pairs if hello else ():  # the flight leaves us, as into a socket
                    if not await theirs.receive_some():
                        raise RuntimeError("the appliance did not answer a ClientHello")
                await trio.testing.wait_all_tasks_blocked()
                gc.collect()
                after, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            nursery.cancel_scope.cancel()
        return (after - before) // count

    return trio.run(main)


def measure(samples: int = SAMPLES, stalled: int = STALLED) -> dict[str, int]:
    """Every figure of `FIGURES`, measured now."""
    configs = toy_configs()
    server_calls, client_calls = per_handshake(configs, count_calls, samples)
    server_peak, client_peak = per_handshake(configs, peak_bytes, samples)
    over_trio(configs)  # warm
    adapter = statistics.median(count_calls(lambda: over_trio(configs)) for _ in range(samples))
    over_appliance(configs)  # warm: the validator's parse cache, the network cache
    bounties = [over_appliance(configs) for _ in range(samples)]
    return {
        "server_calls": server_calls,
        "client_calls": client_calls,
        "server_peak_bytes": server_peak,
        "client_peak_bytes": client_peak,
        "adapter_calls": round(adapter),
        "appliance_calls": round(statistics.median(b[0] for b in bounties)),
        "appliance_steps": round(statistics.median(b[1] for b in bounties)),
        "engine_stalled_bytes": engine_stalled_bytes(configs, stalled),
        "appliance_stalled_bytes": appliance_stalled_bytes(configs, stalled),
        "appliance_silent_bytes": appliance_stalled_bytes(configs, stalled, hello=False),
    }


def load(path: Path = BUDGET_FILE) -> dict[str, int]:
    """The committed budgets: every figure of `FIGURES`, nothing else."""
    with path.open("rb") as f:
        table = tomllib.load(f)["budgets"]
    if set(table) != set(FIGURES) or not all(isinstance(v, int) for v in table.values()):
        raise ValueError(f"{path}: [budgets] must hold exactly {sorted(FIGURES)} as integers")
    return dict(table)


def over_budget(measured: Mapping[str, int], budgets: Mapping[str, int],
                margin: float = MARGIN) -> list[str]:
    """One line per figure above its budget by more than `margin`."""
    return [f"{name} ({FIGURES[name]}): {measured[name]:,} against a budget of "
            f"{budgets[name]:,} (+{margin:.0%} allowed)"
            for name in FIGURES if measured[name] > budgets[name] * (1 + margin)]


def write(measured: Mapping[str, int], path: Path = BUDGET_FILE) -> None:
    lines = [
        "# Per-handshake budgets CI enforces (tests/bench/test_budgets.py), with a",
        f"# {MARGIN:.0%} margin. Measured by `python -m pinata.bench.budgets --write`;",
        "# re-measure and commit after an intended change, and say why in the commit.",
        "[budgets]",
        *(f"{name} = {measured[name]}  # {FIGURES[name]}" for name in FIGURES),
    ]
    path.write_text("\n".join(lines) + "\n")


def render(measured: Mapping[str, int], budgets: Mapping[str, int] | None) -> str:
    rows: list[list[report.Cell]] = [
        [name, FIGURES[name], measured[name], None if budgets is None else budgets[name]]
        for name in FIGURES]
    return report.table(["figure", "what", "measured", "budget"], rows)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    measured = measure(2 if args.smoke else SAMPLES, 20 if args.smoke else STALLED)
    held = 200 if args.smoke else RSS_STALLED
    beside = reported(held, 1) if args.smoke else reported(held)
    if args.write:  # the old file may lack a figure added since
        write(measured)
    budgets = load() if BUDGET_FILE.exists() else None
    result: dict[str, object] = {"smoke": args.smoke, "measured": measured, "budgets": budgets,
                                 "over_budget": [] if budgets is None
                                 else over_budget(measured, budgets),
                                 "reported": beside}
    text = "\n\n".join((
        render(measured, budgets),
        report.table(["reported, not budgeted", "what", "measured"],
                     [[name, REPORTED[name].format(count=held), beside[name]]
                      for name in REPORTED])))
    report.finish("budgets", argv, args.json, text, result)
    return 0


if __name__ == "__main__":
    from pinata.bench import parser

    sys.exit(main(parser().parse_args(["budgets", *sys.argv[1:]]), ["budgets", *sys.argv[1:]]))
