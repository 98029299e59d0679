"""What the access rule needs of accounts (their `AccessFacts`), read from our tables alone.

This is the read every other service makes on every request. What the access rule needs
of an account (its current subscription's state and plan: its `AccessFacts`) is read in one
round trip without building ORM objects, and kept in each process's `EntitlementCache`;
the answer itself is computed at every read against the clock, so a scheduled cancellation
or the end of a grace period takes effect on time without any event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, or_, select
from sqlalchemy.orm import aliased

from billing_app.db import utcnow
from billing_app.models import Addon, Plan, Purchase, Subscription, SubscriptionItem
from billing_app.services.entitlements.access import (
    AccessPolicy,
    Entitlements,
    clock_changes,
    holds_what_was_paid_for,
    plan_entitlements,
)
from billing_app.services.entitlements.combine import (
    AddonGrant,
    added_seats,
    combined_features,
    combined_limits,
    combined_meters,
)
from billing_app.services.usage.meters import Meter, plan_meters


@dataclass(frozen=True, slots=True)
class Grant:
    """A plan as the access rule and the meters see it."""

    slug: str
    features: tuple[str, ...]
    limits: dict[str, Any]
    meters: dict[str, Meter] = field(default_factory=dict)
    interval: str | None = None
    interval_count: int = 1
    id: int | None = None


@dataclass(frozen=True, slots=True)
class CurrentSubscription:
    status: str
    current_period_start: datetime | None
    scheduled_action: str | None
    scheduled_effective_at: datetime | None
    current_period_end: datetime | None = None
    quantity: int | None = None
    paddle_subscription_id: str | None = None


@dataclass(frozen=True, slots=True)
class Held:
    """The plan and seats a subscription keeps until its new period begins (a change at
    period end that reached Paddle just before the renewal)."""

    plan: Grant | None
    quantity: int | None
    until: datetime


@dataclass(frozen=True, slots=True)
class PurchasedGrant:
    """What a one-time purchase grants, until when (None: for good)."""

    product: str
    features: tuple[str, ...]
    until: datetime | None


@dataclass(frozen=True, slots=True)
class AccessFacts:
    """What the access rule reads of one account: its current subscription (none: free),
    that subscription's plan, and what its purchases grant (not revoked)."""

    subscription: CurrentSubscription | None
    plan: Grant | None
    purchases: tuple[PurchasedGrant, ...] = ()
    held: Held | None = None
    addons: tuple[tuple[AddonGrant, int], ...] = ()  # each add-on on it, and its units

    def as_of(self, now: datetime) -> AccessFacts:
        """The facts the rule judges at `now`: a held plan and seats in place of Paddle's
        new ones while the hold lasts; the add-ons combined into the plan and its seats."""
        subscription, plan, held = self.subscription, self.plan, self.held
        if subscription is None:
            return self
        if held is not None and holds_what_was_paid_for(
            held.until, subscription.current_period_start, now
        ):
            subscription, plan = replace(subscription, quantity=held.quantity), held.plan
        if self.addons and plan is not None:
            plan = replace(
                plan,
                features=combined_features(plan.features, self.addons),
                limits=combined_limits(plan.limits, self.addons),
                meters=combined_meters(plan.meters, self.addons),
            )
            seats = added_seats(self.addons)
            if seats and subscription.quantity is not None:
                subscription = replace(subscription, quantity=subscription.quantity + seats)
        return AccessFacts(subscription, plan, self.purchases)


NOTHING_HELD = AccessFacts(None, None)

_PLAN_COLUMNS = (
    Plan.id.label("plan_id"),
    Plan.slug,
    Plan.features,
    Plan.limits,
    Plan.meters,
    Plan.interval,
    Plan.interval_count,
)
_HELD_PLAN = aliased(Plan)
_HELD_COLUMNS = (
    Subscription.held_until,
    Subscription.held_quantity,
    _HELD_PLAN.id.label("held_plan_id"),
    _HELD_PLAN.slug.label("held_slug"),
    _HELD_PLAN.features.label("held_features"),
    _HELD_PLAN.limits.label("held_limits"),
    _HELD_PLAN.meters.label("held_meters"),
    _HELD_PLAN.interval.label("held_interval"),
    _HELD_PLAN.interval_count.label("held_interval_count"),
)
_COLUMNS = (
    Subscription.status,
    Subscription.current_period_start,
    Subscription.scheduled_action,
    Subscription.scheduled_effective_at,
    Subscription.current_period_end,
    Subscription.quantity,
    Subscription.paddle_subscription_id,
    Subscription.id.label("subscription_id"),
    *_PLAN_COLUMNS,
    *_HELD_COLUMNS,
)
_FREE_PLAN = select(*_PLAN_COLUMNS).where(Plan.free.is_(True), Plan.active.is_(True)).limit(1)

# The account's live subscription, else its latest one. (Only `canceled` is not live; an
# equality keeps the statement free of an expanding IN list, rebuilt on every execution.)
_CURRENT_FIRST = (
    case((Subscription.status == "canceled", 1), else_=0),
    Subscription.created_at.desc(),
)

_CURRENT = (
    select(*_COLUMNS)
    .outerjoin(Plan, Plan.id == Subscription.plan_id)
    .outerjoin(_HELD_PLAN, _HELD_PLAN.id == Subscription.held_plan_id)
    .where(Subscription.account_id == bindparam("account_id"))
    .order_by(*_CURRENT_FIRST)
    .limit(1)
)


def _ranked(account_ids: list[str]):
    rank = func.row_number().over(partition_by=Subscription.account_id, order_by=_CURRENT_FIRST)
    ranked = (
        select(Subscription.account_id, *_COLUMNS, rank.label("rank"))
        .outerjoin(Plan, Plan.id == Subscription.plan_id)
        .outerjoin(_HELD_PLAN, _HELD_PLAN.id == Subscription.held_plan_id)
        .where(Subscription.account_id.in_(account_ids))
        .subquery()
    )
    return select(ranked).where(ranked.c.rank == 1)


@lru_cache(maxsize=1024)
def _interned_grant(
    slug: str, features: tuple[str, ...], limits: str, meters: str, interval, count: int, id
) -> Grant:
    """One `Grant` per plan, shared by every cached account on it (a cache of 100,000
    accounts on three plans holds three)."""
    return Grant(
        slug, features, json.loads(limits), plan_meters(json.loads(meters)), interval, count, id
    )


def grant_of(row, prefix: str = "") -> Grant:
    """A plan's row (`_PLAN_COLUMNS`, or the held plan's with `prefix="held_"`) as its
    `Grant`."""
    mapping = row._mapping

    def column(name: str):
        return mapping[f"{prefix}{name}"]

    return _interned_grant(
        column("slug"),
        tuple(column("features") or ()),
        json.dumps(column("limits") or {}, sort_keys=True),
        json.dumps(column("meters") or {}, sort_keys=True),
        column("interval"),
        column("interval_count") or 1,
        column("plan_id"),
    )


def _facts(row, addons: tuple = ()) -> AccessFacts:
    subscription = CurrentSubscription(
        row.status,
        row.current_period_start,
        row.scheduled_action,
        row.scheduled_effective_at,
        row.current_period_end,
        row.quantity,
        row.paddle_subscription_id,
    )
    held = None
    if row.held_until is not None:
        plan = grant_of(row, "held_") if row.held_slug is not None else None
        held = Held(plan, row.held_quantity, row.held_until)
    plan = grant_of(row) if row.slug is not None else None
    return AccessFacts(subscription, plan, held=held, addons=addons)


def read_free_plan(connection: Connection) -> Grant | None:
    row = connection.execute(_FREE_PLAN).first()
    return grant_of(row) if row is not None else None


_GRANTED = (
    Purchase.account_id,
    Purchase.product_slug,
    Purchase.features,
    Purchase.granted_until,
)


def _read_purchases(connection: Connection, account_ids: list[str]) -> dict[str, tuple]:
    """What each account's purchases grant that has not run out nor been taken back."""
    now = utcnow()
    query = (
        select(*_GRANTED)
        .where(
            Purchase.account_id.in_(account_ids),
            Purchase.revoked_at.is_(None),
            or_(Purchase.granted_until.is_(None), Purchase.granted_until > now),
        )
        .order_by(Purchase.completed_at, Purchase.id)
    )
    found: dict[str, list[PurchasedGrant]] = {}
    for row in connection.execute(query):
        grant = PurchasedGrant(row.product_slug, tuple(row.features or ()), row.granted_until)
        found.setdefault(row.account_id, []).append(grant)
    return {account_id: tuple(grants) for account_id, grants in found.items()}


@lru_cache(maxsize=1024)
def _interned_addon(slug: str, features: tuple[str, ...], limits: str, meters: str, seats: int):
    return AddonGrant(slug, features, json.loads(limits), json.loads(meters), seats)


_ADDON_ITEMS = (
    select(
        SubscriptionItem.subscription_id,
        SubscriptionItem.quantity,
        Addon.slug,
        Addon.features,
        Addon.limits,
        Addon.meters,
        Addon.seats,
    )
    .join(Addon, Addon.price_id == SubscriptionItem.price_id)
    .where(SubscriptionItem.subscription_id.in_(bindparam("ids", expanding=True)))
    .order_by(SubscriptionItem.subscription_id, Addon.id)
)


def _read_addons(connection: Connection, subscription_ids: list) -> dict[Any, tuple]:
    """The add-ons on each subscription (any item whose price is an add-on's, ours or
    made in Paddle's dashboard), with their units."""
    found: dict[Any, list[tuple[AddonGrant, int]]] = {}
    if not subscription_ids:
        return {}
    for row in connection.execute(_ADDON_ITEMS, {"ids": subscription_ids}):
        grant = _interned_addon(
            row.slug,
            tuple(row.features or ()),
            json.dumps(row.limits or {}, sort_keys=True),
            json.dumps(row.meters or {}, sort_keys=True),
            row.seats or 0,
        )
        found.setdefault(row.subscription_id, []).append((grant, max(1, row.quantity)))
    return {key: tuple(value) for key, value in found.items()}


def read_many_access_facts(
    connection: Connection, account_ids: Iterable[str]
) -> dict[str, AccessFacts]:
    """Each account's facts: its subscriptions in one statement (one account: the cheaper
    statement without a window), its purchases in another."""
    wanted = list(dict.fromkeys(account_ids))
    if len(wanted) == 1:
        row = connection.execute(_CURRENT, {"account_id": wanted[0]}).first()
        rows = {wanted[0]: row} if row is not None else {}
    else:
        rows = {row.account_id: row for row in connection.execute(_ranked(wanted))}
    addons = _read_addons(connection, [row.subscription_id for row in rows.values()])
    found = {
        account_id: _facts(row, addons.get(row.subscription_id, ()))
        for account_id, row in rows.items()
    }
    purchased = _read_purchases(connection, wanted)
    facts = {}
    for account_id in wanted:
        held = found.get(account_id, NOTHING_HELD)
        if account_id in purchased:
            held = replace(held, purchases=purchased[account_id])
        facts[account_id] = held
    return facts


def next_change_by_clock(
    facts: AccessFacts, now: datetime, policy: AccessPolicy
) -> datetime | None:
    """The first moment after `now` at which the answer may change with no event: the
    access rule's own moments, a held plan giving way to the new one, a purchase's grant
    running out."""
    subscription, held = facts.subscription, facts.held
    moments = clock_changes(subscription, now, policy)
    if (
        held is not None
        and subscription is not None
        and holds_what_was_paid_for(held.until, subscription.current_period_start, now)
    ):
        moments.append(held.until)
    moments.extend(grant.until for grant in facts.purchases if grant.until and grant.until > now)
    return min(moments, default=None)


def entitlements_from_facts(
    facts: AccessFacts, now: datetime, policy: AccessPolicy, free: Grant | None = None
) -> Entitlements:
    """The access rule's answer, with what the account's purchases grant merged in (their
    features count whether or not a subscription gives access)."""
    recheck_at = next_change_by_clock(facts, now, policy)
    facts = facts.as_of(now)
    answer = replace(
        plan_entitlements(facts.subscription, facts.plan, now, policy, free),
        recheck_at=recheck_at,
    )
    grants = [grant for grant in facts.purchases if grant.until is None or grant.until > now]
    if not grants:
        return answer
    features = list(answer.features)
    for grant in grants:
        features.extend(feature for feature in grant.features if feature not in features)
    return replace(
        answer,
        features=features,
        grants=[
            {"product": grant.product, "features": list(grant.features), "until": grant.until}
            for grant in grants
        ],
    )
