"""`pinata toy` as a real process on loopback, moved by a port offset that is free.

Tests of `pinata try` and of the page in a browser run against it exactly as
a researcher would (`pinata toy --port-offset N`). The offset is chosen by
binding every port it would use first, so parallel runs do not collide; the
process is stopped (and waited for) when the test is done.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

BASE_PORTS = {"tls_server": 10000, "connect_back": 10001, "tls_client": 10002,
              "http": 8080, "https": 8443, "connect_back_target": 40001}
START_TIMEOUT = 30.0
ATTEMPTS = 40


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_offset() -> int:
    """An offset under which every toy port (and 40001) is free right now."""
    for _ in range(ATTEMPTS):
        offset = random.randrange(1000, 20000)
        if all(_free(base + offset) for base in BASE_PORTS.values()):
            return offset
    raise RuntimeError("no free port offset found")


@dataclass
class ToyProcess:
    offset: int
    process: subprocess.Popen[bytes]

    @property
    def ports(self) -> dict[str, int]:
        return {name: base + self.offset for name, base in BASE_PORTS.items()}

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[scheme]}{path}"

    def get_json(self, path: str) -> object:
        with urllib.request.urlopen(self.url(path), timeout=10) as response:
            return json.loads(response.read())

    def wait_for_selftalk(self, timeout: float = 30.0) -> dict[str, object]:
        """The first self-talk report (the toy runs one shortly after start)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reports = self.get_json("/selftalk.json")
            if isinstance(reports, list) and reports:
                report: dict[str, object] = reports[-1]
                return report
            time.sleep(0.2)
        raise AssertionError("the toy ran no self-talk")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_toy() -> ToyProcess:
    """`pinata toy --port-offset N`, once its page answers."""
    offset = free_offset()
    process = subprocess.Popen(
        [sys.executable, "-m", "pinata.cli", "toy", "--port-offset", str(offset)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    toy = ToyProcess(offset, process)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pinata toy exited with {process.returncode}")
        try:
            toy.get_json("/stats")
            return toy
        except OSError:
            time.sleep(0.1)
    toy.stop()
    raise RuntimeError("pinata toy did not answer in time")
