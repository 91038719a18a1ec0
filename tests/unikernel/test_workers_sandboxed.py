"""`workers = 2` in the unikernel's manifest: two sandboxed guests, each with its own
tender and SO_REUSEPORT listeners bound by the launcher; both serve, each page counts
the whole appliance, and a guest that dies is restarted and counted."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unikernel.harness import Launched, manifest_text
from tests.unikernel.test_appliance_sandboxed import SECRET, http_get, secret_over_tls_server

TIMEOUT = 30.0


def _listening(launched: Launched, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + TIMEOUT
    while len(found := launched.events("listening")) < count:
        assert launched.alive() and time.monotonic() < deadline, (
            [line for line in launched.lines if '"listener"' not in line][-12:],
            launched.stderr[-800:])
        time.sleep(0.05)
    return found


def _stats(port: int) -> dict[str, Any]:
    status, body = http_get(port, "/stats")
    assert status == 200
    stats: dict[str, Any] = json.loads(body)
    return stats


def _settled(port: int, released: int) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while (stats := _stats(port))["secrets_released_to_stranger"] != released:
        assert time.monotonic() < deadline, stats
        time.sleep(0.05)
    time.sleep(0.3)  # every guest has published since
    return _stats(port)


@pytest.fixture
def two_guests(tmp_path: Path) -> Iterator[Launched]:
    manifest = tmp_path / "manifest.toml"
    manifest.write_text("workers = 2\n" + manifest_text(entry="appliance"))
    launched = Launched.manifest(manifest)
    try:
        yield launched
    finally:
        exit_event = launched.stop()
        assert launched.process.returncode == 0, (exit_event, launched.stderr[-800:])


def test_two_sandboxed_guests_serve_count_together_and_one_is_restarted(
    two_guests: Launched,
) -> None:
    first = _listening(two_guests, 2)
    assert sorted(e["worker"] for e in first) == [0, 1]
    assert first[0]["ports"] == first[1]["ports"]
    ports = first[0]["ports"]
    for _ in range(30):
        assert secret_over_tls_server(ports["tls_server"]) == SECRET
    stats = _settled(ports["http"], 30)
    assert stats["workers"]["count"] == 2 and stats["workers"]["restarts"] == 0
    assert all(n >= 1 for n in stats["workers"]["connections"].values()), stats["workers"]
    for _ in range(6):  # whichever guest answers
        assert _stats(ports["http"])["secrets_released_to_stranger"] == 30
    guest = next(e["pid"] for e in first if e["worker"] == 1)
    os.kill(guest, signal.SIGKILL)
    # Once its tender has seen it end (a connection queued on the dying guest's
    # listeners before that is reset with them), the other guest serves every one.
    deadline = time.monotonic() + TIMEOUT
    while not [e for e in two_guests.events("exit") if e.get("signal") == "SIGKILL"]:
        assert time.monotonic() < deadline, two_guests.events()[-5:]
        time.sleep(0.02)
    for _ in range(10):
        assert secret_over_tls_server(ports["tls_server"]) == SECRET
    again = _listening(two_guests, 3)[2]
    assert again["worker"] == 1 and again["pid"] != guest
    for _ in range(10):
        assert secret_over_tls_server(ports["tls_server"]) == SECRET
    stats = _settled(ports["http"], 50)
    assert stats["workers"]["restarts"] == 1
    # No guest was stopped by its filter: the shared counters take no system call.
    assert not [e for e in two_guests.events("exit") if "filtered" in e]


def test_a_bad_worker_count_is_refused_naming_the_field(tmp_path: Path) -> None:
    from unikernel import manifest as mf

    with pytest.raises(mf.ManifestError) as refused:
        mf.parse(("workers = 0\n" + manifest_text(entry="appliance")).encode(), base=tmp_path)
    assert refused.value.field == "workers"
    parsed = mf.parse(('workers = "auto"\n' + manifest_text()).encode(), base=tmp_path)
    assert parsed.workers == len(os.sched_getaffinity(0))
