"""`pinata bench`: what our TLS costs, side by side with Python's ssl in the same run.

Subcommands (each prints a table and writes JSON; `--smoke` runs it in
seconds so that CI keeps it from rotting; nothing here asserts a time):

- `handshake`: server CPU per mutual-auth TLS 1.3 handshake (`handshake`)
- `throughput`: one connection moving bulk data server to client (`throughput`)
- `memory`: resident memory at rest and per stalled handshake (`memory`)
- `startup`: process start to the first served connection (`startup`)
- `validation`: microseconds per X.509 validation (`validation`)
- `abuse`: honest clients' success and latency under each attack (`abuse`)
- `budgets`: calls and bytes per handshake, bytes per stalled handshake,
  against the budgets CI enforces (`budgets`; `--write` re-measures them)

Everything runs on loopback, on ephemeral ports, with bounded loops; every
process a benchmark starts is stopped before it returns (`procs`).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from pathlib import Path

SUBCOMMANDS = ("handshake", "throughput", "memory", "startup", "validation", "abuse",
               "budgets")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pinata bench", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="benchmark", required=True)

    def common(name: str, help_text: str, rounds: int) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--smoke", action="store_true",
                         help="a seconds-long run with tiny counts (for CI)")
        sub.add_argument("--json", type=Path,
                         help=f"where to write the JSON (default: pinata-bench-{name}.json)")
        sub.add_argument("--rounds", type=int, default=rounds,
                         help=f"alternating rounds (default {rounds})")
        return sub

    hs = common("handshake", "server CPU per mutual-auth handshake", 7)
    hs.add_argument("--n", type=int, default=200, help="handshakes per batch (default 200)")
    hs.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    hs.add_argument("--profile", action="store_true",
                    help="also profile our server (cProfile) and list the top functions")
    hs.add_argument("--workers", metavar="N,M,...",
                    help="instead: the appliance (pinata serve) with each worker count, "
                         "e.g. 1,2 (client processes default 4)")
    tp = common("throughput", "bulk data over one connection", 5)
    tp.add_argument("--mib", type=int, default=256, help="MiB per connection (default 256)")
    mem = common("memory", "resident memory at rest and with stalled handshakes", 1)
    mem.add_argument("--levels", default="1000,10000",
                     help="concurrent stalled handshakes to measure at (default 1000,10000)")
    mem.add_argument("--trace-allocations", action="store_true",
                     help="also list the source lines that grew (tracemalloc; inflates RSS)")
    common("startup", "start of process to first served connection", 5)
    val = common("validation", "µs per X.509 validation, ours against pyca", 7)
    val.add_argument("--n", type=int, default=2000, help="validations per batch (default 2000)")
    abuse = common("abuse", "honest clients under hostile load", 1)
    abuse.add_argument("--seconds", type=float, default=20.0,
                       help="seconds each attack lasts (default 20)")
    abuse.add_argument("--scenarios", default="all",
                       help="comma-separated scenarios (default all: rest, stall, knocks, "
                            "huge_hello, expensive_chains, stuck_log)")
    abuse.add_argument("--target", choices=("plain", "sandboxed", "both"), default="both",
                       help="the plain appliance, the sandboxed toy image, or both (default)")
    budgets = common("budgets", "calls and bytes per handshake against the CI budgets", 1)
    budgets.add_argument("--write", action="store_true",
                         help="write the figures measured as the new budgets "
                              "(tests/bench/budgets.toml)")
    return top


def main(argv: Sequence[str]) -> int:
    arguments = list(argv)
    args = parser().parse_args(arguments)
    if args.rounds < 1:
        parser().error("--rounds must be at least 1")
    module = importlib.import_module(f"pinata.bench.{args.benchmark}")
    status: int = module.main(args, arguments)
    return status
