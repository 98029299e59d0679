"""Per-key token buckets in one process's memory: a rate limit that costs less than the
cheapest request it guards.

Entitlement reads are answered from memory in microseconds; Flask-Limiter's shared counter
(and its bookkeeping, or a Redis round trip) cost more than the read itself. A bucket per
account in each process still stops one caller from flooding a process; a caller that spreads
its reads over N processes gets at most N times the rate, each read costing microseconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from limits import parse


@dataclass(frozen=True)
class Taken:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # unix seconds when the bucket is full again
    retry_after: int  # seconds until one token is back (when refused)

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class TokenBuckets:
    """`capacity` tokens per key, refilled continuously over `period` seconds; the least
    recently used keys are forgotten beyond `size` (a forgotten key starts full)."""

    def __init__(
        self,
        capacity: int,
        period: float,
        *,
        size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.capacity = capacity
        self.per_second = capacity / period
        self.size = size
        self.clock, self.wall_clock = clock, wall_clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_rate(cls, rate: str, **options) -> TokenBuckets:
        """From a Flask-Limiter rate such as "600/minute"."""
        item = parse(rate)
        return cls(item.amount, item.get_expiry(), **options)

    def take(self, key: str) -> Taken:
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.per_second)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.size:
                self._buckets.popitem(last=False)
        until_full = (self.capacity - tokens) / self.per_second
        return Taken(
            allowed=allowed,
            limit=self.capacity,
            remaining=int(tokens),
            reset_at=math.ceil(self.wall_clock() + until_full),
            retry_after=max(1, math.ceil((1 - tokens) / self.per_second)),
        )
