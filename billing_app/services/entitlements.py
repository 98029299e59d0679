"""May this account use the product now? Answered from our table alone, in one query.

This is the read every other service makes on every request, so it reads only the columns
the access rule needs, in one round trip, without building ORM objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, select

from billing_app.models import Plan, Subscription
from billing_app.services.access import AccessPolicy, Entitlements, entitlements_for


@dataclass(frozen=True)
class _Grant:
    slug: str
    features: list[str]
    limits: dict[str, Any]


# The account's live subscription, else its latest one, with its plan.
_CURRENT = (
    select(
        Subscription.status,
        Subscription.current_period_start,
        Subscription.scheduled_action,
        Subscription.scheduled_effective_at,
        Plan.slug,
        Plan.features,
        Plan.limits,
    )
    .outerjoin(Plan, Plan.id == Subscription.plan_id)
    .where(Subscription.account_id == bindparam("account_id"))
    .order_by(
        # Live first. (Only `canceled` is not live; an equality keeps the statement free of
        # an expanding IN list, which would be rebuilt on every execution.)
        case((Subscription.status == "canceled", 1), else_=0),
        Subscription.created_at.desc(),
    )
    .limit(1)
)


def account_entitlements(
    connection: Connection, account_id: str, now: datetime, policy: AccessPolicy
) -> Entitlements:
    row = connection.execute(_CURRENT, {"account_id": account_id}).first()
    if row is None:
        return entitlements_for(None, None, now, policy)
    plan = _Grant(row.slug, row.features or [], row.limits or {}) if row.slug else None
    return entitlements_for(row, plan, now, policy)
