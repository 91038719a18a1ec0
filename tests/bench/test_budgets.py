"""The per-handshake budgets (issue 18): counts, not times, so CI can hold
them. A figure above its committed budget by more than the margin fails
with the figure and the budget; `python -m pinata.bench.budgets --write`
re-measures them after an intended change."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinata.bench import budgets
from pinata.tls.connection import ServerConnection

pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def measured() -> dict[str, int]:
    return budgets.measure()


def test_every_figure_is_within_its_committed_budget(measured: dict[str, int]) -> None:
    committed = budgets.load()
    excess = budgets.over_budget(measured, committed)
    assert not excess, "heavier than budgeted:\n" + "\n".join(excess)


def test_every_figure_is_a_real_measurement(measured: dict[str, int]) -> None:
    # A meter that stopped seeing the work (a nested profiler, tracemalloc
    # stopped early) would pass every budget: each role does real work.
    assert set(measured) == set(budgets.FIGURES)
    assert measured["server_calls"] > 300 and measured["client_calls"] > 300
    # Over trio, both engines run and the adapter and loop add their own.
    assert measured["adapter_calls"] > measured["server_calls"] + measured["client_calls"]
    assert measured["server_peak_bytes"] > 4096 and measured["client_peak_bytes"] > 4096
    # The appliance holds the engine's state and more (task, guard, record).
    assert measured["appliance_stalled_bytes"] > measured["engine_stalled_bytes"] > 1024
    # Through the appliance both engines run, and the shell adds its own; a
    # bounty takes more than one event-loop step per flight each way.
    assert measured["appliance_calls"] > measured["server_calls"] + measured["client_calls"]
    assert measured["appliance_steps"] > 8
    # A connection whose peer said nothing holds its task, record and guard,
    # but no engine and no handler yet: less than one that sent its hello.
    assert 1024 < measured["appliance_silent_bytes"] < measured["appliance_stalled_bytes"]


def test_a_silent_connection_holds_no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    # The handler (and its engine) starts at the peer's first bytes: a peer
    # that never speaks never costs us a ServerConnection.
    built: list[object] = []
    init = ServerConnection.__init__

    def counting(self: ServerConnection, *args: object, **kwargs: object) -> None:
        built.append(self)
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ServerConnection, "__init__", counting)
    configs = budgets.toy_configs()
    budgets.appliance_stalled_bytes(configs, 5, hello=False)
    assert built == []
    budgets.appliance_stalled_bytes(configs, 5)
    assert len(built) == 5


def test_a_heavier_handshake_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    configs = budgets.toy_configs()
    before = budgets.per_handshake(configs, budgets.count_calls, 1)[0]
    receive = ServerConnection.receive_data

    def wasteful(self: ServerConnection, data: bytes | bytearray | memoryview) -> object:
        for _ in range(100):
            (lambda: None)()
        return receive(self, data)

    monkeypatch.setattr(ServerConnection, "receive_data", wasteful)
    after = budgets.per_handshake(configs, budgets.count_calls, 1)[0]
    assert after >= before + 200  # two flights received, 100 calls each
    excess = budgets.over_budget({**budgets.load(), "server_calls": after},
                                 {**budgets.load(), "server_calls": before})
    assert len(excess) == 1 and f"{after:,} against a budget of {before:,}" in excess[0]


def test_the_budget_file_round_trips(tmp_path: Path, measured: dict[str, int]) -> None:
    path = tmp_path / "budgets.toml"
    budgets.write(measured, path)
    assert budgets.load(path) == measured
    path.write_text("[budgets]\nserver_calls = 1\n")
    with pytest.raises(ValueError, match="must hold exactly"):
        budgets.load(path)
