"""Fixtures: a shared appliance per module, fresh ones on demand, and the
session-wide check that the secret never appeared in anything the appliance wrote."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pinata.appliance.settings import ApplianceSettings
from tests.appliance.harness import SECRET, WRITTEN, RunningAppliance, _written_lock, test_settings


@pytest.fixture(scope="session", autouse=True)
def secret_never_written() -> Iterator[None]:
    yield
    with _written_lock:
        everything = b"\n".join(WRITTEN)
    if RunningAppliance.started:
        assert everything, "appliances ran but the leak check saw nothing: collection is broken"
    text = everything.decode("utf-8", "replace")
    # The secret in the clear, or in any of the encodings a log might use.
    assert SECRET not in everything
    for encoded in (SECRET.hex(), SECRET.hex().upper(), base64.b64encode(SECRET).decode(),
                    json.dumps(SECRET.decode())[1:-1], repr(SECRET)):
        assert encoded not in text


@pytest.fixture(scope="module")
def appliance() -> Iterator[RunningAppliance]:
    running = RunningAppliance(test_settings())
    yield running
    running.stop()


@pytest.fixture
def make_appliance() -> Iterator[Callable[..., RunningAppliance]]:
    started: list[RunningAppliance] = []

    def make(settings: ApplianceSettings | None = None, **limits: Any) -> RunningAppliance:
        running = RunningAppliance(settings or test_settings(**limits))
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


