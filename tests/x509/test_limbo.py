"""x509-limbo through our validator: zero false accepts, and a pass rate on
applicable cases that may only go up."""

from __future__ import annotations

import warnings

import pytest

from .limbo_runner import (
    FALSE_ACCEPT,
    LIMBO,
    NOT_APPLICABLE_VERDICT,
    PASSED,
    TOO_SLOW,
    Outcome,
    pass_rate,
    run_all,
)

# The figure reached (138 of 142 applicable cases; the README quotes it).
# The four failures are deliberate refusals: see pinata/x509/DIFFERENCES.md.
PASS_RATE_FLOOR = 138 / 142

pytestmark = pytest.mark.skipif(not LIMBO.exists(), reason=f"{LIMBO} not present")


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    with warnings.catch_warnings():
        # limbo holds certificates with serial 0 on purpose.
        warnings.simplefilter("ignore")
        return run_all()


def test_all_cases_ran(outcomes: list[Outcome]) -> None:
    assert len(outcomes) == 151


def test_zero_false_accepts(outcomes: list[Outcome]) -> None:
    assert [o.id for o in outcomes if o.verdict == FALSE_ACCEPT] == []


def test_every_case_answers_in_time(outcomes: list[Outcome]) -> None:
    assert [o.id for o in outcomes if o.verdict == TOO_SLOW] == []


def test_pass_rate_does_not_drop(outcomes: list[Outcome]) -> None:
    assert pass_rate(outcomes) >= PASS_RATE_FLOOR


def test_not_applicable_only_by_feature(outcomes: list[Outcome]) -> None:
    skipped = {o.id for o in outcomes if o.verdict == NOT_APPLICABLE_VERDICT}
    assert all(i.startswith(("crl::", "webpki::san::public-suffix")) for i in skipped)
    assert len(skipped) == 9


def test_pathological_cases_pass(outcomes: list[Outcome]) -> None:
    pathological = [o for o in outcomes if o.id.startswith("pathological::")]
    assert pathological and all(o.verdict == PASSED for o in pathological)
