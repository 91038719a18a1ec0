"""Run x509-limbo (../shared/x509-limbo/limbo.json) through `pinata.x509`.

Each case is judged passed, failed, FALSE ACCEPT (a case limbo expects to
fail that we accepted: the one outcome we never tolerate), or not applicable
(a feature we deliberately lack, e.g. revocation). Each case runs under a
time bound. `python -m tests.x509.limbo_runner` prints the table.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pinata.x509 import InvalidTrustAnchor, Purpose, TrustAnchor, ValidatedChain, validate

LIMBO = Path(__file__).resolve().parents[2].parent / "shared" / "x509-limbo" / "limbo.json"

# Features the project lacks on purpose: such cases are not applicable.
NOT_APPLICABLE = {
    "has-crl": "no revocation checking (the appliance does none)",
    "pedantic-public-suffix-wildcard": "no Public Suffix List is carried",
}
CASE_TIME_LIMIT = 1.0  # seconds; pathological cases must answer in milliseconds

PASSED = "passed"
FAILED = "failed"
FALSE_ACCEPT = "FALSE ACCEPT"
NOT_APPLICABLE_VERDICT = "not applicable"
TOO_SLOW = "too slow"


@dataclass(frozen=True)
class Outcome:
    id: str
    expected: str
    verdict: str
    detail: str
    seconds: float


def load_cases(path: Path = LIMBO) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(path.read_text())["testcases"]
    return cases


def _der(pem: str) -> bytes:
    certificate = x509.load_pem_x509_certificate(pem.encode())
    return certificate.public_bytes(serialization.Encoding.DER)


def _purpose(case: dict[str, Any]) -> Purpose | None:
    usages = set(case.get("extended_key_usage") or ())
    if usages == {"clientAuth"}:
        return Purpose.CLIENT_AUTH
    if usages == {"serverAuth"}:
        return Purpose.SERVER_AUTH
    if usages:
        return None
    return Purpose.CLIENT_AUTH if case["validation_kind"] == "CLIENT" else Purpose.SERVER_AUTH


def _peer_name(
    case: dict[str, Any],
) -> tuple[bool, str | ipaddress.IPv4Address | ipaddress.IPv6Address | None]:
    if case["validation_kind"] != "SERVER" or case.get("expected_peer_name") is None:
        return True, None
    name = case["expected_peer_name"]
    if name["kind"] == "DNS":
        return True, str(name["value"])
    if name["kind"] == "IP":
        return True, ipaddress.ip_address(name["value"])
    return False, None


def _anchors(case: dict[str, Any]) -> Iterator[TrustAnchor]:
    for pem in case["trusted_certs"]:
        try:
            yield TrustAnchor.from_pem(pem)
        except InvalidTrustAnchor:
            continue


def run_case(case: dict[str, Any]) -> Outcome:
    expected = case["expected_result"]
    missing = [f for f in case.get("features") or () if f in NOT_APPLICABLE]
    purpose = _purpose(case)
    supported_name, peer_name = _peer_name(case)
    if missing or purpose is None or not supported_name:
        reason = NOT_APPLICABLE.get(missing[0]) if missing else "purpose or peer-name kind"
        return Outcome(case["id"], expected, NOT_APPLICABLE_VERDICT, str(reason), 0.0)
    when = case.get("validation_time")
    now = datetime.fromisoformat(when) if when else datetime.now(UTC)
    start = time.perf_counter()
    try:
        certificates = [_der(case["peer_certificate"])]
    except ValueError as error:
        certificates = []
        detail = f"peer certificate not PEM-decodable: {error}"
    certificates += [_der(pem) for pem in case["untrusted_intermediates"]]
    accepted = False
    detail = "no trusted certificate usable as an anchor"
    max_depth = case.get("max_chain_depth")
    for anchor in _anchors(case):
        result = validate(
            anchor,
            certificates,
            now,
            purpose,
            peer_name,
            8 if max_depth is None else int(max_depth),
        )
        if isinstance(result, ValidatedChain):
            accepted = True
            detail = f"accepted, chain of {len(result.chain)}"
            break
        detail = (
            f"{result.check} [{result.certificate_index}] {result.reason} ({result.alert.name})"
        )
    seconds = time.perf_counter() - start
    if seconds > CASE_TIME_LIMIT:
        verdict = TOO_SLOW
    elif accepted:
        verdict = PASSED if expected == "SUCCESS" else FALSE_ACCEPT
    else:
        verdict = PASSED if expected == "FAILURE" else FAILED
    return Outcome(case["id"], expected, verdict, detail, seconds)


def run_all(path: Path = LIMBO) -> list[Outcome]:
    return [run_case(case) for case in load_cases(path)]


def summary(outcomes: list[Outcome]) -> Counter[str]:
    return Counter(outcome.verdict for outcome in outcomes)


def pass_rate(outcomes: list[Outcome]) -> float:
    applicable = [o for o in outcomes if o.verdict != NOT_APPLICABLE_VERDICT]
    return sum(o.verdict == PASSED for o in applicable) / len(applicable)


def main() -> int:
    outcomes = run_all()
    width = max(len(o.id) for o in outcomes)
    for outcome in outcomes:
        print(
            f"{outcome.id:<{width}}  {outcome.expected:<7}  {outcome.verdict:<14}"
            f"  {outcome.seconds * 1000:7.1f} ms  {outcome.detail}"
        )
    counts = summary(outcomes)
    print()
    for verdict, count in sorted(counts.items()):
        print(f"{verdict:<16} {count}")
    print(f"pass rate on applicable cases: {pass_rate(outcomes):.1%}")
    return 1 if counts[FALSE_ACCEPT] or counts[TOO_SLOW] else 0


if __name__ == "__main__":
    sys.exit(main())
