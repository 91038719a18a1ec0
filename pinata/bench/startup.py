"""`pinata bench startup`: from process start to the first served connection.

Measured for `pinata toy` (as a user runs it) and for the sandboxed toy
unikernel (landlock and seccomp closed around the appliance before it
serves), twice: launched from this checkout (`python -m unikernel launch`,
the environment's interpreter and site, the software list scanned), and as
`make toy` runs it, the toy image built from this checkout and unpacked
(`python -m unikernel run`: `-I -S -B`, its own import path, its compiled
bytecode and `software.json`). The clock starts just before the process
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
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bait_ca import toy
from pinata.appliance.settings import Ports
from pinata.bench import report
from pinata.bench.memory import settle
from pinata.bench.procs import Child, ChildFailed, process_cpu_seconds
from pinata.bench.runs import scratch_directory
from unikernel import image

REPO = Path(__file__).resolve().parents[2]
START_LIMIT = 30.0
POLL = 0.002
# What a sandboxed start can fail with (the sandbox unavailable here, say).
SANDBOX_FAILURES = (ChildFailed, OSError, ValueError, KeyError)
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def memory_bytes(pid: int) -> dict[str, int]:
    """A process's resident set (VmRSS) and its anonymous part (RssAnon), in bytes.

    The anonymous part is what compares the sandboxed guest with `pinata toy`:
    a forked guest shares the tender's file-backed pages (the interpreter, both
    OpenSSLs) but counts only those it touched since the fork, while a process
    that loaded them itself counts all it touched while loading.
    """
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                found[key] = int(value.split()[0]) * 1024
    if len(found) != 2:
        raise ChildFailed(f"process {pid} has no VmRSS or RssAnon")
    return {"rss_bytes": found["VmRSS"], "anon_bytes": found["RssAnon"]}


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
                **memory_bytes(child.pid)}
    finally:
        child.stop()


def unikernel_manifest(directory: Path, toy_files: Path = toy.DIRECTORY) -> Path:
    """The toy's manifest on ephemeral ports, without self-talk, reading the toy's files
    from `toy_files` (the checkout's, or an unpacked image's)."""
    listeners = "\n".join(f'{role} = {{ address = "127.0.0.1", port = 0 }}'
                          for role in ("tls_server", "connect_back", "tls_client", "http",
                                       "https"))
    files = "\n".join(f'{key} = "{toy_files / name}"' for key, name in (
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
        f'secret = "{toy_files / "secret.wif"}"\n'
        f'bitcoin_address = "{toy.addresses(toy_files)["p2pkh"]}"\n'
    )
    return path


def toy_image(directory: Path) -> Path:
    """The toy image built from this checkout (locked wheels from the usual cache) and
    unpacked under `directory`; returns the unpacked tree. Raises ImageError or OSError."""
    built = image.build("toy", directory / "out", cache=image.WHEEL_CACHE, source=REPO)
    return image.unpack(built.path, directory / "image")


def unikernel_once(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    child = Child(argv, cwd=REPO, env=env)
    try:
        line = child.read_until(lambda text: '"listening"' in text, START_LIMIT)
        event = json.loads(line)
        child.drain()
        connected, answered = first_response(int(event["ports"]["http"]), child.started)
        # The tender imports and binds before it forks the guest: both processes' CPU.
        cpu = child.cpu_seconds() + process_cpu_seconds(int(event["pid"]))
        settle(child)
        return {"connect_s": connected, "first_response_s": answered, "cpu_s": cpu,
                **memory_bytes(int(event["pid"]))}
    finally:
        child.stop()


def _summary(runs: list[dict[str, float]]) -> dict[str, object]:
    return {
        "first_response_ms": report.median([r["first_response_s"] * 1e3 for r in runs]),
        "connect_ms": report.median([r["connect_s"] * 1e3 for r in runs]),
        # CPU time to the first answer: what a loaded machine's waits do not inflate.
        "first_response_cpu_ms": report.median([r["cpu_s"] * 1e3 for r in runs]),
        "rss_mib_after_start": report.median([r["rss_bytes"] / (1 << 20) for r in runs]),
        "anon_mib_after_start": report.median([r["anon_bytes"] / (1 << 20) for r in runs]),
        "runs": runs,
    }


def render(result: dict[str, object]) -> str:
    rows: list[list[report.Cell]] = []
    for name, entry in result["targets"].items():  # type: ignore[attr-defined]
        if entry.get("measured"):
            rows.append([name, entry["first_response_ms"], entry["first_response_cpu_ms"],
                         entry["connect_ms"], entry["rss_mib_after_start"],
                         entry["anon_mib_after_start"], ""])
        else:
            rows.append([name, None, None, None, None, None,
                         f"not measured: {entry['reason']}"])
    return report.table(["process", "first HTTP reply ms (median)", "CPU ms to it",
                         "first connect ms", "RSS MiB after start", "of it anonymous MiB",
                         "note"], rows)


# The three processes measured, by the name the report gives them.
TOY, FROM_CHECKOUT, IMAGE = ("pinata toy", "toy unikernel (sandboxed)",
                             "toy image, sandboxed, as make toy runs it")
Once = Callable[[], dict[str, float]]


def _starts(scratch: Path, env: dict[str, str]) -> dict[str, Once | str]:
    """How to start each process once; a string where one cannot start (the reason)."""
    launch = [sys.executable, "-m", "unikernel", "launch", "--manifest",
              str(unikernel_manifest(scratch))]
    starts: dict[str, Once | str] = {
        TOY: lambda: toy_once(env),
        FROM_CHECKOUT: lambda: unikernel_once(launch, env),
    }
    try:
        tree = toy_image(scratch / "image")
    except (image.ImageError, OSError, subprocess.SubprocessError) as exc:
        starts[IMAGE] = f"the toy image could not be built: {exc}"[:300]
    else:
        manifest = unikernel_manifest(scratch / "image", tree / image.TOY_DIR)
        command = image.boot_command(tree, manifest)
        starts[IMAGE] = lambda: unikernel_once(command, env)
    return starts


def _measure(rounds: int, scratch: Path) -> dict[str, dict[str, object]]:
    """Every process, alternating within each round, bytecode cached. `pinata toy`
    must start; a sandboxed start that fails is reported with its reason."""
    starts = _starts(scratch, bytecode_env(scratch / "pycache"))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in starts}
    errors = {name: start for name, start in starts.items() if isinstance(start, str)}
    # The unmeasured starts that fill the bytecode cache.
    for name, start in starts.items():
        if not isinstance(start, str):
            with contextlib.suppress(*(() if name == TOY else SANDBOX_FAILURES)):
                start()
    for _ in range(rounds):
        for name, start in starts.items():
            if isinstance(start, str) or name in errors:
                continue
            try:
                runs[name].append(start())
            except SANDBOX_FAILURES as exc:
                if name == TOY:
                    raise
                errors[name] = str(exc)[:300]
    return {name: ({"measured": False, "reason": errors[name]} if name in errors
                   else {"measured": True, **_summary(runs[name])}) for name in starts}


def main(args: argparse.Namespace, argv: list[str]) -> int:
    rounds = 1 if args.smoke else args.rounds
    scratch = scratch_directory()
    try:
        targets = _measure(rounds, scratch)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)
    result: dict[str, object] = {"smoke": args.smoke, "parameters": {"rounds": rounds},
                                 "targets": targets}
    report.finish("startup", argv, args.json, render(result), result)
    return 0
