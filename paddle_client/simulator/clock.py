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


def add_interval(moment: datetime, interval: str, frequency: int = 1) -> datetime:
    """One billing cycle later (months clamp to the last day, as billing systems do)."""
    if interval == "day":
        return moment + timedelta(days=frequency)
    if interval == "week":
        return moment + timedelta(weeks=frequency)
    months = frequency * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    for day in (moment.day, 30, 29, 28):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise ValueError("unreachable")
