"""How a plan and the add-ons on its subscription combine into what the account may use.

Each unit of an add-on adds to the plan:
- features: joined (each once);
- limits: numbers add up (the plan's 3 projects and two "+10 projects" units: 23); a limit
  the plan leaves unbounded (null) stays unbounded; true or false combine with "or" (an
  add-on can turn a feature limit on, never off); a number beside a boolean: true wins (it
  means "no number needed"), false gives way to the number;
- meters: the units it adds to a meter's allowance per billing period, added to the plan's
  `included` (and to its `hard_limit`, when it has one);
- seats: added to the subscription's quantity.

Used wherever a plan's grant is read for an account (entitlements, usage allowances), so a
subscription made in Paddle's dashboard with extra items is read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from billing_app.services.usage.meters import Meter


@dataclass(frozen=True, slots=True)
class AddonGrant:
    """What one unit of an add-on adds."""

    slug: str
    features: tuple[str, ...]
    limits: dict[str, Any]
    meters: dict[str, int]
    seats: int


def combined_limit(plan_value: Any, added: Any, units: int) -> Any:
    """A plan's limit with `units` of an add-on's limit `added` on top."""
    if isinstance(plan_value, bool) or isinstance(added, bool):
        if plan_value is True or added is True:
            return True
        if isinstance(added, bool):
            return plan_value  # false adds nothing
        return added * units  # the plan's false gives way to the number
    if plan_value is None:
        return None
    return plan_value + added * units


def combined_limits(limits: dict[str, Any], addons: tuple[tuple[AddonGrant, int], ...]):
    combined = dict(limits)
    for addon, units in addons:
        for name, added in addon.limits.items():
            if added is None:
                combined[name] = None  # the add-on lifts the limit
            elif name not in combined:
                combined[name] = added if isinstance(added, bool) else added * units
            else:
                combined[name] = combined_limit(combined[name], added, units)
    return combined


def combined_features(features, addons: tuple[tuple[AddonGrant, int], ...]) -> tuple[str, ...]:
    joined = list(features)
    for addon, _units in addons:
        joined.extend(feature for feature in addon.features if feature not in joined)
    return tuple(joined)


def combined_meters(meters: dict[str, Meter], addons: tuple[tuple[AddonGrant, int], ...]):
    combined = dict(meters)
    for addon, units in addons:
        for name, extra in addon.meters.items():
            if name in combined:  # a cap moves with the allowance
                meter = combined[name]
                cap = None if meter.hard_limit is None else meter.hard_limit + extra * units
                combined[name] = replace(
                    meter, included=meter.included + extra * units, hard_limit=cap
                )
    return combined


def added_seats(addons: tuple[tuple[AddonGrant, int], ...]) -> int:
    return sum(addon.seats * units for addon, units in addons)
