"""Test harness: manifests on ephemeral loopback ports, and the launcher as a subprocess.

Every listener binds 127.0.0.1 port 0 and the launcher prints the ports it
got, so these tests run beside anyone else's. A `Launched` unikernel is
always stopped (SIGTERM, then SIGKILL) and its output kept for assertions.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "bait_ca" / "toy"


def toy_address() -> str:
    for line in (TOY / "address.txt").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "p2pkh":
            return value.strip()
    raise AssertionError("the toy CA has no p2pkh address")


def manifest_text(
    *,
    entry: str = "probe",
    connect_back_port: int = 40001,
    credentials: str = "files",
    secret: Path = TOY / "secret.wif",
    selftalk: int = 0,
    memory_mib: int = 1024,
    open_files: int = 512,
    max_connections: int = 128,
    boot_dir: Path = TOY,
) -> str:
    files = ""
    if credentials == "files":
        files = "\n".join(
            f'{name} = "{boot_dir / filename}"'
            for name, filename in (
                ("anchor", "anchor.pem"),
                ("server_chain", "server.pem"),
                ("server_key", "server.key"),
                ("client_chain", "client.pem"),
                ("client_key", "client.key"),
            )
        )
    listeners = "\n".join(
        f'{role} = {{ address = "127.0.0.1", port = 0 }}'
        for role in ("tls_server", "connect_back", "tls_client", "http", "https")
    )
    return f"""entry = "{entry}"
[listeners]
{listeners}
[connect_back]
port = {connect_back_port}
[selftalk]
interval = {selftalk}
[limits]
memory_mib = {memory_mib}
open_files = {open_files}
max_connections = {max_connections}
[boot]
credentials = "{credentials}"
{files}
secret = "{secret}"
bitcoin_address = "{toy_address()}"
"""


def write_manifest(directory: Path, **fields: Any) -> Path:
    path = directory / "manifest.toml"
    path.write_text(manifest_text(**fields))
    return path


def listening_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


class Launched:
    """`python -m unikernel launch` (or any command printing the launcher's events)."""

    def __init__(self, command: list[str], *, user: int | None = None) -> None:
        self.lines: list[str] = []
        self.stderr = ""
        self._cond = threading.Condition()
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            user=user,
            group=user,
            extra_groups=[] if user is not None else None,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    @classmethod
    def manifest(cls, manifest: Path, *extra: str) -> Launched:
        return cls([sys.executable, "-m", "unikernel", "launch", "--manifest", str(manifest),
                    *extra])

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        out = []
        with self._cond:
            lines = list(self.lines)
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and (kind is None or doc.get("event") == kind):
                out.append(doc)
        return out

    def wait_event(self, kind: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = None
                for line in self.lines:
                    try:
                        doc = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(doc, dict) and doc.get("event") == kind:
                        found = doc
                        break
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no {kind} event; output {self.lines[-5:]}, stderr {self.stderr[-500:]}"
                    )
                self._cond.wait(min(left, 0.2))

    def ports(self) -> dict[str, int]:
        ports: dict[str, int] = self.wait_event("listening")["ports"]
        return ports

    def knock(self) -> None:
        """Connect to the connect-back port and hang up, as an initiator does: the probe's
        connect_back attempt dials the address that knocked."""
        port = self.ports()["connect_back"]
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass

    def finish(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for the launcher to end by itself; its exit event."""
        try:
            self.process.wait(timeout)
        finally:
            self.kill()
        self._reader.join(5)
        self._err_reader.join(5)
        return self.wait_event("exit", timeout=1)

    def stop(self) -> dict[str, Any]:
        """SIGTERM the tender (which forwards it) and return the exit event."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.finish()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def alive(self) -> bool:
        return self.process.poll() is None

