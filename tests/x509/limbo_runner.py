"""Run x509-limbo (../shared/x509-limbo/limbo.json) and its BetterTLS cases
(../shared/x509-limbo/bettertls.json.gz) through `pinata.x509`.

Each case is judged passed, failed, FALSE ACCEPT (a case the suite expects
to fail that we accepted: the one outcome we never tolerate), not applicable
(a feature we deliberately lack, e.g. revocation) or too slow. A failure is
explained when our refusal is one a named policy (`POLICIES`) makes on
purpose: matched on the check we failed and its reason, never on the case's
name. `python -m tests.x509.limbo_runner [limbo|bettertls]` prints every
case and, per family, passed / failed / not applicable / false accepts.

Time bound: every case's validation must take under CASE_TIME_LIMIT of
process CPU time (so that a neighbour's load on a shared machine does not
count), best of three runs when the first is over.
"""

from __future__ import annotations

import dataclasses
import gzip
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

from pinata.x509 import (
    Check,
    InvalidTrustAnchor,
    Purpose,
    TrustAnchor,
    ValidatedChain,
    ValidationFailure,
    validate,
)
from pinata.x509.parse import ParseCache

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "x509-limbo"
LIMBO = SHARED / "limbo.json"
BETTERTLS = SHARED / "bettertls.json.gz"
SUITES = {"limbo": LIMBO, "bettertls": BETTERTLS}

# Features the project lacks on purpose: such cases are not applicable.
NOT_APPLICABLE = {
    "has-crl": "no revocation checking (the appliance does none)",
    "pedantic-public-suffix-wildcard": "no Public Suffix List is carried",
}
CASE_TIME_LIMIT = 0.010  # seconds of CPU per validation (the README's figure)
ATTEMPTS = 3


@dataclass(frozen=True)
class Policy:
    """A deliberate refusal of chains a suite expects us to accept."""

    check: Check
    reason: str  # a substring of our failure's reason
    why: str


# Every expected-SUCCESS case we refuse must be refused by one of these; the
# README and pinata/x509/DIFFERENCES.md give the counts the tests enforce.
POLICIES = {
    "cn-copy-of-san": Policy(
        Check.common_name,
        "commonName is not a canonical copy",
        "CA/B BR §7.1.4.3: a server certificate's CN is one of its SANs, "
        "written canonically (BetterTLS leaves carry unrelated CNs)",
    ),
    "ca-never-a-leaf": Policy(
        Check.basic_constraints,
        "leaf is a CA certificate",
        "CA/B BR §7.1.2.7.8: a cA=TRUE certificate never authenticates a peer",
    ),
    "leaf-eku-required": Policy(
        Check.eku,
        "leaf without extendedKeyUsage",
        "CA/B BR §7.1.2.7.6: a subscriber certificate MUST carry extKeyUsage "
        "(limbo's rfc5280 and webpki cases conflict; we take the webpki side)",
    ),
    "name-constraints-critical": Policy(
        Check.name_constraints,
        "nameConstraints not critical",
        "RFC 5280 §4.2.1.10: conforming CAs MUST mark nameConstraints critical",
    ),
    "anchor-aki": Policy(
        Check.extension,
        "cross-signed anchor without AKI",
        "RFC 5280 §4.2.1.1: only a self-signed certificate may omit the AKI, the anchor included",
    ),
}

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
    seconds: float  # CPU seconds of the validation, best attempt
    check: Check | None = None  # why we refused, when we did
    reason: str = ""

    @property
    def family(self) -> str:
        return self.id.rsplit("::", 1)[0] if "::" in self.id else self.id

    @property
    def policy(self) -> str | None:
        """The named policy that explains a failure, if one does."""
        for name, policy in POLICIES.items():
            if self.check == policy.check and policy.reason in self.reason:
                return name
        return None


def load_cases(path: Path) -> list[dict[str, Any]]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    cases: list[dict[str, Any]] = json.loads(raw)["testcases"]
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


def _anchors(case: dict[str, Any]) -> Iterator[TrustAnchor | InvalidTrustAnchor]:
    """The case's trusted certificates as anchors, sharing one ParseCache (a
    memo of a pure function): a trust store of several anchors parses each
    certificate the peer sent once, not once per anchor."""
    cache = ParseCache()
    for pem in case["trusted_certs"]:
        try:
            yield dataclasses.replace(TrustAnchor.from_pem(pem), cache=cache)
        except InvalidTrustAnchor as refused:
            yield refused


def _judge(
    anchors: list[TrustAnchor | InvalidTrustAnchor],
    certificates: list[bytes],
    now: datetime,
    purpose: Purpose,
    peer_name: str | ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    max_depth: int,
) -> ValidatedChain | ValidationFailure | InvalidTrustAnchor | None:
    """The first anchor's acceptance, else the last refusal."""
    last: ValidationFailure | InvalidTrustAnchor | None = None
    for anchor in anchors:
        if isinstance(anchor, InvalidTrustAnchor):
            last = anchor
            continue
        result = validate(anchor, certificates, now, purpose, peer_name, max_depth)
        if isinstance(result, ValidatedChain):
            return result
        last = result
    return last


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
    certificates = [_der(case["peer_certificate"])]
    certificates += [_der(pem) for pem in case["untrusted_intermediates"]]
    max_depth = case.get("max_chain_depth")
    depth = 8 if max_depth is None else int(max_depth)
    best = float("inf")
    for _ in range(ATTEMPTS):
        # The anchors are parsed at start-up in the appliance: not timed.
        anchors = list(_anchors(case))
        start = time.process_time()
        result = _judge(anchors, certificates, now, purpose, peer_name, depth)
        best = min(best, time.process_time() - start)
        if best <= CASE_TIME_LIMIT:
            break
    return _outcome(case["id"], expected, result, best)


def _outcome(
    case_id: str,
    expected: str,
    result: ValidatedChain | ValidationFailure | InvalidTrustAnchor | None,
    seconds: float,
) -> Outcome:
    if isinstance(result, ValidatedChain):
        verdict = PASSED if expected == "SUCCESS" else FALSE_ACCEPT
        detail = f"accepted, chain of {len(result.chain)}"
        check, reason = None, ""
    else:
        verdict = PASSED if expected == "FAILURE" else FAILED
        if result is None:
            check, reason, detail = None, "", "no trusted certificate"
        elif isinstance(result, InvalidTrustAnchor):
            check, reason = result.check, result.reason
            detail = f"anchor refused: {check} {reason}"
        else:
            check, reason = result.check, result.reason
            detail = f"{check} [{result.certificate_index}] {reason} ({result.alert.name})"
    if seconds > CASE_TIME_LIMIT and verdict != FALSE_ACCEPT:
        verdict = TOO_SLOW
    return Outcome(case_id, expected, verdict, detail, seconds, check, reason)


def run_all(path: Path = LIMBO) -> list[Outcome]:
    return [run_case(case) for case in load_cases(path)]


def summary(outcomes: list[Outcome]) -> Counter[str]:
    return Counter(outcome.verdict for outcome in outcomes)


def pass_rate(outcomes: list[Outcome]) -> float:
    applicable = [o for o in outcomes if o.verdict != NOT_APPLICABLE_VERDICT]
    return sum(o.verdict == PASSED for o in applicable) / len(applicable)


def policy_counts(outcomes: list[Outcome]) -> Counter[str]:
    """Failures by the policy that explains them ("UNEXPLAINED" if none)."""
    return Counter(o.policy or "UNEXPLAINED" for o in outcomes if o.verdict == FAILED)


def family_table(outcomes: list[Outcome]) -> str:
    rows: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        rows.setdefault(outcome.family, Counter())[outcome.verdict] += 1
    columns = (PASSED, FAILED, NOT_APPLICABLE_VERDICT, FALSE_ACCEPT, TOO_SLOW)
    width = max(len(family) for family in rows)
    lines = [f"{'family':<{width}}  " + "  ".join(f"{c:>14}" for c in columns)]
    for family, counts in sorted(rows.items()):
        lines.append(f"{family:<{width}}  " + "  ".join(f"{counts[c]:>14}" for c in columns))
    return "\n".join(lines)


def report(outcomes: list[Outcome]) -> str:
    lines = [family_table(outcomes), ""]
    for verdict, count in sorted(summary(outcomes).items()):
        lines.append(f"{verdict:<16} {count}")
    lines.append(f"pass rate on applicable cases: {pass_rate(outcomes):.1%}")
    for name, count in sorted(policy_counts(outcomes).items()):
        lines.append(f"false rejects by policy {name}: {count}")
    slowest = max(outcomes, key=lambda o: o.seconds)
    lines.append(f"slowest case: {slowest.id} {slowest.seconds * 1000:.2f} ms CPU")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    chosen = argv or list(SUITES)
    status = 0
    for name in chosen:
        outcomes = run_all(SUITES[name])
        if name == "limbo":
            width = max(len(o.id) for o in outcomes)
            for o in outcomes:
                print(
                    f"{o.id:<{width}}  {o.expected:<7}  {o.verdict:<14}"
                    f"  {o.seconds * 1000:6.2f} ms  {o.detail}"
                )
        print(f"\n== {name}: {len(outcomes)} cases\n{report(outcomes)}\n")
        counts = summary(outcomes)
        if counts[FALSE_ACCEPT] or counts[TOO_SLOW] or policy_counts(outcomes)["UNEXPLAINED"]:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
