"""`pinata bench abuse`: honest players against one attacker doing his worst.

The plain appliance (`pinata toy`'s settings and default budgets, on
ephemeral ports) runs in one process, the attacker (`attacks`) in another;
honest clients in this process use the toy researcher credentials on all
three bounty ports and fetch the page, from their own networks
(127.1.N.1), while each scenario runs. Per scenario it prints the honest
success rate, p50/p99 honest latency, the appliance's CPU and RSS before,
during (peak) and after, and the log bytes written. The sandboxed toy is
measured too (`--target sandboxed|both`), through the launcher as `make toy`
runs it; `--smoke` runs the plain appliance only.

Targets (issue 11): at least 99 % honest success and p99 at most 1 s in
every scenario, RSS back within 10 % of rest after the flood, log growth at
most 1 MB per minute of flood. Nothing here asserts them: the report says.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pinata.bench import report
from pinata.bench.attacks import SCENARIOS, expensive_chain
from pinata.bench.procs import Child, process_cpu_seconds, process_rss_bytes, worker_argv

MIB = 1 << 20
HONEST_TIMEOUT = 10.0
HONEST_KINDS = ("tls_server", "tls_client", "connect_back", "page")
HONEST_NETWORKS = 8
REST_AFTER = 5.0


# --- the appliance, in its own process -----------------------------------------------


def run_appliance(connect_back_target: int) -> None:
    """The toy appliance on ephemeral ports, logging to standard output."""
    from pinata.appliance import run, toy_settings
    from pinata.appliance.settings import Ports
    from pinata.bench.procs import raise_open_file_limit

    raise_open_file_limit()
    settings = replace(toy_settings(), selftalk_interval=0.0,
                       ports=Ports(0, 0, 0, 0, 0, connect_back_target))
    run(settings)


@dataclass
class Target:
    """The appliance under attack: its process (for CPU and RSS), ports and log."""

    label: str
    child: Child
    pid: int
    ports: dict[str, int]

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return process_rss_bytes(self.pid)


def start_plain(target_port: int) -> Target:
    child = Child(worker_argv("abuse-appliance", "--port", str(target_port)))
    listening = json.loads(child.read_until(
        lambda line: line.startswith('{"listening"'), 60.0))["listening"]
    ports = {name: int(where["port"]) for name, where in listening.items()}
    return Target("plain", child, child.pid, ports)


def start_sandboxed(target_port: int, scratch: Path) -> Target:
    """The toy through the sandboxed launcher (`make toy`'s way), on ephemeral ports."""
    from pinata.bench.startup import REPO, unikernel_manifest

    manifest = unikernel_manifest(scratch)
    manifest.write_text(manifest.read_text().replace("port = 40001", f"port = {target_port}"))
    child = Child([sys.executable, "-m", "unikernel", "launch", "--manifest", str(manifest)],
                  cwd=REPO)
    event = json.loads(child.read_until(lambda text: '"event": "listening"' in text, 60.0))
    ports = {name: int(port) for name, port in event["ports"].items()}
    return Target("sandboxed", child, int(event["pid"]), ports)


class LogCounter:
    """Reads the appliance's standard output (its log) and counts the bytes, until
    told to stop reading (the `stuck_log` scenario), which fills the pipe."""

    def __init__(self, child: Child) -> None:
        assert child.process.stdout is not None
        self._fd = child.process.stdout.fileno()
        self.bytes = 0
        self.reading = threading.Event()
        self.reading.set()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while True:
                self.reading.wait()
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    return
                self.bytes += len(chunk)


# --- honest clients ----------------------------------------------------------------


@dataclass
class Honest:
    ports: dict[str, int]
    target: int
    secret: bytes
    client: ssl.SSLContext
    server: ssl.SSLContext
    listeners: dict[str, socket.socket] = field(default_factory=dict)

    def source(self, i: int) -> str:
        return f"127.1.{i % HONEST_NETWORKS}.1"

    def _connect(self, port: int, source: str) -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=HONEST_TIMEOUT,
                                        source_address=(source, 0))

    def _read_secret(self, tls: ssl.SSLSocket) -> bool:
        data = b""
        with contextlib.suppress(ssl.SSLZeroReturnError):
            while len(data) < 4096:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data == self.secret

    def tls_server(self, source: str) -> bool:
        with self._connect(self.ports["tls_server"], source) as raw, \
                self.client.wrap_socket(raw) as tls:
            return self._read_secret(tls)

    def tls_client(self, source: str) -> bool:
        with self._connect(self.ports["tls_client"], source) as raw, \
                self.server.wrap_socket(raw, server_side=True) as tls:
            return self._read_secret(tls)

    def connect_back(self, source: str) -> bool:
        listener = self.listeners.get(source)
        if listener is None:
            listener = self.listeners[source] = socket.create_server((source, self.target))
            listener.settimeout(HONEST_TIMEOUT)
        with self._connect(self.ports["connect_back"], source):
            pass
        dialled, _ = listener.accept()
        dialled.settimeout(HONEST_TIMEOUT)
        with dialled, self.server.wrap_socket(dialled, server_side=True) as tls:
            return self._read_secret(tls)

    def page(self, source: str) -> bool:
        with self._connect(self.ports["http"], source) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: pinata\r\nConnection: close\r\n\r\n")
            return raw.recv(12) == b"HTTP/1.1 200"

    def close(self) -> None:
        for listener in self.listeners.values():
            listener.close()


def _honest_loop(honest: Honest, kind: str, stop: threading.Event, gap: float,
                 results: list[tuple[str, bool, float, str]]) -> None:
    run: Callable[[str], bool] = getattr(honest, kind)
    i = HONEST_KINDS.index(kind)
    while not stop.is_set():
        started = time.monotonic()
        error = ""
        try:
            ok = run(honest.source(i))
        except (OSError, ssl.SSLError) as exc:
            ok, error = False, type(exc).__name__
        results.append((kind, ok, time.monotonic() - started, error))
        i += 1
        stop.wait(gap)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- one scenario ------------------------------------------------------------------


def _settle(child: Target, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    previous = child.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = child.cpu_seconds()
        if now - previous < 0.006:
            return
        previous = now


def _stats(ports: dict[str, int]) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", ports["http"]), timeout=HONEST_TIMEOUT,
                                  source_address=("127.1.200.1", 0)) as raw:
        raw.sendall(b"GET /stats HTTP/1.1\r\nHost: pinata\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := raw.recv(65536):
            data += chunk
    document: dict[str, Any] = json.loads(data.partition(b"\r\n\r\n")[2])
    return document


def _honest_summary(results: list[tuple[str, bool, float, str]]) -> dict[str, Any]:
    latencies = [latency for _, ok, latency, _ in results if ok]
    ok = sum(1 for _, good, _, _ in results if good)
    return {
        "honest_attempts": len(results),
        "honest_ok": ok,
        "honest_success": ok / len(results) if results else None,
        "honest_by_kind": {kind: [sum(1 for k, g, _, _ in results if k == kind and g),
                                  sum(1 for k, _, _, _ in results if k == kind)]
                           for kind in HONEST_KINDS},
        "p99_s_by_kind": {kind: _percentile([t for k, g, t, _ in results if k == kind and g],
                                            0.99) for kind in HONEST_KINDS},
        "honest_errors": sorted({e for _, good, _, e in results if not good and e}),
        "p50_s": _percentile(latencies, 0.50),
        "p99_s": _percentile(latencies, 0.99),
    }


def run_scenario(scenario: str, appliance: Target, log: LogCounter, honest: Honest,
                 seconds: float, scale: float, chain: tuple[str, str],
                 rest_after: float) -> dict[str, Any]:
    _settle(appliance)
    rss_before = appliance.rss_bytes()
    stats_before = _stats(honest.ports)
    cpu_before, log_before = appliance.cpu_seconds(), log.bytes
    if scenario == "stuck_log":
        log.reading.clear()
    attacker = Child(worker_argv("abuse-attacker", scenario, str(seconds), str(scale),
                                 json.dumps(honest.ports), *chain))
    results: list[tuple[str, bool, float, str]] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_honest_loop, args=(honest, kind, stop, 0.25, results))
               for kind in HONEST_KINDS]
    rss_peak = rss_before
    window_started = time.monotonic()
    try:
        time.sleep(min(1.0, seconds / 4))  # the attack gets going first
        for thread in threads:
            thread.start()
        started = time.monotonic()
        while attacker.alive() and time.monotonic() - started < seconds + 30:
            rss_peak = max(rss_peak, appliance.rss_bytes())
            time.sleep(0.25)
        stop.set()
        for thread in threads:
            thread.join(HONEST_TIMEOUT * 3)
        cpu_during = appliance.cpu_seconds() - cpu_before
        window = time.monotonic() - window_started
        tally = attacker.read_json(5.0) if not attacker.alive() else {"tally": "timed out"}
    finally:
        stop.set()
        attacker.stop()
        log.reading.set()
    flood_log = log.bytes - log_before
    time.sleep(rest_after)
    _settle(appliance)
    rss_after = appliance.rss_bytes()
    stats_after = _stats(honest.ports)
    return {
        "target": appliance.label,
        "scenario": scenario,
        "seconds": seconds,
        **_honest_summary(results),
        "cpu_percent": 100 * cpu_during / window,
        "rss_mib": [rss_before / MIB, rss_peak / MIB, rss_after / MIB],
        "log_bytes": flood_log,
        "log_mb_per_minute": flood_log / 1e6 / (seconds / 60),
        "log_lines_dropped": stats_after["log_lines_dropped"] - stats_before["log_lines_dropped"],
        "limits_hit": {k: v - stats_before["limits_hit"].get(k, 0)
                       for k, v in stats_after["limits_hit"].items()},
        "attacker": tally.get("tally"),
    }


# --- does `cryptography` release the GIL while it verifies? -----------------------


def _spin(seconds: float) -> int:
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        count += 1
    return count


def gil_release(bits: int, seconds: float) -> dict[str, float]:
    """A pure-Python loop's speed beside a thread doing RSA verifications with a
    huge exponent, over its speed alone. Near 1 (on a free core): the GIL is
    released during verification, so validating in a worker thread leaves the
    event loop running; near 0.5 or below: it is not."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from pinata.bench.attacks import huge_exponent_key

    key = huge_exponent_key(bits)
    signature = key.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    public = key.public_key()
    started = time.perf_counter()
    public.verify(signature, b"m", padding.PKCS1v15(), hashes.SHA256())
    one = time.perf_counter() - started
    stop = threading.Event()

    def verify() -> None:
        while not stop.is_set():
            public.verify(signature, b"m", padding.PKCS1v15(), hashes.SHA256())

    alone = _spin(seconds)
    thread = threading.Thread(target=verify)
    thread.start()
    try:
        beside = _spin(seconds)
    finally:
        stop.set()
        thread.join()
    return {"verify_ms": one * 1000, "loop_speed_beside_verifier": beside / alone}


# --- the command ----------------------------------------------------------------------


def _contexts(toy: Any) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    client.check_hostname = False
    client.load_verify_locations(str(toy.path("anchor.pem")))
    client.load_cert_chain(str(toy.path("researcher-client.pem")),
                           str(toy.path("researcher-client.key")))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1_3
    server.load_cert_chain(str(toy.path("researcher-server.pem")),
                           str(toy.path("researcher-server.key")))
    return client, server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.1.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def render(result: dict[str, Any]) -> str:
    rows: list[list[report.Cell]] = []
    for s in result["scenarios"]:
        success = s["honest_success"]
        rows.append([
            f"{s['target']}: {s['scenario']}",
            f"{100 * success:.1f} %" if success is not None else "-",
            f"{s['honest_ok']}/{s['honest_attempts']}",
            None if s["p50_s"] is None else s["p50_s"] * 1000,
            None if s["p99_s"] is None else s["p99_s"] * 1000,
            s["cpu_percent"], " / ".join(f"{x:.1f}" for x in s["rss_mib"]),
            s["log_mb_per_minute"], s["log_lines_dropped"],
        ])
    gil = result["gil"]
    return report.table(["scenario", "honest success", "ok/tried", "p50 ms", "p99 ms",
                         "CPU %", "RSS MiB before/peak/after", "log MB/min",
                         "log lines dropped"], rows) + (
        f"\n\nGIL: one RSA verification with a {gil['bits']}-bit exponent takes "
        f"{gil['verify_ms']:.1f} ms; a Python loop beside a thread doing them keeps "
        f"{100 * gil['loop_speed_beside_verifier']:.0f} % of its speed.")


def main(args: argparse.Namespace, argv: list[str]) -> int:
    from bait_ca import toy as bait_ca_toy

    toy = bait_ca_toy.load()
    scenarios = list(SCENARIOS if args.scenarios == "all" else args.scenarios.split(","))
    seconds = 2.0 if args.smoke else float(args.seconds)
    scale = 0.05 if args.smoke else 1.0
    client, server = _contexts(toy)
    targets = ["plain"] if args.smoke or args.target == "plain" else (
        ["sandboxed"] if args.target == "sandboxed" else ["plain", "sandboxed"])
    measured: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        chain = expensive_chain(toy.anchor, Path(tmp), bits=2048 if args.smoke else 3072)
        for label in targets:
            port = _free_port()
            appliance = (start_plain(port) if label == "plain"
                         else start_sandboxed(port, Path(tmp)))
            honest = Honest(appliance.ports, port, toy.secret_wif, client, server)
            try:
                log = LogCounter(appliance.child)
                for scenario in scenarios:
                    measured.append(run_scenario(scenario, appliance, log, honest, seconds,
                                                 scale, chain, 1.0 if args.smoke else REST_AFTER))
            finally:
                honest.close()
                appliance.child.stop()
    bits = 2048 if args.smoke else 3072
    result: dict[str, Any] = {
        "gil": {"bits": bits - 1, **gil_release(bits, 0.2 if args.smoke else 1.0)},
        "smoke": args.smoke,
        "parameters": {"seconds": seconds, "scale": scale, "scenarios": scenarios,
                       "targets": targets},
        "targets": {"honest_success": 0.99, "p99_s": 1.0, "rss_after_over_rest": 1.10,
                    "log_mb_per_minute": 1.0},
        "scenarios": measured,
    }
    report.finish("abuse", argv, args.json, render(result), result)
    return 0
