"""`pinata bench handshake`: server CPU per full mutual-auth TLS 1.3 handshake.

Each connection is a full handshake (client certificate required and
validated, no resumption), one request, its reply, close. Our server is
compared, batch against neighbouring batch, with Python's ssl on trio,
`openssl s_server` and tlslite-ng; batches alternate A B B A ..., and the
figure reported for a pair is the median of the per-round CPU ratios, which
holds on a shared machine where absolute figures drift.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import pstats
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from pinata.bench import report
from pinata.bench.creds import KeyKind, write_pki
from pinata.bench.engine import engine_alone_us
from pinata.bench.procs import Child
from pinata.bench.runs import (
    Batch,
    openssl_available,
    openssl_conf,
    run_batch,
    scratch_directory,
    start_clients,
    start_server,
    stop_all,
)

NAMES = {"ours": "ours on trio", "ssl": "ssl on trio", "openssl": "openssl s_server",
         "tlslite": "tlslite-ng"}
# tlslite-ng costs about ten times the others per handshake: fewer per batch.
SHARE = {"tlslite": 0.1}
PROFILE_TOP = 25


@dataclass(frozen=True)
class Contender:
    label: str
    server: str  # a runs.SERVER_KINDS
    client: str  # "ssl", "ours" or "plain"
    group: str = "x25519"  # our client's only group
    op: str = "hello"  # the clients' command (clients.serve_commands)
    extra: tuple[str, ...] = ()  # more arguments for the server's worker


@dataclass(frozen=True)
class Scenario:
    name: str
    pki: KeyKind
    # The first is "A"; every other one is compared with it.
    contenders: tuple[Contender, ...]
    # The groups every Python ssl process offers, best first (OpenSSL's syntax).
    groups: str = "X25519"


# The same trio shell and request with no TLS at all: the floor under ours.
PLAIN = Contender("no TLS, same trio shell", "plain", "plain")
# Ours and the floor again, on the appliance's own accept and stream
# (`pinata.appliance.transport`) instead of trio's SocketListener and
# SocketStream (issue 18): what the appliance's shell costs, beside the
# above, in the same run.
APPLIANCE_TRANSPORT = ("--appliance-transport",)
OURS_ON_TRANSPORT = Contender("ours, the appliance's transport", "ours", "ssl",
                              extra=APPLIANCE_TRANSPORT)
PLAIN_ON_TRANSPORT = Contender("no TLS, the appliance's transport", "plain", "plain",
                               extra=APPLIANCE_TRANSPORT)
# The real path (issue 18): `pinata toy`'s port 10000 with its validator,
# guard, journal, counters and trace, against the least `ssl` on trio needs
# to do the same (handshake, send, close); the same toy certificates and
# the same Python `ssl` clients, which only read.
APPLIANCE = Scenario("appliance port 10000 (toy, ECDSA P-256)", "ecdsa-p256", (
    Contender("pinata toy, port 10000", "appliance", "ssl", op="secret"),
    Contender("ssl on trio, send and close", "ssl-secret", "ssl", op="secret"),
    # Chains validated on the loop (the sandbox's way): what the hand-off to
    # a worker thread costs.
    Contender("pinata toy, validation on the loop", "appliance", "ssl", op="secret",
              extra=("--validation-threads", "0")),
))


# The same handshake over TLS 1.2 (issue 18): Python's ssl clients capped at
# TLS 1.2 (ECDHE-ECDSA-AES128-GCM-SHA256, X25519, client certificate), against
# our server and against ssl on trio with TLS 1.2 allowed; the ECDSA scenario
# above is the same over TLS 1.3.
# In TLS 1.2 the client's supported groups also bound the curve of an ECDSA
# certificate (RFC 8422 §5.1): the clients offer P-256 after X25519, which
# both servers pick for the key exchange.
TLS12 = Scenario("TLS 1.2: ECDSA P-256, X25519, AES-128-GCM", "ecdsa-p256", (
    Contender("ours on trio, TLS 1.2", "ours", "ssl-tls12"),
    Contender("ssl on trio, TLS 1.2", "ssl", "ssl-tls12", extra=("--tls12",)),
), groups="X25519:P-256")


def scenarios(include_openssl: bool, include_tlslite: bool) -> list[Scenario]:
    """Every comparison this machine can run (openssl and tlslite-ng are optional)."""

    def versus(client: str) -> tuple[Contender, ...]:
        kinds = ["ours", "ssl", *(["openssl"] if include_openssl else []),
                 *(["tlslite"] if include_tlslite else [])]
        return tuple(Contender(NAMES[k], k, client) for k in kinds)

    return [
        Scenario("ECDSA P-256, X25519", "ecdsa-p256",
                 (*versus("ssl"), PLAIN, OURS_ON_TRANSPORT, PLAIN_ON_TRANSPORT)),
        Scenario("RSA-2048, X25519", "rsa2048", versus("ssl")),
        Scenario("ECDSA P-256, X25519MLKEM768 (ours alone, our client)", "ecdsa-p256", (
            Contender("ours, X25519MLKEM768", "ours", "ours", "X25519MLKEM768"),
            Contender("ours, X25519 (our client)", "ours", "ours", "x25519"),
        )),
        TLS12,
        APPLIANCE,
    ]


@dataclass
class Measured:
    contender: Contender
    batches: list[Batch] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        cpu = [b.cpu_us_per_operation for b in self.batches if b.operations]
        rate = [b.per_second for b in self.batches if b.operations]
        return {
            "label": self.contender.label,
            "server": self.contender.server,
            "client": self.contender.client,
            "cpu_us_per_handshake": report.median(cpu),
            "handshakes_per_second": report.median(rate),
            "handshakes": sum(b.operations for b in self.batches),
            "failed": sum(b.failed for b in self.batches),
            "negotiated": next((b.detail for b in self.batches if b.detail), ""),
            "first_error": next((b.first_error for b in self.batches if b.first_error), ""),
            "batches": [b.to_json() for b in self.batches],
        }


def crypto_floor_us(rounds: int) -> dict[str, float]:
    """What the server's public-key operations alone cost here (ECDSA scenario):
    one X25519 key pair and exchange, one P-256 signature (CertificateVerify),
    two P-256 verifications (the client's certificate and CertificateVerify)."""
    key = ec.generate_private_key(ec.SECP256R1())
    message = bytes(130)
    signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    peer = x25519.X25519PrivateKey.generate().public_key()
    timings: dict[str, list[float]] = {"x25519": [], "p256_sign": [], "p256_verify_x2": []}
    for _ in range(rounds):
        t0 = time.perf_counter()
        x25519.X25519PrivateKey.generate().exchange(peer)
        t1 = time.perf_counter()
        key.sign(message, ec.ECDSA(hashes.SHA256()))
        t2 = time.perf_counter()
        for _ in range(2):
            key.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
        t3 = time.perf_counter()
        timings["x25519"].append((t1 - t0) * 1e6)
        timings["p256_sign"].append((t2 - t1) * 1e6)
        timings["p256_verify_x2"].append((t3 - t2) * 1e6)
    floor = {name: report.median(values) for name, values in timings.items()}
    floor["total"] = sum(floor.values())
    return floor


def _run_scenario(scenario: Scenario, scratch: Path, n: int, rounds: int,
                  client_count: int) -> dict[str, object]:
    pki_dir = write_pki(scenario.pki, scratch / scenario.pki)
    conf = openssl_conf(scratch, "aes128gcm", scenario.groups)
    children: list[Child] = []
    try:
        servers: dict[tuple[str, tuple[str, ...]], tuple[Child, int]] = {}
        clients: dict[tuple[str, str], list[Child]] = {}
        for c in scenario.contenders:
            if (c.server, c.extra) not in servers:
                servers[(c.server, c.extra)] = start_server(c.server, pki_dir, suite="aes128gcm",
                                                            conf=conf, extra=c.extra)
                children.append(servers[(c.server, c.extra)][0])
            if (c.client, c.group) not in clients:
                started = start_clients(c.client, pki_dir, client_count, conf=conf,
                                        group=c.group)
                children.extend(started)
                clients[(c.client, c.group)] = started
        measured = {c.label: Measured(c) for c in scenario.contenders}

        def batch(c: Contender, count: int) -> Batch:
            server, port = servers[(c.server, c.extra)]
            count = max(2, round(count * SHARE.get(c.server, 1.0)))
            return run_batch(server, clients[(c.client, c.group)], {"op": c.op, "port": port},
                             count, timeout=60 + count * 0.5)

        for c in scenario.contenders:  # warm-up: imports, caches, first allocations
            batch(c, max(2, n // 10))
        a, others = scenario.contenders[0], scenario.contenders[1:]
        ratios: dict[str, list[float]] = {b.label: [] for b in others}
        for r in range(rounds):
            for b in others:
                order = (a, b) if r % 2 == 0 else (b, a)
                got = {c.label: batch(c, n) for c in order}
                for c in order:
                    measured[c.label].batches.append(got[c.label])
                x, y = got[a.label], got[b.label]
                # A batch too short for the CPU clock to move gives no ratio.
                if x.operations and y.operations and y.cpu_us_per_operation > 0:
                    ratios[b.label].append(x.cpu_us_per_operation / y.cpu_us_per_operation)
        return {
            "name": scenario.name,
            "certificates": scenario.pki,
            "contenders": [measured[c.label].summary() for c in scenario.contenders],
            "comparisons": [
                {"a": a.label, "b": label, "cpu_ratio_median": report.median(values),
                 "cpu_ratio_min": min(values, default=float("nan")),
                 "cpu_ratio_max": max(values, default=float("nan")), "ratios": values}
                for label, values in ratios.items()
            ],
        }
    finally:
        stop_all(children)


def _profile(scratch: Path, n: int, client_count: int, kind: str, op: str,
             extra: tuple[str, ...] = ()) -> tuple[pstats.Stats, int]:
    """cProfile of a server of `kind` over `n` ECDSA handshakes, warm-up left out."""
    pki_dir = write_pki("ecdsa-p256", scratch / "profile")
    conf = openssl_conf(scratch, "aes128gcm")
    stats_path = scratch / f"{kind}.pstats"
    children: list[Child] = []
    try:
        server, port = start_server(kind, pki_dir, suite="aes128gcm" if kind == "ours" else None,
                                    conf=conf, profile=stats_path, extra=extra)
        children.append(server)
        clients = start_clients("ssl", pki_dir, client_count, conf=conf)
        children.extend(clients)
        run_batch(server, clients, {"op": op, "port": port}, max(2, n // 10), 60 + n)
        os.kill(server.pid, signal.SIGUSR1)  # leave start-up and warm-up out
        time.sleep(0.2)
        done = run_batch(server, clients, {"op": op, "port": port}, n, 60 + n * 0.5)
    finally:
        stop_all(children)  # SIGTERM: the server writes its profile as it ends
    return pstats.Stats(str(stats_path)), max(1, done.operations)


def profile_ours(scratch: Path, n: int, client_count: int) -> list[dict[str, object]]:
    """cProfile of our server over `n` ECDSA handshakes: where its time goes."""
    stats, handshakes = _profile(scratch, n, client_count, "ours", "hello")
    return top_functions(stats, handshakes)


def top_functions(stats: pstats.Stats, handshakes: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    table = stats.stats  # type: ignore[attr-defined]
    for (filename, line, function), (_, calls, tottime, cumtime, _) in table.items():
        rows.append({
            "function": function,
            "where": f"{_short(filename)}:{line}",
            "calls_per_handshake": calls / handshakes,
            "self_us_per_handshake": tottime / handshakes * 1e6,
            "cumulative_us_per_handshake": cumtime / handshakes * 1e6,
        })
    rows.sort(key=lambda row: -float(row["self_us_per_handshake"]))  # type: ignore[arg-type]
    return rows[:PROFILE_TOP]


def profile_appliance(scratch: Path, n: int, client_count: int) -> dict[str, object]:
    """Where the toy appliance's port-10000 time goes, per layer. Validation
    runs on the loop here (`validation_threads` 0, the sandbox's way), since
    cProfile sees only the loop's thread."""
    stats, handshakes = _profile(scratch, n, client_count, "appliance", "secret",
                                 ("--validation-threads", "0"))
    return {"layers_us_per_handshake": layers(stats, handshakes),
            "top": top_functions(stats, handshakes), "handshakes": handshakes}


LAYERS = ("trio shell and event loop", "adapter (TLSStream)", "engine logic",
          "public-key operations", "validator", "appliance bookkeeping", "other")
_PUBLIC_KEY = ("sign", "verify", "exchange", "generate")


def layer_of(filename: str, function: str) -> str | None:
    """The layer a profiled function belongs to; None for the standard library
    and built-ins, whose time belongs to whoever called them."""
    if filename == "~":
        if "cryptography" in function and any(w in function for w in _PUBLIC_KEY):
            return "public-key operations"
        return None
    for marker, layer in (("/pinata/appliance/tls_stream.py", "adapter (TLSStream)"),
                          ("/pinata/tls/", "engine logic"), ("/pinata/x509/", "validator"),
                          ("/pinata/appliance/", "appliance bookkeeping"),
                          ("/pinata/bench/", "appliance bookkeeping"),
                          ("/trio/", "trio shell and event loop"),
                          ("/outcome/", "trio shell and event loop")):
        if marker in filename:
            return layer
    return None


def layers(stats: pstats.Stats, handshakes: int) -> dict[str, float]:
    """Own time per layer, µs per handshake; the standard library's and the
    built-ins' own time is charged to their callers' layers, split as
    cProfile's caller table splits it."""
    table = stats.stats  # type: ignore[attr-defined]
    totals = dict.fromkeys(LAYERS, 0.0)

    def charge(key: tuple[str, int, str], seconds: float, depth: int) -> None:
        layer = layer_of(key[0], key[2])
        if layer is not None:
            totals[layer] += seconds
            return
        callers = table[key][4] if key in table else {}
        shares = {c: v[2] if isinstance(v, tuple) else 0.0 for c, v in callers.items()}
        whole = sum(shares.values())
        if depth > 30 or whole <= 0:
            totals["other"] += seconds
            return
        for caller, share in shares.items():
            charge(caller, seconds * share / whole, depth + 1)

    for key, (_, _, tottime, _, _) in table.items():
        charge(key, tottime, 0)
    return {layer: spent / handshakes * 1e6 for layer, spent in totals.items()}


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    if "/pinata/" in filename:
        return "pinata/" + filename.split("/pinata/", 1)[1]
    return filename


def render(result: dict[str, object]) -> str:
    rows: list[list[report.Cell]] = []
    for scenario in result["scenarios"]:  # type: ignore[attr-defined]
        ratios = {c["b"]: c["cpu_ratio_median"] for c in scenario["comparisons"]}
        for c in scenario["contenders"]:
            ratio = ratios.get(c["label"])
            rows.append([scenario["name"], c["label"], c["cpu_us_per_handshake"],
                         c["handshakes_per_second"], ratio,
                         None if ratio is None or ratio == 0 else 1 / ratio,
                         c["failed"]])
    text = report.table(
        ["scenario", "server", "server CPU µs/hs", "hs/s", "first/this CPU (median)",
         "this/first", "failed"], rows)
    floor = result.get("crypto_floor_us")
    engine = result.get("engine_alone_us")
    if isinstance(floor, dict) and isinstance(engine, dict):
        text += (f"\n\nECDSA scenario, server side, in this process: public-key operations "
                 f"alone {floor['total']:.0f} µs; our engine alone, in memory (handshake, "
                 f"request, reply, close) {engine['median']:.0f} µs")
    profile = result.get("profile")
    if isinstance(profile, list) and profile:
        text += "\n\nour server, top functions by own time (cProfile, µs per handshake):\n"
        text += report.table(["function", "where", "calls/hs", "self µs", "cumulative µs"], [
            [p["function"], p["where"], p["calls_per_handshake"], p["self_us_per_handshake"],
             p["cumulative_us_per_handshake"]] for p in profile])
    appliance = result.get("appliance_profile")
    if isinstance(appliance, dict):
        spent = appliance["layers_us_per_handshake"]
        text += ("\n\nthe toy appliance's port 10000 per layer (cProfile, own time with the "
                 "standard library and built-ins charged to their callers, validation on "
                 "the loop; µs per handshake):\n")
        text += report.table(["layer", "µs/hs", "share"], [
            [layer, us, us / max(sum(spent.values()), 1e-9)] for layer, us in spent.items()])
        text += "\n" + report.table(
            ["function", "where", "calls/hs", "self µs", "cumulative µs"],
            [[p["function"], p["where"], p["calls_per_handshake"], p["self_us_per_handshake"],
              p["cumulative_us_per_handshake"]] for p in appliance["top"]])
    return text


def main(args: argparse.Namespace, argv: list[str]) -> int:
    if getattr(args, "workers", None):
        from pinata.bench import workers  # the appliance's workers, not the engines

        return workers.main(args, argv)
    n = 4 if args.smoke else args.n
    rounds = 1 if args.smoke else args.rounds
    client_count = 1 if args.smoke else args.clients
    scratch = scratch_directory()
    try:
        chosen = scenarios(openssl_available(), importlib.util.find_spec("tlslite") is not None)
        if args.smoke:
            chosen = [s for s in chosen if s.pki == "ecdsa-p256"]
        result: dict[str, object] = {
            "smoke": args.smoke,
            "parameters": {"handshakes_per_batch": n, "rounds": rounds,
                           "client_processes": client_count,
                           "share_of_batch": SHARE},
            "scenarios": [_run_scenario(s, scratch, n, rounds, client_count) for s in chosen],
            "crypto_floor_us": crypto_floor_us(20 if args.smoke else 500),
            "engine_alone_us": engine_alone_us(write_pki("ecdsa-p256", scratch / "engine"),
                                               10 if args.smoke else 500),
        }
        if args.profile:
            result["profile"] = profile_ours(scratch, n if args.smoke else max(n, 300),
                                             client_count)
            result["appliance_profile"] = profile_appliance(
                scratch, n if args.smoke else max(n, 300), client_count)
        report.finish("handshake", argv, args.json, render(result), result)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)
    return 0
