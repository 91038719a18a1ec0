"""Test harness: an in-process appliance on ephemeral loopback ports, real peers, and a
record of everything the appliance wrote during the run.

Each `RunningAppliance` runs `serve` on its own trio loop in a thread, with
listeners pre-opened on 127.0.0.1 port 0 (so tests never collide with other
people's), and collects its log lines. Everything the appliance writes or
serves passes through `WRITTEN`; the session ends by checking the toy
secret's bytes appear nowhere in it.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import trio

from bait_ca import toy as bait_ca_toy
from bait_ca.keys import private_key_pem
from pinata.appliance import serve, toy_settings
from pinata.appliance.settings import LISTENER_NAMES, ApplianceSettings, Budgets, Limits
from pinata.appliance.state import ApplianceState

TOY = bait_ca_toy.load()
SECRET = TOY.secret_wif
WRITTEN: list[bytes] = []
_written_lock = threading.Lock()


def written(data: bytes | str) -> None:
    """Record something the appliance produced, for the session's leak check."""
    with _written_lock:
        WRITTEN.append(data.encode() if isinstance(data, str) else data)


def listening_socket(address: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((address, 0))
    sock.listen(128)
    return sock


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Refusal summaries come quickly in tests, which wait for them.
TEST_BUDGETS = replace(Budgets(), refusal_summary_interval=0.25)


def test_settings(connect_back_target: int | None = None, **limits: Any) -> ApplianceSettings:
    """The toy's settings on test terms; `limits` may name `Limits` and `Budgets` fields."""
    budget_names = set(vars(TEST_BUDGETS))
    budgets = replace(TEST_BUDGETS, **{k: v for k, v in limits.items() if k in budget_names})
    limits = {k: v for k, v in limits.items() if k not in budget_names}
    settings = replace(toy_settings(), selftalk_interval=0.0, limits=replace(Limits(), **limits),
                       budgets=budgets)
    if connect_back_target is not None:
        settings = replace(settings, ports=replace(settings.ports,
                                                   connect_back_target=connect_back_target))
    return settings


test_settings.__test__ = False  # type: ignore[attr-defined]


class RunningAppliance:
    started = 0

    def __init__(self, settings: ApplianceSettings) -> None:
        RunningAppliance.started += 1
        self.settings = settings
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.sockets = {name: listening_socket() for name in LISTENER_NAMES}
        self.ports = {name: s.getsockname()[1] for name, s in self.sockets.items()}
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.state: ApplianceState
        self._thread = threading.Thread(target=self._thread_main, daemon=True)
        self._thread.start()
        if not self._ready.wait(15) or self._error is not None:
            raise RuntimeError("the appliance did not start") from self._error

    def _write(self, line: str) -> None:
        written(line)
        with self._lock:
            self.lines.append(line)

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # surfaced by start() or stop()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self._cancel = nursery.cancel_scope
            self.state = await nursery.start(
                partial(serve, self.settings, preopened=self.sockets, write_line=self._write)
            )
            self._ready.set()

    def stop(self) -> None:
        if self._thread.is_alive():
            trio.from_thread.run_sync(self._cancel.cancel, trio_token=self.token)
            self._thread.join(15)
        assert not self._thread.is_alive()
        if self._error is not None:
            raise self._error

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn` on the appliance's loop (state is only touched there)."""
        return trio.from_thread.run_sync(fn, *args, trio_token=self.token)

    def run_async(self, fn: Callable[..., Any], *args: Any) -> Any:
        return trio.from_thread.run(fn, *args, trio_token=self.token)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            lambda: self.state.counters.to_json(datetime.now(UTC))
        )
        return result

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(line) for line in self.lines]

    def wait_for_record(self, predicate: Callable[[dict[str, Any]], bool],
                        timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records():
                if predicate(record):
                    return record
            time.sleep(0.02)
        raise AssertionError(f"no such record; have {self.records()[-5:]}")

    def refusal_summary(self, limit: str, timeout: float = 15.0) -> dict[str, Any]:
        """The first summary line of refusals by `limit`."""
        line = self.wait_for_record(
            lambda r: r.get("refused", {}).get("limit") == limit, timeout)
        summary: dict[str, Any] = line["refused"]
        return summary

    def record_from(self, listener: str, source_port: int) -> dict[str, Any]:
        return self.wait_for_record(
            lambda r: r.get("listener") == listener and r.get("peer", {}).get("port") == source_port
        )


# --- real peers ----------------------------------------------------------------------


def toy_path(name: str) -> str:
    return str(TOY.path(name))


def write_pem(tmp: Path, stem: str, chain_pem: bytes, key: Any) -> tuple[str, str]:
    cert, keyfile = tmp / f"{stem}.pem", tmp / f"{stem}.key"
    cert.write_bytes(chain_pem)
    keyfile.write_bytes(private_key_pem(key))
    return str(cert), str(keyfile)


def client_context(cert: str | None = None, key: str | None = None,
                   version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3) -> ssl.SSLContext:
    """A Python client speaking only `version`, trusting the toy anchor."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = context.maximum_version = version
    context.check_hostname = False
    context.load_verify_locations(toy_path("anchor.pem"))
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def server_context(cert: str, key: str,
                   version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3) -> ssl.SSLContext:
    """A Python server speaking only `version`, requiring a chain to the toy anchor."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = context.maximum_version = version
    context.load_cert_chain(cert, key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(toy_path("anchor.pem"))
    return context


def read_all(tls: ssl.SSLSocket, limit: int = 1 << 16) -> bytes:
    """Application data until the peer closes; a TLS alert raises ssl.SSLError."""
    data = b""
    while len(data) < limit:
        try:
            chunk = tls.recv(4096)
        except ssl.SSLZeroReturnError:
            break
        if not chunk:
            break
        data += chunk
    return data
