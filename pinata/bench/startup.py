"""`pinata bench startup`: from process start to the first served connection.

Measured for `pinata toy` (as a user runs it) and for the sandboxed toy
unikernel (`python -m unikernel launch`, landlock and seccomp closed around
the appliance before it serves). The clock starts just before the process
is spawned and stops when an HTTP request to the page is answered: a TCP
connect alone can succeed against a listen backlog before the appliance
accepts anything (the unikernel's tender binds the sockets early).

Both start with their bytecode cached, as a second start on a user's machine
does (and the image, which ships compiled bytecode): the children read and
write `.pyc` files under a scratch `PYTHONPYCACHEPREFIX`, filled by one
unmeasured start of each. Without that, where `PYTHONDONTWRITEBYTECODE` is set
(as on this machine) and no `__pycache__` sits beside the sources, every start
compiles our sources again: about 90 ms of `compile` here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import socket
import sys
import time
from pathlib import Path

from bait_ca import toy
from pinata.appliance.settings import Ports
from pinata.bench import report
from pinata.bench.memory import settle
from pinata.bench.procs import Child, ChildFailed, process_cpu_seconds, process_rss_bytes
from pinata.bench.runs import scratch_directory

REPO = Path(__file__).resolve().parents[2]
START_LIMIT = 30.0
POLL = 0.002
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def free_port_offset(attempts: int = 50) -> int:
    """An offset at which every toy port is free on loopback right now."""
    base = Ports()
    ports = [base.tls_server, base.connect_back, base.tls_client, base.http, base.https,
             base.connect_back_target]
    for _ in range(attempts):
        offset = random.randrange(1000, 65535 - max(ports))
        probes: list[socket.socket] = []
        try:
            for port in ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                probes.append(s)
                s.bind(("127.0.0.1", port + offset))
            return offset
        except OSError:
            continue
        finally:
            for s in probes:
                s.close()
    raise ChildFailed("no free port offset for the toy")


def first_response(port: int, started: float) -> tuple[float, float]:
    """Seconds from `started` to the first TCP connect, and to the first HTTP reply."""
    deadline = started + START_LIMIT
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=START_LIMIT)
        except OSError:
            time.sleep(POLL)
            continue
        connected = time.monotonic() - started
        with s:
            try:
                s.sendall(REQUEST)
                head = s.recv(16)
            except OSError:
                head = b""
        if head.startswith(b"HTTP/1."):
            return connected, time.monotonic() - started
        time.sleep(POLL)
    raise ChildFailed(f"no HTTP answer on port {port} within {START_LIMIT:.0f} s")


def bytecode_env(pycache: Path) -> dict[str, str]:
    """The children's environment: bytecode cached under `pycache`, written
    even where the inherited environment forbids it."""
    # An empty value counts as unset (Python's command-line documentation).
    return {"PYTHONPYCACHEPREFIX": str(pycache), "PYTHONDONTWRITEBYTECODE": ""}


def toy_once(env: dict[str, str]) -> dict[str, float]:
    offset = free_port_offset()
    child = Child([sys.executable, "-m", "pinata.cli", "toy", "--port-offset", str(offset)],
                  env=env)
    try:
        child.drain()
        connected, answered = first_response(Ports().http + offset, child.started)
        cpu = child.cpu_seconds()
        settle(child)
        return {"connect_s": connected, "first_response_s": answered, "cpu_s": cpu,
                "rss_bytes": child.rss_bytes()}
    finally:
        child.stop()


def unikernel_manifest(directory: Path) -> Path:
    toy_ca = toy.load()
    listeners = "\n".join(f'{role} = {{ address = "127.0.0.1", port = 0 }}'
                          for role in ("tls_server", "connect_back", "tls_client", "http",
                                       "https"))
    files = "\n".join(f'{key} = "{toy_ca.path(name)}"' for key, name in (
        ("anchor", "anchor.pem"), ("server_chain", "server.pem"), ("server_key", "server.key"),
        ("client_chain", "client.pem"), ("client_key", "client.key")))
    path = directory / "manifest.toml"
    path.write_text(
        'entry = "appliance"\n'
        f"[listeners]\n{listeners}\n"
        "[connect_back]\nport = 40001\n"
        "[selftalk]\ninterval = 0\n"
        "[limits]\nmemory_mib = 1024\nopen_files = 512\nmax_connections = 128\n"
        f'[boot]\ncredentials = "files"\n{files}\n'
        f'secret = "{toy_ca.path("secret.wif")}"\n'
        f'bitcoin_address = "{toy_ca.p2pkh_address}"\n'
    )
    return path


def unikernel_once(manifest: Path, env: dict[str, str]) -> dict[str, float]:
    child = Child([sys.executable, "-m", "unikernel", "launch", "--manifest", str(manifest)],
                  cwd=REPO, env=env)
    try:
        line = child.read_until(lambda text: '"listening"' in text, START_LIMIT)
        event = json.loads(line)
        child.drain()
        connected, answered = first_response(int(event["ports"]["http"]), child.started)
        # The tender imports and binds before it forks the guest: both processes' CPU.
        cpu = child.cpu_seconds() + process_cpu_seconds(int(event["pid"]))
        settle(child)
        return {"connect_s": connected, "first_response_s": answered, "cpu_s": cpu,
                "rss_bytes": process_rss_bytes(int(event["pid"]))}
    finally:
        child.stop()


def _summary(runs: list[dict[str, float]]) -> dict[str, object]:
    return {
        "first_response_ms": report.median([r["first_response_s"] * 1e3 for r in runs]),
        "connect_ms": report.median([r["connect_s"] * 1e3 for r in runs]),
        # CPU time to the first answer: what a loaded machine's waits do not inflate.
        "first_response_cpu_ms": report.median([r["cpu_s"] * 1e3 for r in runs]),
        "rss_mib_after_start": report.median([r["rss_bytes"] / (1 << 20) for r in runs]),
        "runs": runs,
    }


def render(result: dict[str, object]) -> str:
    rows: list[list[report.Cell]] = []
    for name, entry in result["targets"].items():  # type: ignore[attr-defined]
        if entry.get("measured"):
            rows.append([name, entry["first_response_ms"], entry["first_response_cpu_ms"],
                         entry["connect_ms"], entry["rss_mib_after_start"], ""])
        else:
            rows.append([name, None, None, None, None, f"not measured: {entry['reason']}"])
    return report.table(["process", "first HTTP reply ms (median)", "CPU ms to it",
                         "first connect ms", "RSS MiB after start", "note"], rows)


def _measure(rounds: int, manifest: Path, pycache: Path) -> dict[str, dict[str, object]]:
    """Both processes, alternating within each round, bytecode cached."""
    env = bytecode_env(pycache)
    # The unmeasured starts that fill the bytecode cache.
    toy_once(env)
    with contextlib.suppress(ChildFailed, OSError, ValueError, KeyError):
        unikernel_once(manifest, env)
    toy_runs: list[dict[str, float]] = []
    kernel_runs: list[dict[str, float]] = []
    kernel_error = ""
    for _ in range(rounds):
        toy_runs.append(toy_once(env))
        if not kernel_error:
            try:
                kernel_runs.append(unikernel_once(manifest, env))
            except (ChildFailed, OSError, ValueError, KeyError) as exc:
                kernel_error = str(exc)[:300]
    targets: dict[str, dict[str, object]] = {"pinata toy": {"measured": True,
                                                            **_summary(toy_runs)}}
    if kernel_error:
        targets["toy unikernel (sandboxed)"] = {"measured": False, "reason": kernel_error}
    else:
        targets["toy unikernel (sandboxed)"] = {"measured": True, **_summary(kernel_runs)}
    return targets


def main(args: argparse.Namespace, argv: list[str]) -> int:
    rounds = 1 if args.smoke else args.rounds
    scratch = scratch_directory()
    try:
        targets = _measure(rounds, unikernel_manifest(scratch), scratch / "pycache")
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)
    result: dict[str, object] = {"smoke": args.smoke, "parameters": {"rounds": rounds},
                                 "targets": targets}
    report.finish("startup", argv, args.json, render(result), result)
    return 0
