"""What a customer can do to their subscription: pause, cancel, resume, change, pay.

Each action checks our state rules before calling Paddle, then stores Paddle's answer at
once (through the same `apply_snapshot` as webhooks, stamped with the answer's `updated_at`)
so the next read reflects it and an older webhook cannot undo it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_app.db import utcnow
from billing_app.errors import InvalidState, NoSubscription, SubscriptionCanceled
from billing_app.models import LIVE_STATUSES, Account, Plan, Subscription
from billing_app.services.subscription_sync import apply_snapshot, is_newer, lock_by_id
from paddle_client import Client
from paddle_client.timestamps import parse_timestamp

DEFAULT_PRORATION = "prorated_immediately"


def subscription_for(session: Session, account_id: str) -> Subscription | None:
    """The account's live subscription, else its most recent one, else None."""
    rows = session.scalars(
        select(Subscription)
        .where(Subscription.account_id == account_id)
        .order_by(Subscription.created_at.desc())
    ).all()
    live = [row for row in rows if row.status in LIVE_STATUSES]
    return (live or rows or [None])[0]


def _locked_subscription(session: Session, account_id: str) -> Subscription:
    current = subscription_for(session, account_id)
    if current is None:
        raise NoSubscription()
    return lock_by_id(session, current.id) or current


def _in_paddle(subscription: Subscription, action: str) -> str:
    if subscription.status == "pending" or not subscription.paddle_subscription_id:
        raise InvalidState(f"Cannot {action} a subscription whose checkout is not complete.")
    return subscription.paddle_subscription_id


def _describe(subscription: Subscription) -> str:
    if subscription.scheduled_action:
        return f"{subscription.status}, with a scheduled {subscription.scheduled_action}"
    return subscription.status


def store_answer(session: Session, subscription: Subscription, entity: dict[str, Any]) -> None:
    """Keep Paddle's answer now, unless a newer webhook already told us more."""
    answered_at = parse_timestamp(entity.get("updated_at")) or utcnow()
    if is_newer(subscription, answered_at, None):
        apply_snapshot(session, subscription, entity, occurred_at=answered_at)
    session.flush()


def pause(
    session: Session,
    paddle: Client,
    account_id: str,
    *,
    effective_from: str,
    resume_at: datetime | None = None,
) -> Subscription:
    subscription = _locked_subscription(session, account_id)
    if subscription.status != "active" or subscription.scheduled_action in {"pause", "cancel"}:
        raise InvalidState(
            f"Only an active subscription can be paused; this one is {_describe(subscription)}."
        )
    entity = paddle.subscriptions.pause(
        _in_paddle(subscription, "pause"), effective_from=effective_from, resume_at=resume_at
    )
    store_answer(session, subscription, entity)
    return subscription


def cancel(
    session: Session, paddle: Client, account_id: str, *, effective_from: str
) -> Subscription:
    subscription = _locked_subscription(session, account_id)
    already = subscription.status == "canceled" or (
        subscription.scheduled_action == "cancel" and effective_from == "next_billing_period"
    )
    if already or subscription.status == "pending":
        raise InvalidState(
            f"This subscription cannot be canceled; it is {_describe(subscription)}."
        )
    entity = paddle.subscriptions.cancel(
        _in_paddle(subscription, "cancel"), effective_from=effective_from
    )
    store_answer(session, subscription, entity)
    return subscription


def resume(session: Session, paddle: Client, account_id: str) -> Subscription:
    """Paused: resume now. A scheduled pause or cancellation: remove it. Canceled: 409."""
    subscription = _locked_subscription(session, account_id)
    if subscription.status == "canceled":
        raise SubscriptionCanceled()
    paddle_id = _in_paddle(subscription, "resume")
    if subscription.status == "paused":
        entity = paddle.subscriptions.resume(paddle_id, effective_from="immediately")
    elif subscription.scheduled_action in {"pause", "cancel"}:
        entity = paddle.subscriptions.remove_scheduled_change(paddle_id)
    else:
        raise InvalidState(
            f"There is nothing to resume; the subscription is {_describe(subscription)}."
        )
    store_answer(session, subscription, entity)
    return subscription


@dataclass(frozen=True)
class PaymentMethodUpdate:
    transaction_id: str
    checkout_url: str | None


def payment_method_update(session: Session, paddle: Client, account_id: str) -> PaymentMethodUpdate:
    subscription = _locked_subscription(session, account_id)
    if subscription.status == "canceled":
        raise SubscriptionCanceled()
    transaction = paddle.subscriptions.update_payment_method_transaction(
        _in_paddle(subscription, "update the payment method of")
    )
    return PaymentMethodUpdate(
        transaction_id=transaction["id"],
        checkout_url=(transaction.get("checkout") or {}).get("url"),
    )


def _changed_items(subscription: Subscription, plan: Plan, quantity: int | None) -> list[dict]:
    """The complete item list Paddle needs: the new plan's price instead of the old one's,
    add-ons kept as they are."""
    items = []
    for item in subscription.items:
        if not item.recurring or item.price_id == subscription.price_id:
            continue
        items.append({"price_id": item.price_id, "quantity": item.quantity})
    items.insert(0, {"price_id": plan.price_id, "quantity": quantity or subscription.quantity})
    return items


@dataclass(frozen=True)
class PlanChange:
    plan: Plan
    quantity: int | None = None
    proration_billing_mode: str = DEFAULT_PRORATION


def _prepare_change(session: Session, account_id: str, change: PlanChange):
    subscription = _locked_subscription(session, account_id)
    if subscription.status not in {"active", "trialing", "past_due"}:
        raise InvalidState(
            f"Only a live subscription can change plan; this one is {_describe(subscription)}."
        )
    if subscription.scheduled_action in {"pause", "cancel"}:
        raise InvalidState(
            f"The subscription has a scheduled {subscription.scheduled_action}; resume it first."
        )
    plan, quantity = change.plan, change.quantity
    if plan.price_id == subscription.price_id and quantity in (None, subscription.quantity):
        raise InvalidState("That is the current plan and quantity.")
    paddle_id = _in_paddle(subscription, "change")
    request = {
        "items": _changed_items(subscription, plan, quantity),
        "proration_billing_mode": change.proration_billing_mode,
    }
    return subscription, paddle_id, request


def change_plan(
    session: Session, paddle: Client, account_id: str, change: PlanChange
) -> Subscription:
    subscription, paddle_id, request = _prepare_change(session, account_id, change)
    store_answer(session, subscription, paddle.subscriptions.update(paddle_id, **request))
    return subscription


def preview_plan_change(
    session: Session, paddle: Client, account_id: str, change: PlanChange
) -> dict[str, Any]:
    """What the change would bill, now and next time. Changes nothing."""
    _, paddle_id, request = _prepare_change(session, account_id, change)
    preview = paddle.subscriptions.preview_update(paddle_id, **request)
    return {
        "immediate_transaction": _totals(preview.get("immediate_transaction")),
        "next_transaction": _totals(preview.get("next_transaction")),
        "update_summary": preview.get("update_summary"),
        "next_billed_at": preview.get("next_billed_at"),
    }


def _totals(transaction: dict[str, Any] | None) -> dict[str, Any] | None:
    if not transaction:
        return None
    totals = (transaction.get("details") or {}).get("totals") or {}
    return {
        "billing_period": transaction.get("billing_period"),
        "currency_code": totals.get("currency_code"),
        "subtotal": totals.get("subtotal"),
        "tax": totals.get("tax"),
        "total": totals.get("total"),
    }


def portal_url(session: Session, paddle: Client, account_id: str) -> str:
    """A fresh customer portal link (it carries a temporary token: never stored)."""
    account = session.get(Account, account_id)
    subscription = subscription_for(session, account_id)
    customer_id = (account.paddle_customer_id if account else None) or (
        subscription.paddle_customer_id if subscription else None
    )
    if not customer_id:
        raise NoSubscription("This account has no Paddle customer yet; check out first.")
    subscription_ids = (
        [subscription.paddle_subscription_id]
        if subscription is not None and subscription.paddle_subscription_id
        else []
    )
    session_data = paddle.customers.create_portal_session(customer_id, subscription_ids)
    return session_data["urls"]["general"]["overview"]
