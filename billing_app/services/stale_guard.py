"""The stale-event guard, for every entity we keep from Paddle's events (subscriptions,
transactions, adjustments).

Every write records the time of the Paddle state it came from (`last_event_at`: an
event's `occurred_at`, or an API answer's `updated_at`). A snapshot older than that changes
nothing. For two events stamped with the same instant the larger `event_id` wins (Paddle's
ids sort by time), so any delivery order ends the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Versioned(Protocol):
    """What the guard reads and writes (`billing_app.models._columns.PaddleVersioned`)."""

    last_event_at: datetime | None
    last_event_id: str | None


def is_newer(row: Versioned, occurred_at: datetime, event_id: str | None) -> bool:
    """Is Paddle state from `occurred_at` (event `event_id`) newer than what the row holds?"""
    last = row.last_event_at
    if last is None or occurred_at > last:
        return True
    if occurred_at < last:
        return False
    if row.last_event_id is None:
        return True
    return event_id is not None and event_id > row.last_event_id


def mark_applied(row: Versioned, occurred_at: datetime, event_id: str | None) -> None:
    row.last_event_at = occurred_at
    row.last_event_id = event_id
