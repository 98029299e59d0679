"""One function per Paddle event type, and the table that dispatches to them.

A handler takes the session and the verified notification, changes our tables (never
committing) and returns the ledger outcome: `processed`, `stale` or `ignored`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from billing_app.services.billing_history import adjustments, transactions
from billing_app.services.customer_links import customer_now_known
from billing_app.services.data_requests import erasure
from billing_app.services.events import payments
from billing_app.services.stale_guard import is_newer
from billing_app.services.subscriptions.accounts import (
    account_for_customer,
    attach_customer,
    ensure_account,
    keep_customer_details,
    serialise_on_customer,
)
from billing_app.services.subscriptions.ownership import (
    app_ids,
    checkout_row,
    customer_paid_for_checkout,
    link_to_customers_account,
)
from billing_app.services.subscriptions.sync import (
    activate_from_checkout,
    apply_snapshot,
    locate_subscription,
    lock_by_paddle_id,
)
from paddle_client.webhooks import Notification

log = logging.getLogger(__name__)

Handler = Callable[[Session, Notification], str]

CHECKOUT_ORIGINS = {"web", "api"}
CHECKOUT_EVENTS = {"transaction.completed", "transaction.paid"}


def sync_subscription(session: Session, notification: Notification) -> str:
    """Any `subscription.*` event: the entity in `data` is Paddle's truth as of `occurred_at`."""
    data = notification.data
    subscription = locate_subscription(
        session,
        data["id"],
        customer_id=data.get("customer_id"),
        custom_data=data.get("custom_data"),
        transaction_id=data.get("transaction_id"),  # in `subscription.created` only
        status=data.get("status", "pending"),
    )
    link_to_customers_account(session, subscription)  # its customer may be known by now
    if not is_newer(subscription, notification.occurred_at, notification.event_id):
        return "stale"
    if data.get("transaction_id") and not subscription.paddle_transaction_id:
        subscription.paddle_transaction_id = data["transaction_id"]
    apply_snapshot(
        session,
        subscription,
        data,
        occurred_at=notification.occurred_at,
        event_id=notification.event_id,
    )
    return "processed"


def activate_checkout(session: Session, notification: Notification) -> str:
    """`transaction.completed` / `.paid` of a checkout (origin web or api) activates it.

    Only a `pending` row changes state here; once any `subscription.*` event has been
    applied, the subscription's own lifecycle is the truth and this only fills in ids.
    Renewals, payment-method updates, plan changes and one-time charges are ignored.
    """
    data = notification.data
    if data.get("origin") not in CHECKOUT_ORIGINS:
        return "ignored"
    paddle_subscription_id = data.get("subscription_id")
    subscription = None
    if paddle_subscription_id:
        subscription = lock_by_paddle_id(session, paddle_subscription_id)
    if subscription is None:
        subscription = checkout_row(
            session,
            paddle_subscription_id,
            transaction_id=data.get("id"),
            custom_data=data.get("custom_data"),
        )
        if subscription is not None:
            customer_paid_for_checkout(session, subscription.account_id, data.get("customer_id"))
    if subscription is None:
        if not paddle_subscription_id:
            return "ignored"  # not ours, or nothing to attach it to until Paddle says more
        subscription = locate_subscription(
            session,
            paddle_subscription_id,
            customer_id=data.get("customer_id"),
            custom_data=data.get("custom_data"),
        )

    if paddle_subscription_id and subscription.paddle_subscription_id is None:
        subscription.paddle_subscription_id = paddle_subscription_id
    subscription.paddle_customer_id = subscription.paddle_customer_id or data.get("customer_id")
    subscription.paddle_transaction_id = subscription.paddle_transaction_id or data.get("id")
    if subscription.status != "pending":
        return "processed"
    activate_from_checkout(session, subscription, data)
    return "processed"


def sync_transaction(session: Session, notification: Notification) -> str:
    """Any `transaction.*` event: the ledger keeps the transaction; a paid checkout also
    activates its subscription (first, so that locks are taken in the subscription
    handlers' order: the subscription, then its customer)."""
    activated = "ignored"
    if notification.event_type in CHECKOUT_EVENTS:
        activated = activate_checkout(session, notification)
    recorded = transactions.keep_transaction(
        session,
        notification.data,
        occurred_at=notification.occurred_at,
        event_id=notification.event_id,
    )
    if recorded == "processed":
        payments.tell_payment(
            session, notification.event_type, notification.event_id, notification.data
        )
    return "processed" if "processed" in (activated, recorded) else recorded


def sync_adjustment(session: Session, notification: Notification) -> str:
    """`adjustment.created` / `.updated`: a refund, credit or chargeback, kept."""
    return adjustments.keep_adjustment(
        session,
        notification.data,
        occurred_at=notification.occurred_at,
        event_id=notification.event_id,
    )


def link_customer(session: Session, notification: Notification) -> str:
    """`customer.*`: a customer our checkout created names its account in `custom_data`;
    any customer an account owns keeps that account's email and name current."""
    data = notification.data
    if erasure.is_erased(session, data.get("id")):
        return "ignored"  # erased on request: its email and name are never kept again
    account_id, _ = app_ids(data.get("custom_data"))
    serialise_on_customer(session, data.get("id"))
    if account_id:
        account = ensure_account(session, account_id)
        attach_customer(session, account, data.get("id"))
    else:
        account = account_for_customer(session, data.get("id"))
        if account is None:
            return "ignored"
    if account.paddle_customer_id == data.get("id"):
        keep_customer_details(account, data)
        customer_now_known(session, account)
    return "processed"


HANDLERS: dict[str, Handler] = {
    **{
        f"subscription.{name}": sync_subscription
        for name in (
            "created",
            "activated",
            "updated",
            "trialing",
            "past_due",
            "paused",
            "resumed",
            "canceled",
            "imported",
        )
    },
    **{
        f"transaction.{name}": sync_transaction
        for name in (
            "created",
            "ready",
            "billed",
            "paid",
            "completed",
            "canceled",
            "past_due",
            "payment_failed",
            "revised",
            "updated",
        )
    },
    "adjustment.created": sync_adjustment,
    "adjustment.updated": sync_adjustment,
    "customer.created": link_customer,
    "customer.updated": link_customer,
    "customer.imported": link_customer,
}
