"""Bringing our subscription rows in line with Paddle's subscription entity.

Webhooks, the API's immediate answers to pause/cancel/resume, and the reconciler all go
through `apply_snapshot`, so one rule decides what a Paddle subscription means to us.

Ordering rule: the stale-event guard of `billing_app.services.stale_guard`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from billing_app.db import utcnow
from billing_app.errors import NoSubscription
from billing_app.models import SUBSCRIPTION_STATUSES, Plan, Subscription, SubscriptionItem
from billing_app.services.stale_guard import is_newer
from billing_app.services.subscriptions.accounts import serialise_on_customer
from billing_app.services.subscriptions.ownership import (
    app_ids,
    can_hold,
    checkout_row,
    customer_paid_for_checkout,
    judge_claim,
)
from paddle_client.timestamps import parse_timestamp

log = logging.getLogger(__name__)

PADDLE_STATUSES = ("active", "trialing", "past_due", "paused", "canceled")


class UnknownPaddleStatus(ValueError):
    pass


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any


def period_of(data: dict[str, Any], key: str) -> tuple[datetime | None, datetime | None]:
    period = data.get(key) or {}
    return parse_timestamp(period.get("starts_at")), parse_timestamp(period.get("ends_at"))


def item_values(item: dict[str, Any]) -> dict[str, Any]:
    price = item.get("price") or {}
    return {
        "price_id": price.get("id") or item.get("price_id"),
        "product_id": price.get("product_id") or (item.get("product") or {}).get("id"),
        "quantity": int(item.get("quantity") or 0),
        "status": item.get("status"),
        "recurring": bool(item.get("recurring", price.get("billing_cycle") is not None)),
    }


def _primary_item(items: list[dict[str, Any]], plans: dict[str, Plan]) -> dict[str, Any] | None:
    """The item that says which plan this is: one of our plans, else the first recurring one."""
    for item in items:
        if item["price_id"] in plans:
            return item
    for item in items:
        if item["recurring"]:
            return item
    return items[0] if items else None


# Statements run on every webhook are built once and executed with parameters.
_PLANS_BY_PRICE = select(Plan).where(Plan.price_id.in_(bindparam("price_ids", expanding=True)))


def plans_by_price(session: Session, price_ids: list[str]) -> dict[str, Plan]:
    if not price_ids:
        return {}
    return {
        plan.price_id: plan for plan in session.scalars(_PLANS_BY_PRICE, {"price_ids": price_ids})
    }


def snapshot_values(
    data: dict[str, Any], plans: dict[str, Plan]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Paddle's subscription entity as our column values, and its items."""
    status = data.get("status")
    if status not in PADDLE_STATUSES:
        raise UnknownPaddleStatus(f"unknown subscription status {status!r}")
    items = [item_values(item) for item in data.get("items") or []]
    primary = _primary_item(items, plans)
    period_start, period_end = period_of(data, "current_billing_period")
    scheduled = data.get("scheduled_change") or {}
    plan = plans.get(primary["price_id"]) if primary else None
    values = {
        "status": status,
        "price_id": primary["price_id"] if primary else None,
        "plan_id": plan.id if plan else None,
        "quantity": max(1, primary["quantity"]) if primary else 1,
        "currency": data.get("currency_code"),
        "paddle_customer_id": data.get("customer_id"),
        "current_period_start": period_start,
        "current_period_end": period_end,
        "next_billed_at": parse_timestamp(data.get("next_billed_at")),
        "scheduled_action": scheduled.get("action"),
        "scheduled_effective_at": parse_timestamp(scheduled.get("effective_at")),
        "scheduled_resume_at": parse_timestamp(scheduled.get("resume_at")),
        "paused_at": parse_timestamp(data.get("paused_at")),
        "canceled_at": parse_timestamp(data.get("canceled_at")),
        "trial_ends_at": trial_end(data),
        **discount_values(data.get("discount")),
    }
    return values, items


def discount_values(discount: dict[str, Any] | None) -> dict[str, Any]:
    """Paddle's `discount` of a subscription (`{id, starts_at, ends_at}` or null)."""
    discount = discount or {}
    return {
        "discount_id": discount.get("id"),
        "discount_starts_at": parse_timestamp(discount.get("starts_at")),
        "discount_ends_at": parse_timestamp(discount.get("ends_at")),
    }


def trial_end(data: dict[str, Any]) -> datetime | None:
    """When the subscription's trial ends (or ended): its items' `trial_dates`, else, while
    it is trialing, when Paddle will first bill it."""
    ends = [
        parse_timestamp(dates["ends_at"])
        for item in data.get("items") or []
        if (dates := item.get("trial_dates")) and dates.get("ends_at")
    ]
    if ends:
        return max(ends)
    if data.get("status") == "trialing":
        return parse_timestamp(data.get("next_billed_at"))
    return None


def diff_snapshot(
    subscription: Subscription, values: dict[str, Any], items: list[dict[str, Any]]
) -> list[Change]:
    """What would change if the row took these values (for the drift report)."""
    changes = [
        Change(field, getattr(subscription, field), value)
        for field, value in values.items()
        if getattr(subscription, field) != value
    ]
    current = {item.price_id: (item.quantity, item.status) for item in subscription.items}
    wanted = {item["price_id"]: (item["quantity"], item["status"]) for item in items}
    if current != wanted:
        changes.append(Change("items", _describe_items(current), _describe_items(wanted)))
    return changes


def _describe_items(items: dict[str, tuple[int, str | None]]) -> str:
    return ", ".join(f"{price} x{quantity}" for price, (quantity, _) in sorted(items.items()))


def _replace_items(subscription: Subscription, items: list[dict[str, Any]]) -> None:
    wanted = {item["price_id"]: item for item in items}
    for existing in list(subscription.items):
        if existing.price_id not in wanted:
            subscription.items.remove(existing)
    have = {existing.price_id: existing for existing in subscription.items}
    for price_id, values in wanted.items():
        row = have.get(price_id)
        if row is None:
            subscription.items.append(SubscriptionItem(**values))
        else:
            for key, value in values.items():
                setattr(row, key, value)


def apply_snapshot(
    session: Session,
    subscription: Subscription,
    data: dict[str, Any],
    *,
    occurred_at: datetime,
    event_id: str | None = None,
    plans: dict[str, Plan] | None = None,
) -> list[Change]:
    """Make `subscription` say what Paddle's entity `data` says; return what changed.

    The caller has checked `is_newer` (or, reconciling, Paddle's version) and holds the row
    lock. `plans` (by price id) saves a query per call when the caller already has them.
    """
    if plans is None:
        price_ids = [item_values(item)["price_id"] for item in data.get("items") or []]
        plans = plans_by_price(session, price_ids)
    values, items = snapshot_values(data, plans)
    changes = diff_snapshot(subscription, values, items)
    for field, value in values.items():
        setattr(subscription, field, value)
    _replace_items(subscription, items)
    if data.get("custom_data") is not None:
        subscription.custom_data = data["custom_data"]
    subscription.paddle_updated_at = parse_timestamp(data.get("updated_at"))
    if subscription.last_event_at is None or occurred_at >= subscription.last_event_at:
        subscription.last_event_at = occurred_at
        subscription.last_event_id = event_id
    return changes


def activate_from_checkout(
    session: Session, subscription: Subscription, transaction: dict[str, Any]
) -> None:
    """A paid checkout makes a pending subscription active, with the plan, quantity and
    period the transaction bought, until Paddle's own subscription events say more."""
    items = [item_values(item) for item in transaction.get("items") or []]
    recurring = [item for item in items if item["recurring"]]
    if not recurring:
        return
    plans = plans_by_price(session, [item["price_id"] for item in recurring])
    primary = _primary_item(recurring, plans)
    plan = plans.get(primary["price_id"])
    period_start, period_end = period_of(transaction, "billing_period")
    subscription.status = "active"
    subscription.price_id = primary["price_id"]
    subscription.plan_id = plan.id if plan else subscription.plan_id
    subscription.quantity = max(1, primary["quantity"])
    subscription.currency = transaction.get("currency_code")
    subscription.current_period_start = period_start
    subscription.current_period_end = period_end
    subscription.next_billed_at = period_end


# Finding (and locking) the row a Paddle subscription belongs to


_LOCK_BY_PADDLE_ID = (
    select(Subscription)
    # The items in a second statement, once the row's lock is held: joined to the locking
    # statement, PostgreSQL would give the items as they were before a concurrent writer
    # (an action storing Paddle's answer) committed, and the item that writer added would
    # be added again (a duplicate key).
    .options(selectinload(Subscription.items))
    .where(Subscription.paddle_subscription_id == bindparam("paddle_subscription_id"))
    .with_for_update(of=Subscription)
    .execution_options(populate_existing=True)
)

_LOCK_BY_ID = (
    select(Subscription)
    .where(Subscription.id == bindparam("subscription_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


def lock_by_paddle_id(session: Session, paddle_subscription_id: str) -> Subscription | None:
    parameters = {"paddle_subscription_id": paddle_subscription_id}
    return session.scalars(_LOCK_BY_PADDLE_ID, parameters).unique().first()


def lock_by_id(session: Session, subscription_id: uuid.UUID) -> Subscription | None:
    return session.scalars(_LOCK_BY_ID, {"subscription_id": subscription_id}).first()


def locate_subscription(
    session: Session,
    paddle_subscription_id: str,
    *,
    customer_id: str | None,
    custom_data: Any,
    transaction_id: str | None = None,
    status: str = "pending",
    report_unlinked: bool = True,
) -> Subscription:
    """The row for this Paddle subscription, locked; created (linked if we can) if new.
    A new row kept unlinked is logged at WARNING unless the caller counts them itself
    (`report_unlinked=False`: the reconciler reports one count).

    Linked by Paddle subscription id, else to the checkout of ours it comes from (the
    transaction that created it, `transaction_id`, or the pending row its `custom_data`
    names), else as `ownership.claimed_owner` decides. A subscription we cannot link is
    kept with no account and linked when its customer becomes known.
    """
    found = lock_by_paddle_id(session, paddle_subscription_id)
    if found is not None:
        return found
    ours = checkout_row(
        session, paddle_subscription_id, transaction_id=transaction_id, custom_data=custom_data
    )
    if ours is not None:
        ours.paddle_subscription_id = paddle_subscription_id
        ours.paddle_customer_id = customer_id or ours.paddle_customer_id
        customer_paid_for_checkout(session, ours.account_id, customer_id)
        return ours
    account_id, _ = app_ids(custom_data)
    # A customer event racing this one may be making the account it names, or linking its
    # customer to one: in turn, whichever comes second sees what the first committed.
    serialise_on_customer(session, customer_id)
    subscription = Subscription(
        paddle_subscription_id=paddle_subscription_id,
        paddle_customer_id=customer_id,
        status=status if status in SUBSCRIPTION_STATUSES else "pending",
        custom_data=custom_data if isinstance(custom_data, dict) else None,
        items=[],  # known empty: no query to load them later
    )
    subscription.account_id, unlinked_because = _owner(
        session, account_id, customer_id, subscription
    )
    try:
        with session.begin_nested():
            session.add(subscription)
    except IntegrityError:
        # Another process created it first (the savepoint's rollback discarded our copy):
        # wait for its lock, then use its row (linked as that process decided).
        found = lock_by_paddle_id(session, paddle_subscription_id)
        if found is None:
            raise
        return found
    if unlinked_because:
        log.log(
            logging.WARNING if report_unlinked else logging.DEBUG,
            "paddle subscription %s %s; kept unlinked for an operator",
            paddle_subscription_id,
            unlinked_because,
        )
    # Ours alone until commit: a rival insert of the same id waits on the unique index.
    return subscription


def _owner(
    session: Session, account_id: str | None, customer_id: str | None, subscription: Subscription
) -> tuple[str | None, str | None]:
    """The account a new row belongs to, or None and why not."""
    account, refusal = judge_claim(session, account_id, customer_id)
    if account is None:
        return None, refusal
    if not can_hold(session, account.id, subscription):
        return None, f"belongs to account {account.id}, which already has a live subscription"
    return account.id, None


def store_answer(
    session: Session, subscription_id: uuid.UUID, entity: dict[str, Any]
) -> Subscription:
    """Lock the row and keep Paddle's answer, unless a webhook already told us something
    newer while we waited (the same stale guard as webhooks)."""
    subscription = lock_by_id(session, subscription_id)
    if subscription is None:
        raise NoSubscription()
    answered_at = parse_timestamp(entity.get("updated_at")) or utcnow()
    if is_newer(subscription, answered_at, None):
        apply_snapshot(session, subscription, entity, occurred_at=answered_at)
    session.flush()
    return subscription
