"""The simulator's clock: real time plus an offset that `/_sim/clock/advance` moves."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SimClock:
    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta()


def stamp(moment: datetime | None) -> str | None:
    """Paddle's RFC 3339 form: UTC, microseconds, `Z`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
