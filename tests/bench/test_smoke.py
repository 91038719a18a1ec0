"""Each `pinata bench` subcommand once, in its seconds-long smoke mode.

A benchmark is not a test: nothing here asserts a time or a ratio against a
target. What is asserted is that the benchmark still runs end to end, that
its JSON has the shape the README's table is built from, that every figure
is a positive number, that no connection failed, and that no process it
started is left behind.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pinata.bench import SUBCOMMANDS, main, startup

pytestmark = [pytest.mark.timeout(120)]


def _children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def run_smoke(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    before = _children_of(os.getpid())
    target = tmp_path / f"{name}.json"
    assert main([name, "--smoke", "--json", str(target)]) == 0
    printed = capsys.readouterr().out
    assert f"pinata bench {name}" in printed
    assert "|" in printed  # the table
    assert _children_of(os.getpid()) <= before, "a benchmark left a process running"
    document: dict[str, Any] = json.loads(target.read_text())
    assert document["benchmark"] == name
    assert document["smoke"] is True
    environment = document["environment"]
    assert environment["command"].startswith(f"pinata bench {name} --smoke")
    assert environment["date"] and environment["machine"]["cpus"] >= 1
    return document


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_every_subcommand_is_covered() -> None:
    tested = {name.removeprefix("test_").removesuffix("_smoke") for name in globals()}
    assert set(SUBCOMMANDS) <= tested


def test_handshake_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_smoke("handshake", tmp_path, capsys)
    scenarios = doc["scenarios"]
    assert scenarios, "no scenario ran"
    labels = set()
    for scenario in scenarios:
        for contender in scenario["contenders"]:
            labels.add(contender["server"])
            assert contender["failed"] == 0, contender["first_error"]
            assert contender["handshakes"] > 0
            if contender["server"] == "plain":
                # Four bare TCP exchanges in smoke mode can finish before the
                # kernel's per-task CPU clock moves: zero is a valid reading.
                assert contender["cpu_us_per_handshake"] >= 0
            else:
                assert positive(contender["cpu_us_per_handshake"])
            assert positive(contender["handshakes_per_second"])
            if scenario["name"].startswith("TLS 1.2"):
                # Both servers spoke TLS 1.2 with the suite its clients offer first.
                assert contender["negotiated"] == "ECDHE-ECDSA-AES128-GCM-SHA256"
            elif contender["server"] != "plain":
                assert "TLS_AES_128_GCM_SHA256" in contender["negotiated"]
        for comparison in scenario["comparisons"]:
            if comparison["b"].startswith("no TLS"):
                continue  # its CPU may read zero in smoke mode (see above): no ratio
            assert positive(comparison["cpu_ratio_median"])
    assert {"ours", "ssl", "tlslite", "plain", "appliance", "ssl-secret"} <= labels
    assert any(s["name"].startswith("TLS 1.2") for s in scenarios)
    assert any("X25519MLKEM768" in c["negotiated"]
               for s in scenarios for c in s["contenders"])
    assert positive(doc["crypto_floor_us"]["total"])


def test_throughput_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_smoke("throughput", tmp_path, capsys)
    suites = {suite["suite"]: suite for suite in doc["suites"]}
    assert set(suites) == {"AES-128-GCM", "ChaCha20-Poly1305"}
    expected = {"AES-128-GCM": "TLS_AES_128_GCM_SHA256",
                "ChaCha20-Poly1305": "TLS_CHACHA20_POLY1305_SHA256"}
    for name, suite in suites.items():
        assert positive(suite["speed_ratio_ours_over_ssl_median"])
        assert len(suite["contenders"]) == 2
        for contender in suite["contenders"]:
            assert contender["failed"] == 0, contender["first_error"]
            # The suite asked for is the suite both sides negotiated.
            assert contender["negotiated"] == expected[name]
            assert positive(contender["mb_per_second"])
            assert positive(contender["server_cpu_us_per_mb"])


def test_memory_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_smoke("memory", tmp_path, capsys)
    assert positive(doc["rss_at_rest_bytes"])
    levels = doc["levels"]
    assert [level["connections"] for level in levels] == doc["parameters"]["levels"]
    for level in levels:
        # Every stalled connection is open and was answered: the appliance
        # really holds that many handshakes in flight.
        assert level["open"] == level["connections"]
        assert level["answered"] == level["connections"]
        assert positive(level["rss_bytes"])


def test_startup_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_smoke("startup", tmp_path, capsys)
    toy = doc["targets"]["pinata toy"]
    assert toy["measured"] is True
    assert positive(toy["first_response_ms"])
    assert toy["connect_ms"] <= toy["first_response_ms"]
    # A process's CPU to its first answer cannot exceed the wall time it took.
    assert 0 < toy["first_response_cpu_ms"] <= toy["first_response_ms"]
    assert positive(toy["rss_mib_after_start"])
    assert 0 < toy["anon_mib_after_start"] < toy["rss_mib_after_start"]
    # Each sandboxed start (from the checkout, and the built image): either measured,
    # or the reason it could not be is given.
    for name in ("toy unikernel (sandboxed)", "toy image, sandboxed, as make toy runs it"):
        kernel = doc["targets"][name]
        assert positive(kernel.get("first_response_ms")) or kernel["reason"]


def test_startup_children_cache_their_bytecode(tmp_path: Path) -> None:
    # Where the environment forbids writing bytecode, the children still write
    # it under the scratch prefix: a second start reads it instead of compiling.
    forbidding = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env = {**forbidding, **startup.bytecode_env(tmp_path / "pycache")}
    subprocess.run([sys.executable, "-c", "import pinata.bench.wire"], env=env,
                   check=True, timeout=60)
    assert list((tmp_path / "pycache").rglob("wire.cpython-*.pyc"))


def test_validation_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_smoke("validation", tmp_path, capsys)
    assert [leaf["leaf"] for leaf in doc["leaves"]] == ["ecdsa-p256", "rsa2048"]
    for leaf in doc["leaves"]:
        assert positive(leaf["ours_us"])
        assert positive(leaf["pyca_us"])
        assert positive(leaf["ratio_ours_over_pyca_median"])


def test_abuse_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_smoke("abuse", tmp_path, capsys)
    scenarios = {s["scenario"]: s for s in doc["scenarios"]}
    assert list(scenarios) == ["rest", "stall", "knocks", "huge_hello", "expensive_chains",
                               "stuck_log"]
    for scenario in scenarios.values():
        # Honest clients ran on every port, and every figure was read.
        assert scenario["honest_attempts"] > 0
        assert all(tried > 0 for _, tried in scenario["honest_by_kind"].values())
        assert 0 <= scenario["honest_ok"] <= scenario["honest_attempts"]
        assert all(positive(mib) for mib in scenario["rss_mib"])
        assert scenario["cpu_percent"] >= 0 and scenario["log_bytes"] >= 0
        assert scenario["attacker"] is not None and scenario["attacker"] != "timed out"
    # The attacker really attacked.
    assert scenarios["stall"]["attacker"]["opened"] > 0
    assert scenarios["knocks"]["attacker"]["opened"] > 0
    assert scenarios["expensive_chains"]["attacker"]["handshakes"] > 0
    assert positive(doc["gil"]["verify_ms"]) and positive(doc["gil"]["loop_speed_beside_verifier"])


def test_budgets_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_smoke("budgets", tmp_path, capsys)
    assert set(doc["measured"]) == set(doc["budgets"])
    assert all(positive(value) for value in doc["measured"].values())
