"""Meters: what a plan includes per billing period, its hard cap, and how overage is
billed; and the arithmetic of a period's usage against them (one implementation, used by
recording, reading and billing).

A meter's `aggregation` says what a period's usage is, and so what `included`,
`hard_limit` and overage mean:
- `sum` (the default): the quantities added up (API calls). Past the cap a report is
  refused whole.
- `count`: the number of reports, whatever their quantity (jobs run). Past the cap the
  report is refused.
- `max`: the period's peak quantity (seats in use, concurrent jobs). A report above the
  cap is refused; overage is the peak above `included`.
- `latest`: the last value reported (by `occurred_at`: storage used now). A report above
  the cap is refused; overage is the period's final value above `included`.
- `unique_count`: the distinct `subject`s reported (monthly active users). A new subject
  past the cap is refused; a subject already counted is always admitted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

AGGREGATIONS = ("sum", "count", "max", "latest", "unique_count")


@dataclass(frozen=True, slots=True)
class Meter:
    name: str
    included: int
    hard_limit: int | None = None  # None: no cap
    overage_price_id: str | None = None  # a one-time Paddle price; None: overage not billed
    overage_unit: int = 1  # units one charged quantity of that price covers
    # Percents of `included` (and "hard_limit") whose first crossing in a period is told
    # as `usage.threshold_reached`.
    alerts: tuple[int | str, ...] = ()
    aggregation: str = "sum"

    @classmethod
    def of(cls, name: str, values: dict[str, Any]) -> Meter:
        return cls(
            name,
            int(values.get("included", 0)),
            values.get("hard_limit"),
            values.get("overage_price_id"),
            int(values.get("overage_unit") or 1),
            tuple(values.get("alerts") or ()),
            values.get("aggregation") or "sum",
        )

    def values(self) -> dict[str, Any]:
        """What `of` reads back: the meter as a plans file (and a stored answer) gives it."""
        return {
            "included": self.included,
            "hard_limit": self.hard_limit,
            "overage_price_id": self.overage_price_id,
            "overage_unit": self.overage_unit,
            "alerts": list(self.alerts),
            "aggregation": self.aggregation,
        }

    def with_credits(self, credits: int) -> Meter:
        """The meter with `credits` (bought units) added to what it includes and caps."""
        if credits == 0:
            return self
        cap = None if self.hard_limit is None else self.hard_limit + credits
        return replace(self, included=self.included + credits, hard_limit=cap)

    def increment(self, quantity: int) -> int:
        """What one report adds to a counting meter (`sum`, `count`, `unique_count`)."""
        return quantity if self.aggregation == "sum" else 1

    @property
    def sets_a_value(self) -> bool:
        """A `max` or `latest` meter: a report sets the period's figure, adds nothing."""
        return self.aggregation in ("max", "latest")

    def admits(self, used: int, quantity: int) -> bool:
        """May `quantity` more be recorded on top of `used`? All of it or none."""
        return self.hard_limit is None or used + quantity <= self.hard_limit

    def remaining(self, used: int) -> int | None:
        return None if self.hard_limit is None else max(0, self.hard_limit - used)

    def overage(self, used: int) -> int:
        return max(0, used - self.included)

    def thresholds_crossed(self, before: int, after: int) -> list[tuple[int | str, int]]:
        """The alerts a rise of usage from `before` to `after` reaches for the first time:
        (the alert, the usage it stands at). A percent of nothing included is never
        reached."""
        crossed = []
        for alert in self.alerts:
            if alert == "hard_limit":
                level = self.hard_limit
            else:
                level = -(-self.included * int(alert) // 100) if self.included else None
            if level is not None and before < level <= after:
                crossed.append((alert, level))
        return crossed

    def charge_quantity(self, used: int) -> int:
        """How many of the overage price a period with `used` is billed: whole units,
        rounded up (1,001 calls over, at 1,000 a unit, is 2)."""
        return -(-self.overage(used) // self.overage_unit)


def plan_meters(meters: dict[str, Any] | None) -> dict[str, Meter]:
    return {name: Meter.of(name, values) for name, values in (meters or {}).items()}
