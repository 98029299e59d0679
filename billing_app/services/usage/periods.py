"""Which billing period a moment of usage belongs to.

A subscriber's usage counts in the subscription's billing periods: the current one as
Paddle last told us, and the ones before and after it by the plan's interval (a renewal
whose webhook is late, an event reported late). An account on the free plan counts in
calendar months (UTC). A period takes late reports for USAGE_LATE_SECONDS after it ends,
then it is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billing_app.errors import PeriodClosed, ValidationFailed
from paddle_client.timestamps import add_interval

FUTURE_SKEW = timedelta(minutes=5)  # clocks disagree; a report from further ahead is refused
STEPS = 12  # how many periods before or after the current one are looked for


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def calendar_month(moment: datetime) -> Period:
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return Period(start, add_interval(start, "month", 1))


def billing_period(current: Period, interval: str, count: int, moment: datetime) -> Period:
    """The period of a subscription whose current period is `current` that holds `moment`."""
    period = current
    for _ in range(STEPS):
        if moment in period:
            return period
        if moment < period.start:
            period = Period(add_interval(period.start, interval, -count), period.start)
        else:
            period = Period(period.end, add_interval(period.end, interval, count))
    raise PeriodClosed("That moment is too far from the subscription's current period.")


def checked(period: Period, moment: datetime, now: datetime, late: timedelta) -> Period:
    """`period`, if usage at `moment` may still be recorded in it at `now`."""
    if moment > now + FUTURE_SKEW:
        raise ValidationFailed(
            "Usage cannot be reported ahead of time.",
            errors={"occurred_at": ["must not be in the future"]},
        )
    if period.end + late < now:
        raise PeriodClosed(
            f"The billing period {period.start:%Y-%m-%d}..{period.end:%Y-%m-%d} is closed."
        )
    return period
