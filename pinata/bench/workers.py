"""`pinata bench handshake --workers 1,2`: the real appliance (`pinata serve`)
with each worker count, under the same handshake load, in the same run.

Each connection is what a player's is on port 10000: a full TLS 1.3
handshake with a client certificate that the appliance validates, the secret
released, close. One appliance per worker count runs for the whole
benchmark; batches alternate between them (A B B A ...), and for each we
read the CPU time of every process of the appliance (the parent and all its
workers, validation threads included) from /proc. Reported per worker
count: handshakes per second, server CPU per handshake, and the appliance's
total CPU use (CPU seconds per wall second, in cores), since on a small
machine the clients compete with the workers for the same cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import ssl
import sys
import time
from pathlib import Path

from pinata.bench import report, wire
from pinata.bench.clients import ssl_client_context
from pinata.bench.creds import write_pki
from pinata.bench.procs import Child, ChildFailed, process_cpu_seconds
from pinata.bench.runs import scratch_directory

START_TIMEOUT = 60.0
SECRET = b"the benchmark's secret, not a key"
MAX_WORKERS = 64
# One benchmark network (127.0.0.0/24) does all the handshakes: the per-network
# budgets meant for strangers would measure themselves, not the workers.
BUDGETS = """[budgets]
validation_cpu_per_second = 1000.0
validation_cpu_burst = 1000.0
max_connections_per_network = 1024
[limits]
max_connections_per_address = 1024
"""


def parse_counts(text: str) -> list[int]:
    """"1,2" -> [1, 2]; each from 1 to MAX_WORKERS. Raises ValueError."""
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or any(not 1 <= c <= MAX_WORKERS for c in counts):
        raise ValueError(f"worker counts must be from 1 to {MAX_WORKERS}")
    return counts


def _config(directory: Path, pki: Path, workers: int) -> Path:
    (directory / "secret").write_bytes(SECRET)
    ports = "\n".join(f"{name} = 0" for name in
                      ("tls_server", "connect_back", "tls_client", "http", "https"))
    path = directory / f"workers-{workers}.toml"
    path.write_text(f"""bitcoin_address = "bench"
secret_file = "secret"
selftalk_interval = 0
workers = {workers}
[ports]
{ports}
[credentials]
anchor = "{pki}/anchor.pem"
server_chain = "{pki}/server.pem"
server_key = "{pki}/server.key"
client_chain = "{pki}/client.pem"
client_key = "{pki}/client.key"
{BUDGETS}""")
    return path


class Appliance:
    """`pinata serve` with `workers` workers, listening on a free port."""

    def __init__(self, config: Path, workers: int) -> None:
        self.workers = workers
        self.child = Child([sys.executable, "-m", "pinata.cli", "serve", "--config", str(config)])
        try:
            line = self.child.read_until(lambda text: '"listening"' in text, START_TIMEOUT)
            self.port = int(json.loads(line)["listening"]["tls_server"]["port"])
            deadline = time.monotonic() + START_TIMEOUT
            while len(self.pids()) < 1 + (workers if workers > 1 else 0):
                if time.monotonic() > deadline:
                    raise ChildFailed("workers did not start")
                time.sleep(0.05)
        except BaseException:
            self.child.stop()
            raise
        self.child.drain()

    def pids(self) -> list[int]:
        """The appliance's processes: the serving process, or the parent and its workers."""
        try:
            with open(f"/proc/{self.child.pid}/task/{self.child.pid}/children",
                      encoding="ascii") as f:
                children = [int(pid) for pid in f.read().split()]
        except OSError:
            children = []
        return [self.child.pid, *children]

    def cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(pid) for pid in self.pids())


def client_main(argv: list[str]) -> int:
    """A client process: waits for "n" lines on stdin, answers with a JSON result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--pki", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    context = ssl_client_context(args.pki)
    context.check_hostname = False
    wire.announce({"ready": True})
    for line in sys.stdin:
        count = int(json.loads(line)["n"])
        ok = failed = 0
        first_error = ""
        started = time.perf_counter()
        for _ in range(count):
            try:
                ok += _release(context, args.port)
            except (OSError, ssl.SSLError) as exc:
                failed += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
        wire.announce({"ok": ok, "failed": failed, "wall": time.perf_counter() - started,
                       "first_error": first_error})
    return 0


def _release(context: ssl.SSLContext, port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=wire.IO_TIMEOUT) as raw:
        # As the engine benchmark's clients: no flight waits on Nagle.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _read_secret(context.wrap_socket(raw))


def _read_secret(tls: ssl.SSLSocket) -> int:
    with tls:
        data = b""
        while len(data) <= len(SECRET):
            try:
                chunk = tls.recv(4096)
            except ssl.SSLZeroReturnError:
                break
            if not chunk:
                break
            data += chunk
    return 1 if data == SECRET else 0


def _batch(appliance: Appliance, clients: list[Child], n: int) -> dict[str, float]:
    shares = [n // len(clients) + (1 if i < n % len(clients) else 0) for i in range(len(clients))]
    cpu, client_cpu = appliance.cpu_seconds(), sum(c.cpu_seconds() for c in clients)
    started = time.perf_counter()
    for client, share in zip(clients, shares, strict=True):
        client.send_json({"n": share})
    answers = [client.read_json(60 + n * 0.5) for client in clients]
    wall = time.perf_counter() - started
    cpu = appliance.cpu_seconds() - cpu
    client_cpu = sum(c.cpu_seconds() for c in clients) - client_cpu
    ok = sum(int(str(a.get("ok", 0))) for a in answers)
    return {"handshakes": ok, "failed": sum(int(str(a.get("failed", 0))) for a in answers),
            "wall": wall, "server_cpu": cpu, "client_cpu": client_cpu,
            "per_second": ok / wall if wall > 0 else float("nan"),
            "cpu_us_per_handshake": cpu / ok * 1e6 if ok else float("nan"),
            "server_cores": cpu / wall if wall > 0 else float("nan"),
            "client_cores": client_cpu / wall if wall > 0 else float("nan")}


def measure(counts: list[int], n: int, rounds: int, client_count: int,
            scratch: Path) -> dict[str, object]:
    """Every worker count's appliance under alternating batches of `n` handshakes."""
    pki = write_pki("ecdsa-p256", scratch / "pki")
    children: list[Child] = []
    appliances: dict[int, Appliance] = {}
    clients: dict[int, list[Child]] = {}
    try:
        for count in counts:
            appliances[count] = Appliance(_config(scratch, pki, count), count)
            children.append(appliances[count].child)
            clients[count] = [Child([sys.executable, "-m", "pinata.bench.workers", "--pki",
                                     str(pki), "--port", str(appliances[count].port)])
                              for _ in range(client_count)]
            children.extend(clients[count])
            for client in clients[count]:
                client.read_json(START_TIMEOUT)
        batches: dict[int, list[dict[str, float]]] = {c: [] for c in counts}
        for count in counts:  # warm-up
            _batch(appliances[count], clients[count], max(2, n // 10))
        for r in range(rounds):
            for count in (counts if r % 2 == 0 else counts[::-1]):
                batches[count].append(_batch(appliances[count], clients[count], n))
        return {"cores": len(os.sched_getaffinity(0)), "clients": client_count,
                "handshakes_per_batch": n, "rounds": rounds,
                "workers": [_summary(count, batches[count]) for count in counts]}
    finally:
        for child in children:
            child.stop()


def _summary(count: int, batches: list[dict[str, float]]) -> dict[str, object]:
    def med(key: str) -> float:
        return report.median([b[key] for b in batches if b["handshakes"]])

    return {"workers": count, "handshakes_per_second": med("per_second"),
            "cpu_us_per_handshake": med("cpu_us_per_handshake"),
            "server_cores": med("server_cores"), "client_cores": med("client_cores"),
            "handshakes": sum(int(b["handshakes"]) for b in batches),
            "failed": sum(int(b["failed"]) for b in batches), "batches": batches}


def render(result: dict[str, object]) -> str:
    rows: list[list[report.Cell]] = []
    workers = result["workers"]
    assert isinstance(workers, list)
    base = workers[0]["handshakes_per_second"]
    for w in workers:
        rate = w["handshakes_per_second"]
        rows.append([w["workers"], rate, rate / base if base else None,
                     w["cpu_us_per_handshake"], w["server_cores"], w["client_cores"],
                     w["failed"]])
    return (f"pinata serve, {result['cores']} cores available, {result['clients']} client "
            "processes on the same machine\n" + report.table(
                ["workers", "hs/s", "hs/s vs first", "server CPU µs/hs",
                 "appliance CPU (cores)", "clients CPU (cores)", "failed"], rows))


def main(args: argparse.Namespace, argv: list[str]) -> int:
    """`pinata bench handshake --workers 1,2`."""
    try:
        counts = parse_counts(args.workers)
    except ValueError as exc:
        print(f"pinata bench handshake: --workers: {exc}", file=sys.stderr)
        return 2
    n = 8 if args.smoke else args.n
    rounds = 1 if args.smoke else args.rounds
    client_count = 1 if args.smoke else args.clients
    scratch = scratch_directory()
    try:
        result = {"smoke": args.smoke, **measure(counts, n, rounds, client_count, scratch)}
        report.finish("handshake-workers", argv, args.json, render(result), result)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)
    return 0


if __name__ == "__main__":
    sys.exit(client_main(sys.argv[1:]))
