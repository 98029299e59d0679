"""The client's counters: what a dashboard or a log line of the host service reads."""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    """Named counters, safe across threads: `stats["fallback_answers"]`."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            self._counts[name] += count

    def __getitem__(self, name: str) -> int:
        return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
