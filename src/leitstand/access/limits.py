"""Rate limits: token buckets per key (tenant, user name, client address), answered with 429."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from leitstand.domain.errors import RateLimited

MAX_KEYS = 100_000  # the least recently used keys are forgotten beyond this (a full bucket again)


class RateLimiter:
    """`rate` units per second per key, with bursts up to `burst` units."""

    def __init__(
        self, rate: float, burst: float, what: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate, self.burst, self._what = rate, burst, what
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Raise like `take` would if one unit were asked for, without spending anything."""
        self.take(key, 1.0, spend=False)

    def take(self, key: str, units: float = 1.0, spend: bool = True) -> None:
        """Spend `units` of `key`'s bucket or raise RateLimited saying when to retry. A request larger
        than the burst is allowed when the bucket is full, and leaves it in debt."""
        with self._lock:
            now = self._clock()
            level, seen = self._buckets.pop(key, (self.burst, now))
            level = min(self.burst, level + (now - seen) * self.rate)
            if level < min(units, self.burst):
                self._buckets[key] = (level, now)
                wait = (min(units, self.burst) - level) / self.rate
                raise RateLimited(
                    f"{self._what} limit reached ({self.rate:g}/s, bursts of {self.burst:g}); "
                    f"retry in {math.ceil(wait)} s",
                    retry_after_s=max(1, math.ceil(wait)),
                )
            self._buckets[key] = (level - units if spend else level, now)
            while len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
