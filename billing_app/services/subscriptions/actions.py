"""What a customer can do to their subscription: pause, cancel, resume, change, pay.

Each action reads the row and checks our state rules, ends that read's transaction, then
asks Paddle with nothing held (a slow Paddle must not stall the webhooks for the same row,
nor, on SQLite, every writer), and then locks the row and stores Paddle's answer through
the same `apply_snapshot` as webhooks, stamped with the answer's `updated_at`, so the next
read reflects it and neither an older webhook nor an older answer can undo a newer one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_app.db import utcnow
from billing_app.errors import (
    AddonNotAllowed,
    CheckoutInProgress,
    InvalidState,
    NoSubscription,
    SubscriptionCanceled,
    ValidationFailed,
)
from billing_app.models import LIVE_STATUSES, Account, Addon, Plan, Subscription
from billing_app.services.plans.catalogue import addons_by_price
from billing_app.services.selling.discount_codes import GivenCode, refusal_of
from billing_app.services.subscriptions import scheduled_changes
from billing_app.services.subscriptions.ownership import refuse_shared_customer
from billing_app.services.subscriptions.sync import lock_by_id, store_answer
from paddle_client import ApiError, Client
from paddle_client.confirm import confirmed_write

DEFAULT_PRORATION = "prorated_immediately"


def account_subscriptions(session: Session, account_id: str) -> list[Subscription]:
    """The account's subscriptions, newest first."""
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.account_id == account_id)
            .order_by(Subscription.created_at.desc())
        )
    )


def current_among(subscriptions: list[Subscription]) -> Subscription | None:
    """Of an account's subscriptions (newest first): the live one, else the most recent."""
    live = [row for row in subscriptions if row.status in LIVE_STATUSES]
    return (live or subscriptions or [None])[0]


def current_subscription(session: Session, account_id: str) -> Subscription | None:
    """The account's live subscription, else its most recent one, else None."""
    return current_among(account_subscriptions(session, account_id))


@dataclass(frozen=True)
class Held:
    """What an action read of the account's subscription before it let go of the database:
    no transaction, and so no lock, stays open while Paddle is asked."""

    id: uuid.UUID
    paddle_id: str | None
    status: str
    scheduled_action: str | None
    price_id: str | None
    quantity: int
    items: tuple[tuple[str, int, bool], ...]  # (price_id, quantity, recurring)
    change_waiting: bool = False  # a change of ours waits for the period's end
    plan_slug: str | None = None

    def describe(self) -> str:
        if self.scheduled_action:
            return f"{self.status}, with a scheduled {self.scheduled_action}"
        return self.status

    def in_paddle(self, action: str) -> str:
        if self.status == "pending":
            raise InvalidState(f"Cannot {action} a subscription whose checkout is not complete.")
        if not self.paddle_id:
            raise CheckoutInProgress()
        return self.paddle_id


def read_and_release(session: Session, account_id: str) -> Held:
    """The account's subscription as it is now; the read's transaction is over on return."""
    current = current_subscription(session, account_id)
    if current is None:
        session.rollback()
        raise NoSubscription()
    held = Held(
        id=current.id,
        paddle_id=current.paddle_subscription_id,
        status=current.status,
        scheduled_action=current.scheduled_action,
        price_id=current.price_id,
        quantity=current.quantity,
        items=tuple((item.price_id, item.quantity, item.recurring) for item in current.items),
        change_waiting=bool(scheduled_changes.open_changes(session, current.id)),
        plan_slug=current.plan.slug if current.plan is not None else None,
    )
    session.rollback()
    return held


def _write(paddle: Client, paddle_id: str, send, landed) -> dict[str, Any]:
    """Send a change to a subscription; if the answer was lost, Paddle's entity says
    whether it landed (see `paddle_client.confirm`). Paddle's refusal of a discount is a
    422 `discount_invalid`."""
    try:
        return confirmed_write(send, lambda: paddle.subscriptions.get(paddle_id), landed)
    except ApiError as error:
        raise refusal_of(error) or error from None


def _scheduled(action: str):
    return lambda entity: (entity.get("scheduled_change") or {}).get("action") == action


def _status_is(status: str):
    return lambda entity: entity.get("status") == status


def pause(
    session: Session,
    paddle: Client,
    account_id: str,
    *,
    effective_from: str,
    resume_at: datetime | None = None,
) -> Subscription:
    held = read_and_release(session, account_id)
    if held.status != "active" or held.scheduled_action in {"pause", "cancel"}:
        raise InvalidState(
            f"Only an active subscription can be paused; this one is {held.describe()}."
        )
    paddle_id = held.in_paddle("pause")
    entity = _write(
        paddle,
        paddle_id,
        lambda: paddle.subscriptions.pause(
            paddle_id, effective_from=effective_from, resume_at=resume_at
        ),
        _status_is("paused") if effective_from == "immediately" else _scheduled("pause"),
    )
    subscription = store_answer(session, held.id, entity)
    scheduled_changes.withdraw(session, held.id, "the subscription was paused")
    return subscription


def cancel(
    session: Session, paddle: Client, account_id: str, *, effective_from: str
) -> Subscription:
    held = read_and_release(session, account_id)
    already = held.status == "canceled" or (
        held.scheduled_action == "cancel" and effective_from == "next_billing_period"
    )
    if already or held.status == "pending":
        raise InvalidState(f"This subscription cannot be canceled; it is {held.describe()}.")
    paddle_id = held.in_paddle("cancel")
    entity = _write(
        paddle,
        paddle_id,
        lambda: paddle.subscriptions.cancel(paddle_id, effective_from=effective_from),
        _status_is("canceled") if effective_from == "immediately" else _scheduled("cancel"),
    )
    subscription = store_answer(session, held.id, entity)
    scheduled_changes.withdraw(session, held.id, "the subscription was canceled")
    return subscription


def activate(session: Session, paddle: Client, account_id: str) -> Subscription:
    """End a trial now: Paddle bills the subscription at once and it turns active."""
    held = read_and_release(session, account_id)
    if held.status != "trialing":
        raise InvalidState(
            f"Only a trialing subscription can be activated; this one is {held.describe()}."
        )
    paddle_id = held.in_paddle("activate")
    entity = _write(
        paddle, paddle_id, lambda: paddle.subscriptions.activate(paddle_id), _status_is("active")
    )
    return store_answer(session, held.id, entity)


def resume(session: Session, paddle: Client, account_id: str) -> Subscription:
    """Paused: resume now. A scheduled pause or cancellation: remove it. A change waiting
    for the period's end: withdraw it (Paddle never heard of it). Canceled: 409."""
    held = read_and_release(session, account_id)
    if held.status == "canceled":
        raise SubscriptionCanceled()
    if held.change_waiting and held.status != "paused" and not held.scheduled_action:
        subscription = lock_by_id(session, held.id)
        scheduled_changes.withdraw(session, held.id, "withdrawn by the customer (resume)")
        session.flush()
        return subscription
    paddle_id = held.in_paddle("resume")
    if held.status == "paused":
        entity = _write(
            paddle,
            paddle_id,
            lambda: paddle.subscriptions.resume(paddle_id, effective_from="immediately"),
            lambda entity: entity.get("status") != "paused",
        )
    elif held.scheduled_action in {"pause", "cancel"}:
        entity = _write(
            paddle,
            paddle_id,
            lambda: paddle.subscriptions.remove_scheduled_change(paddle_id),
            lambda entity: not entity.get("scheduled_change"),
        )
    else:
        raise InvalidState(f"There is nothing to resume; the subscription is {held.describe()}.")
    return store_answer(session, held.id, entity)


@dataclass(frozen=True)
class PaymentMethodUpdate:
    transaction_id: str
    checkout_url: str | None


def payment_method_update(session: Session, paddle: Client, account_id: str) -> PaymentMethodUpdate:
    held = read_and_release(session, account_id)
    if held.status == "canceled":
        raise SubscriptionCanceled()
    transaction = paddle.subscriptions.update_payment_method_transaction(
        held.in_paddle("update the payment method of")
    )
    return PaymentMethodUpdate(
        transaction_id=transaction["id"],
        checkout_url=(transaction.get("checkout") or {}).get("url"),
    )


def _changed_items(held: Held, price_id: str, quantity: int | None) -> list[dict]:
    """The complete item list Paddle needs: the new price instead of the old one, add-ons
    kept as they are."""
    items = [
        {"price_id": item_price, "quantity": item_quantity}
        for item_price, item_quantity, recurring in held.items
        if recurring and item_price != held.price_id
    ]
    items.insert(0, {"price_id": price_id, "quantity": quantity or held.quantity})
    return items


@dataclass(frozen=True)
class PlanChange:
    """A new plan, a new quantity, or both. No plan: the seats of the current one."""

    plan: Plan | None = None
    quantity: int | None = None
    proration_billing_mode: str = DEFAULT_PRORATION
    discount: GivenCode | None = None  # a recurring discount to apply with the change
    effective_from: str = "immediately"  # or "next_billing_period": ours to carry out


def _prepare_change(session: Session, paddle: Client, account_id: str, change: PlanChange):
    price_id = change.plan.price_id if change.plan is not None else None
    held = read_and_release(session, account_id)
    if held.status not in {"active", "trialing", "past_due"}:
        raise InvalidState(
            f"Only a live subscription can change plan; this one is {held.describe()}."
        )
    if held.scheduled_action in {"pause", "cancel"}:
        raise InvalidState(
            f"The subscription has a scheduled {held.scheduled_action}; resume it first."
        )
    price_id = price_id or held.price_id
    if price_id == held.price_id and change.quantity in (None, held.quantity):
        raise InvalidState("That is the current plan and quantity.")
    if change.plan is not None:
        _refuse_stranded_addons(session, held, change.plan)
    paddle_id = held.in_paddle("change")
    at_period_end = change.effective_from == "next_billing_period"
    if change.discount is not None and at_period_end:
        raise ValidationFailed(
            errors={"discount_code": ["a code goes with a change made at once, or on its own"]}
        )
    request = {
        "items": _changed_items(held, price_id, change.quantity),
        # At period end it is sent just before the renewal with `do_not_bill` (and so
        # previewed): the renewal bills the new items in full.
        "proration_billing_mode": "do_not_bill" if at_period_end else change.proration_billing_mode,
    }
    if change.discount is not None:
        discount = change.discount.for_subscription(paddle, [price_id], utcnow())
        request["discount"] = _discount_request(held, discount["id"], "immediately")
    return held, paddle_id, request


def _refuse_stranded_addons(session: Session, held: Held, plan: Plan) -> None:
    """A plan change keeps the add-ons: each must be one that may join the new plan."""
    slug = plan.slug
    addons = addons_by_price(session, [price for price, _, _ in held.items])
    stranded = sorted(addon.slug for addon in addons.values() if not addon.may_join(slug))
    session.rollback()  # nothing held while Paddle answers
    if stranded:
        raise AddonNotAllowed(
            f"The add-on {', '.join(stranded)} cannot join the {slug} plan; remove it"
            " first, or choose another plan.",
            extra={"addons": stranded},
        )


def _discount_request(held: Held, discount_id: str, effective_from: str) -> dict[str, str]:
    """Paddle's `discount` of a subscription update; a trial takes one from its next
    billing period only."""
    if held.status == "trialing":
        effective_from = "next_billing_period"
    return {"id": discount_id, "effective_from": effective_from}


def apply_discount(
    session: Session, paddle: Client, account_id: str, code: GivenCode, effective_from: str
) -> Subscription:
    """Put a recurring discount code on the subscription, now or from its next billing
    period (422 `discount_invalid` for a code that cannot go on it)."""
    held = read_and_release(session, account_id)
    if held.status not in {"active", "trialing"}:
        raise InvalidState(
            f"Only an active or trialing subscription takes a discount; this one is"
            f" {held.describe()}."
        )
    if held.status == "trialing" and effective_from == "immediately":
        raise InvalidState("A subscription on trial takes a discount from its next billing period.")
    paddle_id = held.in_paddle("discount")
    price_ids = [held.price_id] if held.price_id else []
    discount_id = code.for_subscription(paddle, price_ids, utcnow())["id"]
    entity = _write(
        paddle,
        paddle_id,
        lambda: paddle.subscriptions.update(
            paddle_id, discount=_discount_request(held, discount_id, effective_from)
        ),
        lambda entity: (entity.get("discount") or {}).get("id") == discount_id,
    )
    return store_answer(session, held.id, entity)


def _has_items(wanted: list[dict], *, without: str | None = None):
    """Whether Paddle's entity has the `wanted` items (and no longer the price `without`)."""

    def landed(entity: dict[str, Any]) -> bool:
        have = {
            ((item.get("price") or {}).get("id") or item.get("price_id"), item.get("quantity"))
            for item in entity.get("items") or []
        }
        gone = without is None or all(price != without for price, _ in have)
        return {(item["price_id"], item["quantity"]) for item in wanted} <= have and gone

    return landed


def change_plan(
    session: Session, paddle: Client, account_id: str, change: PlanChange
) -> Subscription:
    """Change now (billed by the change's proration mode), or at the end of the period:
    then nothing reaches Paddle until shortly before the renewal (`scheduled_changes`)."""
    held, paddle_id, request = _prepare_change(session, paddle, account_id, change)
    if change.effective_from == "next_billing_period":
        return _change_at_period_end(session, held, change, request["items"][0])
    entity = _write(
        paddle,
        paddle_id,
        lambda: paddle.subscriptions.update(paddle_id, **request),
        _has_items(request["items"]),
    )
    subscription = store_answer(session, held.id, entity)
    scheduled_changes.withdraw(session, held.id, "replaced by a change made at once")
    subscription.held_plan_id = subscription.held_quantity = subscription.held_until = None
    return subscription


def _change_at_period_end(
    session: Session, held: Held, change: PlanChange, main_item: dict[str, Any]
) -> Subscription:
    if held.status not in {"active", "trialing"}:
        raise InvalidState(
            f"Only an active or trialing subscription can change at the end of its period;"
            f" this one is {held.describe()}."
        )
    subscription = _locked(session, held)
    scheduled_changes.schedule(
        session,
        subscription,
        plan=change.plan,
        price_id=main_item["price_id"],
        quantity=main_item["quantity"],
    )
    return subscription


def _locked(session: Session, held: Held) -> Subscription:
    subscription = lock_by_id(session, held.id)
    if subscription is None:
        raise NoSubscription()
    return subscription


def preview_plan_change(
    session: Session, paddle: Client, account_id: str, change: PlanChange
) -> dict[str, Any]:
    """What the change would bill, now and next time. Changes nothing."""
    _, paddle_id, request = _prepare_change(session, paddle, account_id, change)
    return _preview(paddle, paddle_id, request)


@dataclass(frozen=True)
class AddonChange:
    """An add-on's units on the subscription: added, changed, or (0) removed."""

    addon: Addon
    quantity: int
    proration_billing_mode: str = DEFAULT_PRORATION
    effective_from: str = "immediately"  # a removal may wait for the period's end


def _prepare_addon(session: Session, account_id: str, change: AddonChange):
    addon = change.addon  # read before the session lets go (nothing may reload it after)
    slug, price_id, has_quantity = addon.slug, addon.price_id, addon.has_quantity
    joins = set(addon.plans or ())
    held = read_and_release(session, account_id)
    if held.status not in {"active", "trialing"}:
        raise InvalidState(
            f"Only an active or trialing subscription takes add-ons; this one is {held.describe()}."
        )
    if held.scheduled_action in {"pause", "cancel"}:
        raise InvalidState(
            f"The subscription has a scheduled {held.scheduled_action}; resume it first."
        )
    current = {price: quantity for price, quantity, recurring in held.items if recurring}
    if change.quantity == 0 and price_id not in current:
        raise InvalidState(f"The subscription has no add-on {slug!r}.")
    if change.quantity > 0 and joins and held.plan_slug not in joins:
        raise AddonNotAllowed(f"The add-on {slug!r} cannot join the {held.plan_slug} plan.")
    if change.quantity > 1 and not has_quantity:
        raise ValidationFailed(errors={"quantity": [f"{slug} is not sold in a quantity"]})
    if change.quantity and current.get(price_id) == change.quantity:
        raise InvalidState(f"The subscription has {change.quantity} of {slug!r} already.")
    items = [
        {"price_id": price, "quantity": quantity}
        for price, quantity in current.items()
        if price != price_id
    ]
    if change.quantity:
        items.append({"price_id": price_id, "quantity": change.quantity})
    request = {"items": items, "proration_billing_mode": change.proration_billing_mode}
    return held, held.in_paddle("change"), request


def change_addon(
    session: Session, paddle: Client, account_id: str, change: AddonChange
) -> Subscription:
    """Add an add-on, change its units or remove it: at once (billed by the change's
    proration mode, Paddle's `PATCH` with the complete item list), or a removal at the end
    of the period (`scheduled_changes`, sent just before the renewal)."""
    price_id = change.addon.price_id  # read now: `_prepare_addon` ends the transaction
    held, paddle_id, request = _prepare_addon(session, account_id, change)
    if change.quantity == 0 and change.effective_from == "next_billing_period":
        subscription = _locked(session, held)
        scheduled_changes.schedule_removal(session, subscription, price_id)
        return subscription
    entity = _write(
        paddle,
        paddle_id,
        lambda: paddle.subscriptions.update(paddle_id, **request),
        _has_items(request["items"], without=price_id if change.quantity == 0 else None),
    )
    subscription = store_answer(session, held.id, entity)
    scheduled_changes.withdraw(session, held.id, "the add-on changed since", price_id=price_id)
    return subscription


def preview_addon_change(
    session: Session, paddle: Client, account_id: str, change: AddonChange
) -> dict[str, Any]:
    """What adding, changing or removing the add-on would bill. Changes nothing."""
    _, paddle_id, request = _prepare_addon(session, account_id, change)
    if change.quantity == 0 and change.effective_from == "next_billing_period":
        request["proration_billing_mode"] = "do_not_bill"  # as it will be sent
    return _preview(paddle, paddle_id, request)


def _preview(paddle: Client, paddle_id: str, request: dict[str, Any]) -> dict[str, Any]:
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
        "discount": totals.get("discount"),
        "tax": totals.get("tax"),
        "total": totals.get("total"),
    }


def portal_url(session: Session, paddle: Client, account_id: str) -> str:
    """A fresh customer portal link (it carries a temporary token: never stored). Only for
    a Paddle customer that pays for this account alone: the portal shows, cancels and
    changes the payment of every subscription of the customer (a 409 `customer_shared`
    otherwise)."""
    account = session.get(Account, account_id)
    subscription = current_subscription(session, account_id)
    customer_id = (account.paddle_customer_id if account else None) or (
        subscription.paddle_customer_id if subscription is not None else None
    )
    if not customer_id:
        session.rollback()
        raise NoSubscription("This account has no Paddle customer yet; check out first.")
    subscription_ids = (
        [subscription.paddle_subscription_id]
        if subscription is not None
        and subscription.paddle_subscription_id
        and subscription.paddle_customer_id == customer_id
        else []
    )
    try:
        refuse_shared_customer(session, customer_id, account_id)
    finally:
        session.rollback()  # nothing held while Paddle answers
    session_data = paddle.customers.create_portal_session(customer_id, subscription_ids)
    return session_data["urls"]["general"]["overview"]
