"""Memory growth across iterations, which libFuzzer cannot see in Python.

A harness leaking one object per input (an unbounded cache, a journal that
never forgets) keeps its RSS under -rss_limit_mb for a long time; counting
live container objects (what the collector tracks: the records, lists and
dicts state is made of) catches it within CHECK_EVERY inputs of crossing
the bound, and resident memory catches leaked bytes. The harness state a
process builds once (fixtures, the appliance state) is in the baseline,
taken after a warm-up.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

WARMUP = 2_000
CHECK_EVERY = 5_000


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class GrowthWatch:
    """Wraps `one_input`; raises MemoryError (a finding) on growth."""

    def __init__(
        self,
        one_input: Callable[[bytes], None],
        *,
        max_objects: int = int(os.environ.get("PINATA_FUZZ_MAX_OBJECT_GROWTH", "200000")),
        max_rss_mb: float = float(os.environ.get("PINATA_FUZZ_MAX_RSS_GROWTH_MB", "512")),
        warmup: int = WARMUP,
        check_every: int = CHECK_EVERY,
    ) -> None:
        self.one_input = one_input
        self.max_objects = max_objects
        self.max_rss_mb = max_rss_mb
        self.warmup = warmup
        self.check_every = check_every
        self.iterations = 0
        self.objects = 0
        self.rss = 0.0

    def __call__(self, data: bytes) -> None:
        self.one_input(data)
        self.iterations += 1
        n = self.iterations
        if n == self.warmup:
            gc.collect()
            self.objects = len(gc.get_objects())
            self.rss = rss_mb()
        elif n > self.warmup and n % self.check_every == 0:
            gc.collect()
            objects = len(gc.get_objects())
            rss = rss_mb()
            if objects - self.objects > self.max_objects:
                raise MemoryError(
                    f"live objects grew from {self.objects} to {objects} in {n} iterations"
                )
            if rss - self.rss > self.max_rss_mb:
                raise MemoryError(f"RSS grew from {self.rss:.0f} to {rss:.0f} MB in {n} iterations")
