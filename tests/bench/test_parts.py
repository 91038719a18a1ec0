"""The benchmark's own pieces: the request protocol, the report, the process
handling. Figures they produce are not checked, only their arithmetic."""

from __future__ import annotations

import math
import os
import sys
import time

from hypothesis import given
from hypothesis import strategies as st

from pinata.bench import report, wire
from pinata.bench.procs import Child, process_cpu_seconds, process_rss_bytes


@given(st.binary(max_size=80))
def test_parse_bulk_is_total_and_bounded(request: bytes) -> None:
    size = wire.parse_bulk(request)
    assert size is None or 0 <= size <= wire.MAX_BULK


def test_bulk_request_round_trips() -> None:
    assert wire.parse_bulk(wire.bulk_request(12345).rstrip(b"\n")) == 12345
    assert wire.parse_bulk(b"bulk 99999999999999") is None  # too many digits
    assert wire.parse_bulk(wire.HELLO) is None
    assert wire.reply_to(wire.HELLO) == wire.HELLO_REPLY + b"\n"


@given(st.lists(st.floats(min_value=0.001, max_value=1e6), min_size=1, max_size=20))
def test_median_lies_within_the_values(values: list[float]) -> None:
    m = report.median(values)
    assert min(values) <= m <= max(values)


def test_pair_ratios_skip_zero_denominators() -> None:
    assert report.pair_ratios([2.0, 3.0, 4.0], [1.0, 0.0, 8.0]) == [2.0, 0.5]
    assert math.isnan(report.median([]))


def test_table_aligns_every_row() -> None:
    text = report.table(["a", "long header"], [["x", 1234.5], ["yy", None]])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert "1,234" in text or "1,235" in text
    assert lines[3].split("|")[2].strip() == "-"


def test_cpu_and_rss_of_a_running_process() -> None:
    pid = os.getpid()
    before = process_cpu_seconds(pid)
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert process_cpu_seconds(pid) - before >= 0.03
    assert process_rss_bytes(pid) > 1 << 20


def test_a_child_and_its_grandchildren_are_stopped() -> None:
    script = (
        "import subprocess, sys, time\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('{\"grandchild\": %d}' % g.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    child = Child([sys.executable, "-c", script])
    try:
        grandchild = child.read_json(30.0)["grandchild"]
        assert isinstance(grandchild, int)
        assert child.alive()
    finally:
        child.stop()
    assert not child.alive()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{grandchild}/stat", encoding="ascii") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except OSError:
            break
        if state == "Z":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the grandchild outlived stop()")
