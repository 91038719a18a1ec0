"""`pinata bench memory`: the appliance's resident memory at rest, and with
1,000 and 10,000 concurrent connections stalled mid-handshake (ClientHello
sent, nothing more). Bytes per stalled connection = (RSS then - RSS at rest)
/ connections. RSS is read from /proc once the appliance's CPU is idle."""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from typing import Any

from pinata.bench import report
from pinata.bench.procs import Child, ChildFailed, worker_argv

SETTLE_LIMIT = 10.0
MIB = 1 << 20


def settle(child: Child) -> None:
    """Wait until the child has used under 1% of a CPU for 0.3 s (bounded)."""
    deadline = time.monotonic() + SETTLE_LIMIT
    previous = child.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = child.cpu_seconds()
        if now - previous < 0.003:
            return
        previous = now


def allocations(appliance: Child) -> dict[str, Any]:
    """Ask the appliance (SIGUSR1) for the allocation sites (lines, files) that
    grew, and the growth of all Python allocations together."""
    os.kill(appliance.pid, signal.SIGUSR1)
    answer: dict[str, Any] = json.loads(
        appliance.read_until(lambda line: line.startswith('{"allocations"'), 60.0))
    return answer


def _listening_port(line: str) -> int:
    doc = json.loads(line)
    port = doc["listening"]["tls_server"]["port"]
    if not isinstance(port, int):
        raise ChildFailed(f"no tls_server port in {line[:200]!r}")
    return port


def render(result: dict[str, object]) -> str:
    at_rest = result["rss_at_rest_mib"]
    assert isinstance(at_rest, float)
    rows: list[list[report.Cell]] = [["at rest", 0, at_rest, None, None]]
    for level in result["levels"]:  # type: ignore[attr-defined]
        rows.append([f"{level['connections']:,} stalled", level["answered"], level["rss_mib"],
                     level["bytes_per_connection"], level["bytes_per_connection"] / 1024])
    text = report.table(["state", "answered by the appliance", "RSS MiB", "bytes/connection",
                         "KiB/connection"], rows)
    last = result["levels"][-1] if result["levels"] else {}  # type: ignore[index]
    if last.get("allocations"):
        text += (f"\n\nwhere it grew with {last['connections']:,} stalled connections "
                 f"(tracemalloc, Python allocations only, "
                 f"{last['python_bytes_per_connection']:,.0f} bytes/connection in all):\n")
        text += "\n\n".join(
            report.table([title, "bytes/connection", "blocks"], [
                [site["where"], site["bytes_per_connection"], site["blocks"]]
                for site in last[key]])
            for key, title in (("by_file", "source file"), ("allocations", "source line")))
    return text


def main(args: argparse.Namespace, argv: list[str]) -> int:
    levels = [10, 50] if args.smoke else sorted(int(x) for x in args.levels.split(","))
    children: list[Child] = []
    try:
        trace = ["--trace-allocations"] if args.trace_allocations else []
        appliance = Child(worker_argv("appliance", "--max-connections", str(max(levels) + 64),
                                      *trace))
        children.append(appliance)
        port = _listening_port(
            appliance.read_until(lambda line: line.startswith('{"listening"'), 60.0))
        settle(appliance)
        at_rest = appliance.rss_bytes()
        if trace:
            allocations(appliance)  # the baseline
        staller = Child(worker_argv("staller", "--port", str(port)))
        children.append(staller)
        staller.read_json(30.0)
        measured: list[dict[str, object]] = []
        for level in levels:
            answer = staller.ask({"op": "stall", "total": level}, timeout=120 + level * 0.1)
            settle(appliance)
            rss = appliance.rss_bytes()
            measured.append({
                "connections": level,
                "open": answer.get("open"),
                "answered": answer.get("answered"),
                "seconds_to_stall": answer.get("seconds"),
                "rss_bytes": rss,
                "rss_mib": rss / MIB,
                "bytes_per_connection": (rss - at_rest) / level,
            })
            if trace:
                grown = allocations(appliance)
                measured[-1]["python_bytes_per_connection"] = grown["total_bytes"] / level
                for key in ("allocations", "by_file"):
                    measured[-1][key] = [{**site, "bytes_per_connection": site["bytes"] / level}
                                         for site in grown[key]]
        result: dict[str, object] = {
            "smoke": args.smoke,
            "parameters": {"levels": levels},
            "rss_at_rest_bytes": at_rest,
            "rss_at_rest_mib": at_rest / MIB,
            "levels": measured,
        }
    finally:
        for child in reversed(children):
            child.stop()
    report.finish("memory", argv, args.json, render(result), result)
    return 0
