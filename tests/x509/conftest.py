"""Shared fixtures: a forge anchor with no path-length limit, and a `now`
inside the forge's validity window."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bait_ca.forge import make_anchor
from bait_ca.issued import Issued
from pinata.x509 import Check, TrustAnchor, ValidatedChain, ValidationFailure

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def ca() -> Issued:
    return make_anchor()


@pytest.fixture(scope="session")
def anchor(ca: Issued) -> TrustAnchor:
    return TrustAnchor.from_der(ca.der)


def refused(result: ValidatedChain | ValidationFailure, check: Check) -> ValidationFailure:
    """Assert `result` is a failure of `check`; return it for further asserts."""
    assert isinstance(result, ValidationFailure), f"accepted, expected {check}"
    assert result.check == check, f"refused for {result.check} ({result.reason}), expected {check}"
    return result


def accepted(result: ValidatedChain | ValidationFailure) -> ValidatedChain:
    assert isinstance(result, ValidatedChain), f"refused: {result}"
    return result
