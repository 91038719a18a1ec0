"""`workers = 2` in `pinata serve`: both workers serve, every worker shows the
whole appliance's counters, and a killed worker is restarted and counted
while the other keeps serving. Real processes, on loopback."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pinata.appliance.server import PUBLISH_INTERVAL
from pinata.appliance.settings import MAX_WORKERS
from pinata.appliance.shared_counters import RECORDS_KEPT, SharedCounters, SnapshotTooLarge
from pinata.appliance.stats import Counters
from pinata.appliance.workers import BACKOFF_FIRST, BACKOFF_MAX, STABLE_AFTER, restart_delay
from tests.appliance.harness import client_context, read_all, toy_path, written
from tests.appliance.test_cli import start
from tests.appliance.test_settings import GOOD, write_config
from tests.pids import ended

SECRET = b"the secret"  # what write_config puts in the secret file
TIMEOUT = 20.0


def _config(tmp: Path, workers: int | str, selftalk_interval: float = 0) -> Path:
    ports = "\n".join(f"{name} = 0" for name in
                      ("tls_server", "connect_back", "tls_client", "http", "https"))
    body = GOOD.split("[ports]")[0] + f"[ports]\n{ports}\n[credentials]" + \
        GOOD.split("[credentials]")[1]
    body = body.replace("selftalk_interval = 0", f"selftalk_interval = {selftalk_interval}")
    return write_config(tmp, f"workers = {json.dumps(workers)}\n" + body)


@dataclass
class Appliance:
    process: subprocess.Popen[bytes]
    lines: queue.Queue[dict[str, object]] = field(default_factory=queue.Queue)
    pending: list[dict[str, object]] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)

    def read_stdout(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            written(raw)
            try:
                self.lines.put(json.loads(raw))
            except ValueError:
                continue

    def next_event(self, kind: str, event: str | None = None) -> dict[str, object]:
        """The first line not yet taken holding `kind` (and, for worker events, that
        `event`); the parent and the workers share standard output, so lines of
        other kinds may come first and are left for their own callers."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for index, line in enumerate(self.pending):
                value = line.get(kind)
                if isinstance(value, dict) and (event is None or value.get("event") == event):
                    del self.pending[index]
                    return value
            try:
                self.pending.append(
                    self.lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no {kind} {event} line within {TIMEOUT} s") from None

    def stats(self) -> dict[str, object]:
        url = f"http://127.0.0.1:{self.ports['http']}/stats"
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read()
        result: dict[str, object] = json.loads(page)
        return result

    def get(self, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.ports['http']}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), error.read()

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.ports['http']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())

    def release(self) -> bytes:
        return self.release_from()[0]

    def release_from(self) -> tuple[bytes, int]:
        """The secret, and the source port the connection used."""
        context = client_context(toy_path("researcher-client.pem"),
                                 toy_path("researcher-client.key"))
        with socket.create_connection(("127.0.0.1", self.ports["tls_server"]),
                                      timeout=10) as raw:
            source = int(raw.getsockname()[1])
            with context.wrap_socket(raw) as tls:
                return read_all(tls), source

    def settled_stats(self, released: int) -> dict[str, object]:
        """/stats once it counts `released` releases, and every worker has published
        since (a worker's own counts are live, the others' as of their last publication)."""
        deadline = time.monotonic() + TIMEOUT
        stats = self.stats()
        while stats["secrets_released_to_stranger"] != released and time.monotonic() < deadline:
            time.sleep(0.05)
            stats = self.stats()
        time.sleep(3 * PUBLISH_INTERVAL)
        return stats


@pytest.fixture
def selftalk_interval() -> float:
    return 0


@pytest.fixture
def two_workers(tmp_path: Path,
                selftalk_interval: float) -> Iterator[tuple[Appliance, dict[int, int]]]:
    config = _config(tmp_path, 2, selftalk_interval)
    appliance = Appliance(start(["serve", "--config", str(config)]))
    threading.Thread(target=appliance.read_stdout, daemon=True).start()
    try:
        pids: dict[int, int] = {}
        for _ in range(2):
            started = appliance.next_event("workers", "started")
            pids[int(str(started["worker"]))] = int(str(started["pid"]))
        listening = appliance.next_event("listening")
        appliance.ports = {k: int(v["port"]) for k, v in listening.items()}
        # The other worker's listening line says the same ports.
        assert {k: int(v["port"]) for k, v in appliance.next_event("listening").items()} \
            == appliance.ports
        yield appliance, pids
    finally:
        assert appliance.process.stdout is not None
        appliance.process.send_signal(signal.SIGTERM)
        code = appliance.process.wait(timeout=15)
        assert appliance.process.stderr is not None
        err = appliance.process.stderr.read()
        written(err)
        assert code == 0, err
        assert b"Traceback" not in err


def test_two_workers_both_serve_and_each_shows_the_whole_appliance(
    two_workers: tuple[Appliance, dict[int, int]],
) -> None:
    appliance, pids = two_workers
    assert sorted(pids) == [0, 1] and len(set(pids.values())) == 2
    rounds = 40
    for _ in range(rounds):
        assert appliance.release() == SECRET
    stats = appliance.settled_stats(rounds)
    workers = stats["workers"]
    assert isinstance(workers, dict)
    assert workers["count"] == 2 and workers["restarts"] == 0
    by_worker = workers["connections"]
    assert isinstance(by_worker, dict) and set(by_worker) == {"0", "1"}
    # SO_REUSEPORT hashes each connection's addresses: 40 of them land on both.
    assert all(n >= 1 for n in by_worker.values()), by_worker
    listeners = stats["listeners"]
    assert isinstance(listeners, dict)
    assert listeners["tls_server"]["connections"] == rounds
    # Whichever worker answers, it shows the sum (each GET may land on either).
    for _ in range(10):
        again = appliance.stats()
        assert again["secrets_released_to_stranger"] == rounds
        assert again["listeners"]["tls_server"]["connections"] == rounds  # type: ignore[index]
    metrics = appliance.metrics()
    assert f"pinata_secrets_released_total {rounds}\n" in metrics
    assert "pinata_workers 2\n" in metrics and "pinata_worker_restarts_total 0\n" in metrics


def test_a_killed_worker_is_restarted_and_counted_while_the_other_serves(
    two_workers: tuple[Appliance, dict[int, int]],
) -> None:
    appliance, pids = two_workers
    for _ in range(10):
        assert appliance.release() == SECRET
    before = appliance.settled_stats(10)
    assert before["secrets_released_to_stranger"] == 10
    os.kill(pids[1], signal.SIGKILL)
    died = appliance.next_event("workers", "died")
    assert died["worker"] == 1 and died["status"] == "SIGKILL"
    # Until the restart, every connection goes to worker 0, and is served.
    for _ in range(10):
        assert appliance.release() == SECRET
    restarted = appliance.next_event("workers", "started")
    assert restarted["worker"] == 1 and restarted["pid"] != pids[1]
    for _ in range(10):
        assert appliance.release() == SECRET
    # The dead worker's counts survive it (its slot is read by its successor).
    stats = appliance.settled_stats(30)
    assert stats["secrets_released_to_stranger"] == 30
    workers = stats["workers"]
    assert isinstance(workers, dict) and workers["restarts"] == 1
    assert "pinata_worker_restarts_total 1\n" in appliance.metrics()


def test_any_worker_finds_a_connection_another_worker_served(
    two_workers: tuple[Appliance, dict[int, int]],
) -> None:
    appliance, _ = two_workers
    sources = []
    for _ in range(6):
        secret, source = appliance.release_from()
        assert secret == SECRET
        sources.append(source)
    # The record lands just after the close; then every lookup, whichever worker
    # answers it, finds it.
    deadline = time.monotonic() + TIMEOUT
    while appliance.get(f"/connection?port={sources[-1]}&listener=tls_server")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for source in sources:
        for _ in range(4):
            status, body = appliance.get(f"/connection?port={source}&listener=tls_server")
            assert status == 200, body
            record = json.loads(body)
            assert record["peer"]["port"] == source
            assert record["outcome"] == "secret released"
    # The 30 connections (the lookups included) were spread over both workers.
    time.sleep(3 * PUBLISH_INTERVAL)
    by_worker = appliance.stats()["workers"]["connections"]  # type: ignore[index]
    served = {k for k, n in by_worker.items() if n}
    assert served == {"0", "1"}, by_worker


@pytest.mark.parametrize("selftalk_interval", [1.0])
def test_each_worker_self_talks_whichever_worker_serves_the_legs(
    two_workers: tuple[Appliance, dict[int, int]],
) -> None:
    appliance, _ = two_workers
    deadline = time.monotonic() + TIMEOUT
    runs: dict[str, int] = {}
    while runs.get("completed", 0) < 6:
        assert time.monotonic() < deadline, runs
        time.sleep(0.2)
        runs = appliance.stats()["selftalk_runs"]  # type: ignore[assignment]
    assert runs.get("failed", 0) == 0, runs
    for _ in range(6):
        status, body = appliance.get("/selftalk.json")
        assert status == 200
        reports = json.loads(body)
        assert reports and all(report["both_released"] for report in reports), reports


def test_auto_is_the_cores_available(tmp_path: Path) -> None:
    from pinata.appliance.settings import load_config

    settings = load_config(_config(tmp_path, "auto"))
    assert settings.workers == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("bad", [0, -1, 257, "many", True, 1.5])
def test_a_bad_worker_count_is_refused_naming_the_field(tmp_path: Path, bad: object) -> None:
    from pinata.appliance.settings import ConfigError, load_config

    with pytest.raises(ConfigError) as refused:
        load_config(_config(tmp_path, bad))  # type: ignore[arg-type]
    assert refused.value.field == "workers"


def test_the_shared_segment_carries_snapshots_across_a_fork() -> None:
    shared = SharedCounters(2, started=123.0)
    assert shared.read(0) is None and shared.restarts() == [0, 0]
    pid = os.fork()
    if pid == 0:
        counters = Counters(started=datetime.now(UTC))
        counters.opened("tls_server")
        counters.http_response(200)
        shared.publish(1, counters.snapshot())
        os._exit(0)
    os.waitpid(pid, 0)
    seen = shared.read(1)
    assert seen is not None
    total = Counters(started=datetime.now(UTC))
    total.add(seen)
    assert total.connections["tls_server"] == 1 and total.active["tls_server"] == 1
    assert total.http_responses[200] == 1
    restarted = Counters(started=datetime.now(UTC))
    restarted.add(seen, active=False)
    assert restarted.connections["tls_server"] == 1 and restarted.active["tls_server"] == 0
    shared.note_restart(1)
    assert shared.restarts() == [0, 1] and shared.started == 123.0


def test_a_snapshot_larger_than_its_slot_is_refused_whole() -> None:
    shared = SharedCounters(1, started=0.0, slot_bytes=64)
    shared.publish(0, {"a": 1})
    with pytest.raises(SnapshotTooLarge):
        shared.publish(0, {"a": "x" * 100})
    assert shared.read(0) == {"a": 1}


def test_restart_backoff_doubles_while_deaths_come_quickly_up_to_its_cap() -> None:
    assert [restart_delay(n) for n in range(10)] == [
        0.1, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]


def test_the_readme_states_these_figures() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Workers: more than one core", 1)[1].split("\n### ", 1)[0]
    section = " ".join(section.split())
    assert f"every {PUBLISH_INTERVAL} s" in section
    assert f"latest {RECORDS_KEPT} records" in section
    assert (f"first after {BACKOFF_FIRST} s, doubling while deaths come within "
            f"{STABLE_AFTER:.0f} s of a start, up to {BACKOFF_MAX:.0f} s") in section
    assert f"1 to {MAX_WORKERS}" in section



def test_workers_end_with_a_parent_killed_outright(tmp_path: Path) -> None:
    """SIGKILL cannot be passed on: each worker's parent-death signal (SIGTERM,
    what the parent would have sent) ends it, so none serves on, orphaned."""
    appliance = Appliance(start(["serve", "--config", str(_config(tmp_path, 2))]))
    threading.Thread(target=appliance.read_stdout, daemon=True).start()
    pids: list[int] = []
    try:
        for _ in range(2):
            pids.append(int(str(appliance.next_event("workers", "started")["pid"])))
        listening = appliance.next_event("listening")
        port = int(listening["tls_server"]["port"])  # type: ignore[index]
        assert all(not ended(pid) for pid in pids)
        appliance.process.kill()
        appliance.process.wait(timeout=10)
        deadline = time.monotonic() + TIMEOUT
        while not all(ended(pid) for pid in pids):
            assert time.monotonic() < deadline, f"workers {pids} outlived their parent"
            time.sleep(0.02)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        if appliance.process.poll() is None:
            appliance.process.kill()
        for pid in pids:  # what this test looks for, should it have outlived
            if not ended(pid):
                os.kill(pid, signal.SIGKILL)
