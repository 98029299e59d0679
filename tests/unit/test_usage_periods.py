"""Which period usage counts in, and the quota arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing_app.errors import PeriodClosed, ValidationFailed
from billing_app.services.usage.meters import Meter
from billing_app.services.usage.periods import (
    Period,
    billing_period,
    calendar_month,
    checked,
)
from paddle_client.timestamps import add_interval


def at(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


CURRENT = Period(at(2026, 1, 31, 12), at(2026, 2, 28, 12))
LATE = timedelta(hours=1)


def test_a_month_from_the_31st_is_the_last_day_of_the_next_month():
    assert add_interval(at(2026, 1, 31), "month", 1) == at(2026, 2, 28)
    assert add_interval(at(2026, 3, 31), "month", -1) == at(2026, 2, 28)
    assert add_interval(at(2024, 2, 29), "year", 1) == at(2025, 2, 28)
    assert add_interval(at(2026, 1, 1), "week", 2) == at(2026, 1, 15)


def test_usage_counts_in_the_subscriptions_period_that_holds_it():
    assert billing_period(CURRENT, "month", 1, at(2026, 2, 10)) == CURRENT
    assert billing_period(CURRENT, "month", 1, CURRENT.start) == CURRENT  # starts are inside
    # the renewal's webhook is late: the next period, by the plan's interval
    assert billing_period(CURRENT, "month", 1, CURRENT.end) == Period(
        CURRENT.end, at(2026, 3, 28, 12)
    )
    assert billing_period(CURRENT, "month", 1, at(2026, 1, 20)) == Period(
        at(2025, 12, 31, 12), CURRENT.start
    )


def test_free_tier_usage_counts_in_calendar_months_utc():
    assert calendar_month(at(2026, 2, 28, 23, 59)) == Period(at(2026, 2, 1), at(2026, 3, 1))
    assert calendar_month(at(2026, 12, 31, 23)) == Period(at(2026, 12, 1), at(2027, 1, 1))


def test_a_period_takes_late_usage_for_a_while_then_closes():
    now = CURRENT.end + timedelta(minutes=59)
    assert checked(CURRENT, at(2026, 2, 27), now, LATE) == CURRENT
    with pytest.raises(PeriodClosed):
        checked(CURRENT, at(2026, 2, 27), CURRENT.end + timedelta(minutes=61), LATE)


def test_usage_from_the_future_is_refused():
    with pytest.raises(ValidationFailed):
        checked(CURRENT, at(2026, 2, 10, 1), at(2026, 2, 10), LATE)


def test_quota_arithmetic():
    meter = Meter("api_calls", included=100_000, hard_limit=150_000, overage_unit=1000)
    assert meter.admits(149_999, 1) and not meter.admits(149_999, 2)
    assert (meter.remaining(120_000), meter.remaining(160_000)) == (30_000, 0)
    assert (meter.overage(99_999), meter.overage(100_001)) == (0, 1)
    assert [meter.charge_quantity(used) for used in (100_000, 100_001, 101_000, 101_001)] == [
        0,
        1,
        1,
        2,
    ]
    assert Meter("seats", included=5).admits(10**9, 10**9)  # no cap
    assert Meter("seats", included=5).remaining(7) is None
