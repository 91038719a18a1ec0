"""A bounded in-memory history of attempts on the bounty ports, per minute.

Fed by the journal as each connection's record is written; holds at most one
bucket per minute for the last 24 hours (1,440 buckets of a few counters
each), and the count of X.509 refusals by the check that failed (at most
`MAX_CHECKS` names). Nothing else is kept, so a flood of connections costs
counters, not memory.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime

from pinata.appliance.journal import ConnectionRecord
from pinata.appliance.outcome import REFUSED_GROUPS, StatGroup

MINUTES = 24 * 60
MAX_CHECKS = 32
BOUNTY_LISTENERS = ("tls_server", "connect_back", "tls_client")
# The validator's reasons start with the check's name (pinata.x509.api):
# "eku (certificate 0): ..."; the engine may put its own words before it.
_CHECK = re.compile(r"(?:^|: )([a-z][a-z0-9_]{1,40})(?: \(certificate \d+\))?: ")


class Kind:
    """How the chart colours an outcome."""

    released = "released"
    refused = "refused"
    other = "other"


KINDS = (Kind.released, Kind.refused, Kind.other)

_REFUSED = frozenset(REFUSED_GROUPS)


def kind_of(group: StatGroup) -> str:
    """The chart's kind for a statistics group: released, refused (a check said no), other."""
    if group is StatGroup.secret_released:
        return Kind.released
    return Kind.refused if group in _REFUSED else Kind.other


def failed_check(detail: str | None) -> str | None:
    """The X.509 check named in a refusal's detail, if one is."""
    if not detail:
        return None
    found = _CHECK.search(detail)
    return found.group(1) if found else None


@dataclass
class Bucket:
    """One minute (since the epoch) and its counts by kind."""

    minute: int
    counts: Counter[str]


class History:
    """Attempts per minute for the last 24 hours, and X.509 refusals by check."""

    def __init__(self, minutes: int = MINUTES) -> None:
        self.minutes = minutes
        self.buckets: deque[Bucket] = deque(maxlen=minutes)
        self.x509_checks: Counter[str] = Counter()

    def observe(self, record: ConnectionRecord) -> None:
        """Count one finished connection (web page visits are not attempts)."""
        if record.listener not in BOUNTY_LISTENERS:
            return
        group = record.stat_group
        self.add(record.started, kind_of(group))
        if group is StatGroup.x509_failure:
            check = failed_check(record.detail) or "other"
            if check in self.x509_checks or len(self.x509_checks) < MAX_CHECKS:
                self.x509_checks[check] += 1
            else:
                self.x509_checks["other"] += 1

    def add(self, when: datetime, kind: str) -> None:
        """Count one attempt of `kind` in the minute of `when`; older than what is held: dropped."""
        minute = int(when.timestamp() // 60)
        if self.buckets and self.buckets[-1].minute == minute:
            self.buckets[-1].counts[kind] += 1
            return
        if self.buckets and minute < self.buckets[-1].minute:
            # A record that started before the latest one (a long connection):
            # count it in its own minute if that bucket is still held.
            for bucket in reversed(self.buckets):
                if bucket.minute == minute:
                    bucket.counts[kind] += 1
                    return
            return
        self.buckets.append(Bucket(minute, Counter({kind: 1})))

    def series(self, now: datetime, bin_minutes: int) -> list[Counter[str]]:
        """Counts per bin over the last 24 hours, oldest first; the last bin holds now."""
        bins = self.minutes // bin_minutes
        end = int(now.timestamp() // 60)
        out: list[Counter[str]] = [Counter() for _ in range(bins)]
        for bucket in self.buckets:
            age = end - bucket.minute
            if 0 <= age < bins * bin_minutes:
                out[bins - 1 - age // bin_minutes].update(bucket.counts)
        return out
