"""x509-limbo and its BetterTLS cases through our validator: zero false
accepts, every case under 10 ms of CPU, and every false reject explained by
a named policy at the count the README states."""

from __future__ import annotations

import warnings

import pytest

from .limbo_runner import (
    BETTERTLS,
    FALSE_ACCEPT,
    LIMBO,
    NOT_APPLICABLE_VERDICT,
    PASSED,
    POLICIES,
    TOO_SLOW,
    Outcome,
    pass_rate,
    policy_counts,
    report,
    run_all,
)

# The figures the README quotes, per suite: cases, and false rejects by
# policy. A change either way (a new refusal, or a policy that no longer
# bites) fails, so the README cannot drift from the code.
EXPECTED = {
    "limbo": (
        LIMBO,
        151,
        {
            "cn-copy-of-san": 5,
            "ca-never-a-leaf": 2,
            "leaf-eku-required": 1,
            "name-constraints-critical": 1,
            "anchor-aki": 1,
        },
    ),
    "bettertls": (BETTERTLS, 9572, {"cn-copy-of-san": 344}),
}
# pyca/cryptography 46's verifier on the same applicable cases (measured by
# hand with its PolicyBuilder, as the README reports): limbo 120 / 142,
# BetterTLS 9572 / 9572.
LIMBO_PASS_RATE_FLOOR = 132 / 142


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def suite(request: pytest.FixtureRequest) -> tuple[str, list[Outcome]]:
    name: str = request.param
    path = EXPECTED[name][0]
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is the project's test data)")
    with warnings.catch_warnings():
        # limbo holds certificates with serial 0 on purpose.
        warnings.simplefilter("ignore")
        outcomes = run_all(path)
    print(f"\n== {name}\n{report(outcomes)}")
    return name, outcomes


def test_all_cases_ran(suite: tuple[str, list[Outcome]]) -> None:
    name, outcomes = suite
    assert len(outcomes) == EXPECTED[name][1]


def test_zero_false_accepts(suite: tuple[str, list[Outcome]]) -> None:
    _, outcomes = suite
    assert [o.id for o in outcomes if o.verdict == FALSE_ACCEPT] == []


def test_every_case_answers_in_time(suite: tuple[str, list[Outcome]]) -> None:
    # Under 10 ms of process CPU per validation, best of three (see the runner).
    _, outcomes = suite
    assert [(o.id, o.seconds) for o in outcomes if o.verdict == TOO_SLOW] == []


def test_every_false_reject_is_a_named_policy_at_its_count(
    suite: tuple[str, list[Outcome]],
) -> None:
    name, outcomes = suite
    counts = policy_counts(outcomes)
    unexplained = [o.detail for o in outcomes if o.verdict == "failed" and o.policy is None]
    assert unexplained == []
    assert dict(counts) == EXPECTED[name][2]
    assert set(counts) <= set(POLICIES)


def test_limbo_pass_rate_and_not_applicable(suite: tuple[str, list[Outcome]]) -> None:
    name, outcomes = suite
    skipped = {o.id for o in outcomes if o.verdict == NOT_APPLICABLE_VERDICT}
    if name == "bettertls":
        assert skipped == set()
        return
    assert pass_rate(outcomes) >= LIMBO_PASS_RATE_FLOOR
    assert all(i.startswith(("crl::", "webpki::san::public-suffix")) for i in skipped)
    assert len(skipped) == 9
    pathological = [o for o in outcomes if o.id.startswith("pathological::")]
    assert pathological and all(o.verdict == PASSED for o in pathological)
