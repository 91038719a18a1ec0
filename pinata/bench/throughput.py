"""`pinata bench throughput`: one connection moving bulk data server to client.

Ours against Python's ssl on trio, each suite in turn (AES-128-GCM, then
ChaCha20-Poly1305), both servers writing the same 256 KiB application
chunks; the client is Python's ssl in its own process, reading into a 1 MiB
buffer. Reported: MB/s (10^6 bytes) of wall time, server and client CPU per
MB (the client's share shows when the client, not the server, is what limits
the wall time), and the server's minor page faults per MB (fresh memory
touched per record written: load does not change it).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from pinata.bench import report
from pinata.bench.creds import write_pki
from pinata.bench.procs import Child
from pinata.bench.runs import (
    Batch,
    openssl_conf,
    run_batch,
    scratch_directory,
    start_clients,
    start_server,
    stop_all,
)

SUITES = (("AES-128-GCM", "aes128gcm"), ("ChaCha20-Poly1305", "chacha20"))
CONTENDERS = (("ours on trio", "ours"), ("ssl on trio", "ssl"))


@dataclass(frozen=True)
class _Costs:
    """What one batch cost besides the server CPU that `Batch` holds."""

    client_cpu: float  # seconds
    server_minor_faults: int


def _minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        # The command name (field 2) may hold spaces; count from the ')' after it.
        return int(f.read().rpartition(")")[2].split()[7])  # field 10, minflt


def _summary(batches: list[tuple[Batch, _Costs]], size: int) -> dict[str, object]:
    ok = [(b, c) for b, c in batches if b.operations]
    mb = size / 1e6
    return {
        "mb_per_second": report.median([mb / b.wall for b, _ in ok]),
        "server_cpu_us_per_mb": report.median([b.server_cpu / mb * 1e6 for b, _ in ok]),
        "client_cpu_us_per_mb": report.median([c.client_cpu / mb * 1e6 for _, c in ok]),
        "server_minor_faults_per_mb": report.median(
            [c.server_minor_faults / mb for _, c in ok]),
        "failed": sum(b.failed for b, _ in batches),
        "negotiated": next((b.detail for b, _ in batches if b.detail), ""),
        "first_error": next((b.first_error for b, _ in batches if b.first_error), ""),
        "runs": [{**b.to_json(), "client_cpu": c.client_cpu,
                  "server_minor_faults": c.server_minor_faults} for b, c in batches],
    }


def _run_suite(scratch: Path, pki_dir: Path, label: str, suite: str, size: int,
               rounds: int) -> dict[str, object]:
    conf = openssl_conf(scratch, suite)
    children: list[Child] = []
    try:
        servers = {}
        for _, kind in CONTENDERS:
            servers[kind] = start_server(kind, pki_dir, suite=suite, conf=conf)
            children.append(servers[kind][0])
        clients = start_clients("ssl", pki_dir, 1, conf=conf)
        children.extend(clients)

        def run(kind: str, count: int) -> tuple[Batch, _Costs]:
            server, port = servers[kind]
            client_cpu, faults = clients[0].cpu_seconds(), _minor_faults(server.pid)
            batch = run_batch(server, clients, {"op": "bulk", "port": port, "bytes": count}, 1,
                              timeout=120 + count / 1e6)
            return batch, _Costs(clients[0].cpu_seconds() - client_cpu,
                                 _minor_faults(server.pid) - faults)

        for _, kind in CONTENDERS:  # warm-up
            run(kind, min(size, 8 << 20))
        batches: dict[str, list[tuple[Batch, _Costs]]] = {kind: [] for _, kind in CONTENDERS}
        ratios: list[float] = []
        for r in range(rounds):
            order = CONTENDERS if r % 2 == 0 else CONTENDERS[::-1]
            got = {kind: run(kind, size) for _, kind in order}
            for kind, batch in got.items():
                batches[kind].append(batch)
            ours, theirs = got["ours"][0], got["ssl"][0]
            if ours.operations and theirs.operations:
                ratios.append(theirs.wall / ours.wall)  # ours' speed over theirs
        return {
            "suite": label,
            "contenders": [{"label": name, **_summary(batches[kind], size)}
                           for name, kind in CONTENDERS],
            "speed_ratio_ours_over_ssl_median": report.median(ratios),
            "speed_ratios": ratios,
        }
    finally:
        stop_all(children)


def render(result: dict[str, object]) -> str:
    rows: list[list[report.Cell]] = []
    for suite in result["suites"]:  # type: ignore[attr-defined]
        for c in suite["contenders"]:
            is_ours = c["label"].startswith("ours")
            rows.append([suite["suite"], c["label"], c["mb_per_second"],
                         c["server_cpu_us_per_mb"], c["client_cpu_us_per_mb"],
                         c["server_minor_faults_per_mb"],
                         suite["speed_ratio_ours_over_ssl_median"] if is_ours else None,
                         c["failed"]])
    return report.table(["suite", "server", "MB/s", "server CPU µs/MB",
                         "client CPU µs/MB", "server faults/MB",
                         "ours/ssl speed (median)", "failed"], rows)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    size = (4 if args.smoke else args.mib) << 20
    rounds = 1 if args.smoke else args.rounds
    scratch = scratch_directory()
    try:
        pki_dir = write_pki("ecdsa-p256", scratch / "pki")
        result: dict[str, object] = {
            "smoke": args.smoke,
            "parameters": {"bytes_per_connection": size, "rounds": rounds},
            "suites": [_run_suite(scratch, pki_dir, label, suite, size, rounds)
                       for label, suite in SUITES],
        }
        report.finish("throughput", argv, args.json, render(result), result)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)
    return 0
