"""The budgets against hostile load, each alone with an injected clock: logs
that never block, rotation, refusal summaries, per-step deadlines and the
pre-authentication byte budgets, and their settings."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio
import trio.testing

from pinata.appliance.guard import (
    CONNECTION_DEADLINE,
    Deadlines,
    GuardedStream,
    GuardRules,
    Refused,
)
from pinata.appliance.journal import FdLogWriter, LogWriter, RefusalTally, RotatingFile
from pinata.appliance.limits import FIRST_BYTE, HELLO_BYTES, PREAUTH_MEMORY, STEP, ByteBudget
from pinata.appliance.settings import Budgets, ConfigError, Limits, numbers_from
from pinata.appliance.stats import Counters

T0 = datetime(2026, 1, 1, tzinfo=UTC)

# --- logs ------------------------------------------------------------------------------


def test_log_writer_never_blocks_and_reports_drops() -> None:
    """Reproduction 3: a sink nobody reads costs dropped lines, not a stalled caller."""
    release = threading.Event()
    written: list[str] = []

    def stuck_sink(line: str) -> None:
        release.wait(10)
        written.append(line)

    writer = LogWriter(stuck_sink, max_lines=4)
    for i in range(100):
        writer.put(json.dumps({"n": i}))  # would hang forever if put blocked
    # One line may be in the sink's hands, four queued; the rest were dropped.
    assert 100 - 5 <= writer.dropped <= 100 - 4
    release.set()
    assert writer.close(5.0)
    written_before = len(written)
    assert written_before in (4, 5)
    counters = Counters(T0, log_lines_dropped=lambda: writer.dropped)
    assert counters.to_json(T0)["log_lines_dropped"] == writer.dropped
    assert f"pinata_log_lines_dropped_total {writer.dropped}" in counters.to_prometheus(T0)


def test_the_line_after_a_drop_carries_the_count() -> None:
    entered, gate = threading.Event(), threading.Event()
    written: list[str] = []

    def sink(line: str) -> None:
        entered.set()
        gate.wait(10)
        written.append(line)

    writer = LogWriter(sink, max_lines=1)
    writer.put('{"a":1}')
    assert entered.wait(5)  # the writer holds "a"; the queue is empty
    writer.put('{"b":2}')
    for _ in range(9):
        writer.put('{"dropped":true}')
    assert writer.dropped == 9
    gate.set()
    for _ in range(500):
        if len(written) == 2:
            break
        threading.Event().wait(0.01)
    writer.put('{"c":3}')
    assert writer.close(5.0)
    assert [json.loads(line) for line in written] == [
        {"a": 1}, {"b": 2}, {"c": 3, "log_lines_dropped": 9}]
    writer = LogWriter(written.append, max_lines=8)
    writer.put('{"d":4}')
    assert writer.close(5.0) and written[-1] == '{"d":4}'  # reported once, not again


def test_rotation_by_size_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    """Reproduction 4: the log cannot grow without bound."""
    path = tmp_path / "pinata.log"
    sink = RotatingFile(str(path), max_bytes=1000, keep=2)
    line = json.dumps({"x": "y" * 90})  # 101 bytes with its newline
    for _ in range(200):
        sink.write_line(line)
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["pinata.log", "pinata.log.1", "pinata.log.2"]
    sizes = [p.stat().st_size for p in tmp_path.iterdir()]
    assert all(0 < size <= 1000 for size in sizes)
    assert sum(sizes) <= 3000
    for p in tmp_path.iterdir():
        assert all(json.loads(text) for text in p.read_text().splitlines())


def test_refusal_summaries_one_line_per_limit_per_interval() -> None:
    tally = RefusalTally(top=2)
    for i in range(1000):
        tally.note("max_connections_per_network", f"10.0.{i % 3}.0/24")
    tally.note("connect_back_rate", "192.0.2.0/24")
    lines = tally.summaries(T0, T0 + timedelta(seconds=10))
    assert [line["refused"]["limit"] for line in lines] == [  # type: ignore[index]
        "connect_back_rate", "max_connections_per_network"]
    flood = lines[1]["refused"]
    assert isinstance(flood, dict)
    assert flood["count"] == 1000
    assert flood["top_networks"] == [["10.0.0.0/24", 334], ["10.0.1.0/24", 333]]
    assert flood["from"] == T0.isoformat()
    assert tally.summaries(T0, T0) == []  # nothing since


def test_refusal_tally_is_bounded() -> None:
    tally = RefusalTally(top=3, max_networks=10)
    for i in range(10_000):
        tally.note("limit", f"net{i}")
    (line,) = tally.summaries(T0, T0)
    assert line["refused"]["count"] == 10_000  # type: ignore[index]
    assert len(tally._by_limit) == 0


# --- per-step deadlines and pre-authentication bytes -----------------------------------


class _Peer:
    """A scripted peer: (delay, bytes) pairs, on trio's mock clock."""

    def __init__(self, script: list[tuple[float, bytes]]) -> None:
        self.script = list(script)
        self.sent: list[bytes] = []

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self.script:
            await trio.sleep_forever()
        delay, data = self.script.pop(0)
        await trio.sleep(delay)
        return data

    async def send_all(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    async def aclose(self) -> None:
        pass


def _guarded(peer: _Peer, budget: ByteBudget | None = None, hello: int = 100) -> GuardedStream:
    deadlines = Deadlines(trio.current_time() + 30.0)
    return GuardedStream(peer, "192.0.2.1", deadlines=deadlines,  # type: ignore[arg-type]
                         rules=GuardRules(first_byte_timeout=2.0, step_timeout=5.0,
                                          hello_bytes=hello),
                         preauth=budget)


async def _limit_of(stream: GuardedStream, work: Callable[[], Awaitable[object]]) -> str | None:
    """The limit that ended `work`: a budget's (`Refused`), or a deadline's, named by
    the connection's one scope, which the appliance enters around its handler."""
    try:
        with stream.deadlines.scope:
            await work()
    except Refused as exc:
        return exc.limit
    return stream.deadlines.expired()


async def _read_until_refused(stream: GuardedStream) -> tuple[str | None, float]:
    started = trio.current_time()

    async def read_forever() -> None:
        while True:
            await stream.receive_some()

    limit = await _limit_of(stream, read_forever)
    return limit, trio.current_time() - started


def _run(fn: object) -> object:
    return trio.run(fn, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]


def test_first_byte_deadline() -> None:
    """Reproduction 1: a stalled connection lives 2 s, not the handshake's 10."""

    async def main() -> tuple[str | None, float]:
        return await _read_until_refused(_guarded(_Peer([])))

    limit, took = _run(main)  # type: ignore[misc]
    assert limit == FIRST_BYTE and took == pytest.approx(2.0)


def test_first_bytes_are_kept_for_the_handler() -> None:
    async def main() -> tuple[list[bytes], int, float]:
        budget = ByteBudget(10_000)
        stream = _guarded(_Peer([(1.0, b"hello"), (1.0, b"more")]), budget)
        await stream.first_bytes()
        waited = trio.current_time()
        # Handed out once, in the reader's pieces, charged once.
        reads = [await stream.receive_some(2), await stream.receive_some(),
                 await stream.receive_some()]
        return reads, budget.in_use, waited

    reads, held, waited = _run(main)  # type: ignore[misc]
    assert reads == [b"he", b"llo", b"more"] and held == 9 and waited == pytest.approx(1.0)


def test_first_bytes_keep_the_first_byte_deadline() -> None:
    async def main() -> str | None:
        stream = _guarded(_Peer([]))
        return await _limit_of(stream, stream.first_bytes)

    assert _run(main) == FIRST_BYTE


def test_each_step_has_its_own_deadline() -> None:
    async def main() -> tuple[str | None, float, float]:
        # The first byte at 1 s, the rest of the flight at 4 s; then we answer
        # at 6 s and the peer's next flight never comes.
        stream = _guarded(_Peer([(1.0, b"a"), (3.0, b"b")]))
        assert await stream.receive_some() == b"a"
        assert await stream.receive_some() == b"b"
        await trio.sleep(2.0)
        await stream.send_all(b"our flight")
        answered = trio.current_time()
        limit, _ = await _read_until_refused(stream)
        return limit, answered, trio.current_time()

    limit, answered, ended = _run(main)  # type: ignore[misc]
    assert limit == STEP and ended - answered == pytest.approx(5.0)


def test_a_trickle_cannot_stretch_a_step() -> None:
    async def main() -> tuple[str | None, float]:
        return await _read_until_refused(_guarded(_Peer([(0.5, b"x")] * 100)))

    limit, took = _run(main)  # type: ignore[misc]
    assert limit == STEP and took == pytest.approx(0.5 + 5.0)


def test_one_scope_keeps_every_deadline() -> None:
    """The connection's one cancel scope: its deadline is the earliest in force,
    and when it fires `expired` names which (a step's limit, a phase, the
    connection's), the innermost on a tie; a plain cancel names none."""

    async def expiry(build: Callable[[Deadlines], None]) -> tuple[str | None, float]:
        deadlines = Deadlines(trio.current_time() + 30.0)
        started = trio.current_time()
        with deadlines.scope:
            build(deadlines)
            await trio.sleep_forever()
        return deadlines.expired(), trio.current_time() - started

    def nested(deadlines: Deadlines) -> None:
        deadlines.begin_phase("handshake deadline", 10.0)
        deadlines.begin_phase("linger", 20.0)  # within the handshake: ends with it

    def stepped(deadlines: Deadlines) -> None:
        deadlines.begin_phase("handshake deadline", 10.0)
        deadlines.wait_for_peer(STEP, trio.current_time() + 10.0)

    def ended(deadlines: Deadlines) -> None:
        deadlines.begin_phase("handshake deadline", 1.0)
        deadlines.end_phase()

    def cancelled(deadlines: Deadlines) -> None:
        deadlines.scope.cancel()

    async def main() -> list[tuple[str | None, float]]:
        return [await expiry(f) for f in (nested, stepped, ended, cancelled)]

    assert _run(main) == [("handshake deadline", pytest.approx(10.0)),
                          (STEP, pytest.approx(10.0)),
                          (CONNECTION_DEADLINE, pytest.approx(30.0)),
                          (None, 0.0)]


def test_hello_bytes_per_connection() -> None:
    """Reproduction 6: a partial ClientHello announcing 65,000 bytes is cut early."""

    async def main() -> tuple[str | None, int]:
        budget = ByteBudget(10_000)
        stream = _guarded(_Peer([(0.0, b"x" * 60)] * 10), budget, hello=100)
        limit, _ = await _read_until_refused(stream)
        held = budget.in_use
        await stream.aclose()
        assert budget.in_use == 0  # given back when the connection ends
        return limit, held

    limit, held = _run(main)  # type: ignore[misc]
    assert limit == HELLO_BYTES and held == 120


class _Flood:
    """A peer with `total` bytes ready at once that hands over what each read
    asks for, and notes the sizes asked."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.asked: list[int | None] = []

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        self.asked.append(max_bytes)
        n = min(self.left, max_bytes if max_bytes is not None else 1 << 16)
        self.left -= n
        await trio.lowlevel.checkpoint()
        return b"x" * n

    async def aclose(self) -> None:
        pass


def test_a_read_before_the_hello_takes_no_more_than_the_allowance() -> None:
    """README, "Memory before authentication": 16 KiB per connection until its
    hello is complete. A reader asking for four records (TLSStream) still gets
    no more than the rest of that allowance and one record (16,645 bytes) per
    read, so the connection is refused holding at most 16 KiB and one record,
    not a whole large read."""

    async def main() -> tuple[str | None, int, list[int | None]]:
        budget = ByteBudget(1 << 20)
        peer = _Flood(200_000)
        stream = GuardedStream(peer, "192.0.2.1",  # type: ignore[arg-type]
                               deadlines=Deadlines(trio.current_time() + 30.0),
                               rules=GuardRules(first_byte_timeout=2.0, step_timeout=5.0,
                                                hello_bytes=16_384),
                               preauth=budget)

        async def read_fours() -> None:
            while True:
                await stream.receive_some(4 * 16_384)

        limit = await _limit_of(stream, read_fours)
        return limit, budget.in_use, peer.asked

    limit, held, asked = _run(main)  # type: ignore[misc]
    assert limit == HELLO_BYTES
    assert held == 16_384 + 16_645 and asked == [16_384 + 16_645]


def test_global_preauth_budget() -> None:
    async def main() -> list[str]:
        budget = ByteBudget(250)
        streams = [_guarded(_Peer([(0.0, b"x" * 60)] * 10), budget, hello=10_000)
                   for _ in range(3)]
        limits = []
        for stream in streams:
            try:
                for _ in range(2):
                    await stream.receive_some()
            except Refused as exc:
                limits.append(exc.limit)
        assert budget.in_use <= 250
        streams[0].authenticated()  # an authenticated peer's bytes stop counting
        assert budget.in_use == 240 - 120
        return limits

    assert _run(main) == [PREAUTH_MEMORY]


# --- settings --------------------------------------------------------------------------


def test_budgets_from_toml_table() -> None:
    budgets = numbers_from(Budgets, {"first_byte_timeout": 1, "max_connections_per_network": 8,
                                     "network_prefix_v6": 56}, "budgets")
    assert budgets.first_byte_timeout == 1.0 and isinstance(budgets.first_byte_timeout, float)
    assert budgets.max_connections_per_network == 8 and budgets.network_prefix_v6 == 56
    assert numbers_from(Budgets, {}, "budgets") == Budgets()
    for table, name in (({"nope": 1}, "budgets.nope"),
                        ({"step_timeout": 0}, "budgets.step_timeout"),
                        ({"log_keep_files": 1.5}, "budgets.log_keep_files"),
                        ({"network_prefix_v4": 33}, "budgets.network_prefix_v4"),
                        ({"validation_threads": True}, "budgets.validation_threads")):
        with pytest.raises(ConfigError) as refused:
            numbers_from(Budgets, table, "budgets")
        assert refused.value.field == name


def test_the_readme_figures_are_the_defaults() -> None:
    """The README's hostile-load section quotes these defaults."""
    budgets, limits = Budgets(), Limits()
    assert (limits.max_connections, budgets.max_connections_per_network,
            limits.max_connections_per_address, budgets.reserved_per_listener) == (1024, 64, 32, 32)
    assert (budgets.network_prefix_v4, budgets.network_prefix_v6) == (24, 64)
    assert (budgets.first_byte_timeout, budgets.step_timeout) == (2.0, 5.0)
    assert (limits.handshake_timeout, limits.connection_timeout) == (10.0, 30.0)
    assert (budgets.validation_threads, budgets.validation_cpu_per_second,
            budgets.validation_cpu_burst) == (2, 0.25, 1.0)
    assert (budgets.preauth_bytes_total, budgets.preauth_bytes_per_connection) == (
        16 << 20, 16 << 10)
    assert (budgets.connect_back_per_network_per_second,
            budgets.connect_back_per_network_burst) == (1.0, 3)
    assert (limits.connect_back_per_second, limits.connect_back_burst) == (5.0, 10)
    assert (budgets.log_queue_lines, budgets.refusal_summary_interval,
            budgets.refusal_summary_top) == (4096, 10.0, 5)
    assert (budgets.log_max_bytes, budgets.log_keep_files) == (16 << 20, 4)


def test_standard_output_is_written_without_threads_and_without_blocking() -> None:
    """Reproduction 3 for the sandboxed image: a pipe nobody reads stalls no task."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)

    async def main() -> tuple[int, int, list[dict[str, object]]]:
        writer = FdLogWriter(write_end, max_lines=4)
        ticks = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            big = json.dumps({"filler": "x" * 60_000})
            for _ in range(40):  # far more than the pipe holds
                writer.put(big)
                await trio.sleep(0.001)
                ticks += 1  # the loop keeps running while the pipe is full
            dropped = writer.dropped
            drained = b""

            async def read_until_quiet() -> bytes:
                got, quiet = b"", 0
                while quiet < 20:  # 0.2 s without a byte: the writer is idle
                    try:
                        got += os.read(read_end, 1 << 20)
                        quiet = 0
                    except BlockingIOError:
                        quiet += 1
                        await trio.sleep(0.01)
                return got

            drained += await read_until_quiet()  # now the reader wakes up
            writer.put('{"after":1}')
            drained += await read_until_quiet()
            nursery.cancel_scope.cancel()
        writer.close(1.0)
        return ticks, dropped, [json.loads(line) for line in drained.splitlines()]

    try:
        ticks, dropped, lines = trio.run(main)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert ticks == 40
    assert dropped >= 30
    assert lines[-1] == {"after": 1, "log_lines_dropped": dropped}
    assert threading.active_count() == 1 or all(
        t.name != "pinata-log" for t in threading.enumerate())


def test_a_burst_of_lines_costs_the_standard_output_writer_one_wake_up() -> None:
    """Lines queued while the writer rests are written together: a flood of
    connections costs its task a few scheduler steps, not one per line."""
    read_end, write_end = os.pipe()

    class WriterSteps(trio.abc.Instrument):
        def __init__(self) -> None:
            self.steps = 0

        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            if task.name.endswith("FdLogWriter.run"):
                self.steps += 1

    async def main() -> int:
        writer = FdLogWriter(write_end, max_lines=100)
        steps = WriterSteps()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            await trio.testing.wait_all_tasks_blocked()
            trio.lowlevel.add_instrument(steps)
            for i in range(50):
                writer.put(json.dumps({"n": i}))
            await trio.sleep(0.2)
            trio.lowlevel.remove_instrument(steps)
            nursery.cancel_scope.cancel()
        return steps.steps

    try:
        steps = trio.run(main)
        lines = os.read(read_end, 1 << 20).decode().splitlines()
    finally:
        os.close(read_end)
        os.close(write_end)
    assert [json.loads(line)["n"] for line in lines] == list(range(50))
    assert steps <= 5  # one per line was 50
