"""Starting the servers and clients a comparison needs, and timing one batch.

A batch is N operations spread over the client processes; its cost is the
server process's CPU time across the batch (read from /proc before and
after), which the clients' own work cannot inflate, and its rate is N over
the batch's wall time, which they can.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pinata.bench.procs import Child, ChildFailed, worker_argv

SERVER_KINDS = ("ours", "ssl", "openssl", "tlslite", "plain", "appliance", "ssl-secret")
OPENSSL_SUITES = {
    "aes128gcm": "TLS_AES_128_GCM_SHA256",
    "chacha20": "TLS_CHACHA20_POLY1305_SHA256",
}
START_TIMEOUT = 30.0


def openssl_conf(directory: Path, suite: str, groups: str = "X25519") -> Path:
    """An OpenSSL configuration that narrows every context in a process to one
    TLS 1.3 suite and to `groups` (X25519): Python 3.11's ssl has no API for either."""
    path = directory / f"openssl-{suite}-{groups.replace(':', '-')}.cnf"
    path.write_text(
        "openssl_conf = default_conf\n"
        "[default_conf]\nssl_conf = ssl_sect\n"
        "[ssl_sect]\nsystem_default = system_default_sect\n"
        "[system_default_sect]\n"
        f"Ciphersuites = {OPENSSL_SUITES[suite]}\n"
        f"Groups = {groups}\n"
    )
    return path


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def start_server(
    kind: str,
    pki_dir: Path,
    *,
    suite: str | None = None,
    conf: Path | None = None,
    profile: Path | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[Child, int]:
    """A server of `kind` on an ephemeral loopback port; (child, port)."""
    env = {"OPENSSL_CONF": str(conf)} if conf is not None else None
    if kind == "openssl":
        argv = [
            "openssl", "s_server", "-accept", "127.0.0.1:0",
            "-cert", str(pki_dir / "server.pem"), "-key", str(pki_dir / "server.key"),
            "-CAfile", str(pki_dir / "anchor.pem"), "-Verify", "1",
            "-tls1_3", "-num_tickets", "0", "-rev",
        ]
        if suite is not None:
            argv += ["-ciphersuites", OPENSSL_SUITES[suite]]
        child = Child(argv, env=env, merge_stderr=True)
        try:
            line = child.read_until(lambda text: text.startswith("ACCEPT"), START_TIMEOUT)
            port = int(line.rpartition(":")[2])
        except (ChildFailed, ValueError):
            child.stop()
            raise
        child.drain()
        return child, port
    args = [] if kind == "plain" else ["--pki", str(pki_dir)]
    if suite is not None and kind == "ours":
        args += ["--suite", suite]
    if profile is not None:
        args += ["--profile", str(profile)]
    child = Child(worker_argv(f"server-{kind}", *args, *extra), env=env)
    try:
        ready = child.read_json(START_TIMEOUT)
        listening = ready["port"]
        if not isinstance(listening, int):
            raise ChildFailed(f"no port in {ready}")
    except BaseException:
        child.stop()
        raise
    return child, listening


def start_clients(kind: str, pki_dir: Path, count: int, *, conf: Path | None = None,
                  group: str = "x25519") -> list[Child]:
    """`count` client processes of `kind` ("ssl", "ssl-tls12", "ours" or "plain"),
    ready for commands."""
    env = {"OPENSSL_CONF": str(conf)} if conf is not None else None
    args = [] if kind == "plain" else ["--pki", str(pki_dir)]
    args += ["--group", group] if kind == "ours" else []
    role = kind
    if kind == "ssl-tls12":  # Python's ssl with maximum_version TLS 1.2
        role, args = "ssl", [*args, "--tls12"]
    started: list[Child] = []
    try:
        for _ in range(count):
            started.append(Child(worker_argv(f"client-{role}", *args), env=env))
        for child in started:
            child.read_json(START_TIMEOUT)
    except BaseException:
        for child in started:
            child.stop()
        raise
    return started


@dataclass(frozen=True)
class Batch:
    operations: int  # that succeeded
    failed: int
    server_cpu: float  # seconds
    wall: float  # seconds
    detail: str  # what the clients saw negotiated
    first_error: str

    @property
    def cpu_us_per_operation(self) -> float:
        return self.server_cpu / self.operations * 1e6 if self.operations else float("nan")

    @property
    def per_second(self) -> float:
        return self.operations / self.wall if self.operations and self.wall > 0 else float("nan")

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "cpu_us_per_operation": self.cpu_us_per_operation,
                "per_second": self.per_second}


def run_batch(server: Child, clients: list[Child], command: dict[str, object], count: int,
              timeout: float) -> Batch:
    """`count` operations (`command` with its share of `count` as "n"), timed."""
    shares = [count // len(clients) + (1 if i < count % len(clients) else 0)
              for i in range(len(clients))]
    busy = [(c, n) for c, n in zip(clients, shares, strict=True) if n > 0]
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    for client, n in busy:
        client.send_json({**command, "n": n})
    answers = [client.read_json(timeout) for client, _ in busy]
    wall = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu_before
    ok = sum(_int(a.get("ok")) for a in answers)
    failed = sum(_int(a.get("failed")) for a in answers)
    errors = [str(a.get("first_error")) for a in answers if a.get("first_error")]
    details = [str(a.get("detail")) for a in answers if a.get("detail")]
    return Batch(ok, failed, cpu, wall, details[0] if details else "",
                 errors[0] if errors else "")


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def stop_all(children: list[Child]) -> None:
    for child in children:
        child.stop()


def scratch_directory(base: Path | None = None) -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="pinata-bench-", dir=base))


def cpu_count() -> int:
    return os.cpu_count() or 1
