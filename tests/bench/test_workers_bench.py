"""`pinata bench handshake --workers 1,2` in smoke mode: the real appliance with
each worker count serves every handshake, and the report carries the figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pinata.bench import main
from pinata.bench.workers import parse_counts


def test_workers_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.json"
    assert main(["handshake", "--workers", "1,2", "--smoke", "--json", str(target)]) == 0
    printed = capsys.readouterr().out
    assert "appliance CPU (cores)" in printed
    document = json.loads(target.read_text())
    assert document["benchmark"] == "handshake-workers" and document["smoke"] is True
    rows = document["workers"]
    assert [row["workers"] for row in rows] == [1, 2]
    for row in rows:
        # Every handshake of every batch released the secret (the client checks it).
        assert row["failed"] == 0 and row["handshakes"] >= 8
        assert row["handshakes_per_second"] > 0 and row["cpu_us_per_handshake"] > 0
        assert 0 < row["server_cores"] <= document["cores"] + 0.5


@pytest.mark.parametrize("bad", ["", "0", "1,65", "two"])
def test_bad_worker_counts_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_counts(bad)


def test_worker_counts_in_order() -> None:
    assert parse_counts("1,2,4") == [1, 2, 4]
