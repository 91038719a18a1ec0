"""Landlock rulesets by ABI: what is handled, and what a kernel without it still gets."""

from __future__ import annotations

import pytest

from unikernel import landlock


def test_no_landlock_handles_nothing_and_says_so() -> None:
    plan = landlock.ruleset_for(0, [40001])
    assert (plan.handled_access_fs, plan.handled_access_net, plan.scoped) == (0, 0, 0)
    assert "unavailable" in plan.describe()


@pytest.mark.parametrize("abi", range(1, 8))
def test_every_file_system_right_known_to_the_abi_is_handled(abi: int) -> None:
    plan = landlock.ruleset_for(abi, [40001])
    assert plan.handled_access_fs & 0x1FFF == 0x1FFF  # EXECUTE .. MAKE_SYM, ABI 1
    assert bool(plan.handled_access_fs & (1 << 13)) == (abi >= 2)  # REFER
    assert bool(plan.handled_access_fs & (1 << 14)) == (abi >= 3)  # TRUNCATE
    assert bool(plan.handled_access_fs & (1 << 15)) == (abi >= 5)  # IOCTL_DEV
    assert plan.handled_access_fs >> 16 == 0


@pytest.mark.parametrize("abi", range(1, 8))
def test_network_rules_from_abi_4_and_scopes_from_abi_6(abi: int) -> None:
    plan = landlock.ruleset_for(abi, [40001, 40001, 10000])
    if abi >= 4:
        assert plan.handled_access_net == (
            landlock.ACCESS_NET_BIND_TCP | landlock.ACCESS_NET_CONNECT_TCP
        )
        assert plan.connect_ports == (10000, 40001)
        assert "connect only to port 10000, 40001" in plan.describe()
    else:
        assert plan.handled_access_net == 0
        assert plan.connect_ports == ()
        assert "network not restricted by Landlock" in plan.describe()
    assert bool(plan.scoped) == (abi >= 6)


def test_an_allowed_weaker_network_leaves_it_unhandled() -> None:
    plan = landlock.ruleset_for(7, None)
    assert plan.handled_access_net == 0 and plan.connect_ports == ()
    assert plan.handled_access_fs != 0


def test_the_kernel_reports_an_abi() -> None:
    abi = landlock.abi_version()
    assert isinstance(abi, int)
    assert abi >= 0
