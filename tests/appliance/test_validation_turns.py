"""Validation.take_turn / end_turn: one validation at a time per network,
handed over in arrival order, cancellable while waiting, nothing kept after."""

from __future__ import annotations

import trio
import trio.testing

from pinata.appliance.guard import Validation
from pinata.appliance.limits import WorkBudget


def _validation() -> Validation:
    return Validation(WorkBudget(per_second=1.0, burst=1.0), threads=0)


def test_a_free_turn_is_taken_without_yielding() -> None:
    async def main() -> None:
        validation = _validation()
        with trio.CancelScope() as scope:
            scope.cancel()
            # Cancelled, yet taken: no checkpoint on the free path (the
            # validation's own awaits are the checkpoints).
            network = await validation.take_turn("192.0.2.7")
        assert not scope.cancelled_caught
        assert network == "192.0.2.0/24"
        validation.end_turn(network)
        assert validation._turns == {}

    trio.run(main)


def test_one_at_a_time_per_network_in_arrival_order() -> None:
    async def main() -> None:
        validation = _validation()
        log: list[str] = []

        async def validate(name: str, address: str) -> None:
            network = await validation.take_turn(address)
            log.append(f"{name} in")
            await trio.sleep(0.01)
            log.append(f"{name} out")
            validation.end_turn(network)

        async with trio.open_nursery() as nursery:
            for name in ("a", "b", "c"):
                nursery.start_soon(validate, name, f"192.0.2.{ord(name)}")  # one /24
                await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(validate, "other", "198.51.100.1")  # another network
            await trio.testing.wait_all_tasks_blocked()
            assert log == ["a in", "other in"]  # b and c wait behind a; other does not
        assert [e for e in log if not e.startswith("other")] == [
            "a in", "a out", "b in", "b out", "c in", "c out"]
        assert validation._turns == {}

    trio.run(main)


def test_a_cancelled_waiter_leaves_the_line_and_nothing_is_kept() -> None:
    async def main() -> None:
        validation = _validation()
        first = await validation.take_turn("192.0.2.1")
        with trio.move_on_after(0.01) as waiting:
            await validation.take_turn("192.0.2.2")
        assert waiting.cancelled_caught
        validation.end_turn(first)  # nobody left to hand over to
        assert validation._turns == {}
        again = await validation.take_turn("192.0.2.3")  # free again at once
        validation.end_turn(again)
        assert validation._turns == {}

    trio.run(main)
