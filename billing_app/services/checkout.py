"""Starting a checkout: a pending subscription of ours, and a Paddle transaction to pay it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing_app.errors import PlanNotFound, SubscriptionExists
from billing_app.models import Plan, Subscription
from billing_app.services.accounts import attach_customer, ensure_account, live_subscription
from paddle_client import Client

OPEN_TRANSACTION_STATUSES = {"draft", "ready"}


@dataclass(frozen=True)
class CheckoutStarted:
    subscription_id: str
    transaction_id: str
    checkout_url: str | None


def find_plan(session: Session, *, slug: str | None = None, price_id: str | None = None) -> Plan:
    """An active plan by slug or Paddle price id."""
    query = select(Plan).where(Plan.active.is_(True))
    query = query.where(Plan.slug == slug) if slug else query.where(Plan.price_id == price_id)
    plan = session.scalars(query).first()
    if plan is None:
        raise PlanNotFound(f"No active plan {slug or price_id!r}.")
    return plan


def _pending_subscription(session: Session, account_id: str) -> Subscription:
    """The account's pending checkout, reused across clicks; created if there is none."""
    current = live_subscription(session, account_id)
    if current is not None and current.status != "pending":
        raise SubscriptionExists(
            f"This account already has a {current.status} subscription; change it instead."
        )
    if current is not None:
        return current
    try:
        with session.begin_nested():
            current = Subscription(account_id=account_id, status="pending")
            session.add(current)
    except IntegrityError:
        # A second click raced this one: use the row it made.
        current = live_subscription(session, account_id)
        if current is None or current.status != "pending":
            raise SubscriptionExists() from None
    return current


def _reusable_transaction(paddle: Client, subscription: Subscription, plan: Plan, quantity: int):
    """The pending row's open transaction, if it is for the same price and quantity."""
    if not subscription.paddle_transaction_id:
        return None
    if (subscription.price_id, subscription.quantity) != (plan.price_id, quantity):
        return None
    transaction = paddle.transactions.get(subscription.paddle_transaction_id)
    return transaction if transaction.get("status") in OPEN_TRANSACTION_STATUSES else None


def start_checkout(
    session: Session,
    paddle: Client,
    account_id: str,
    email: str | None,
    plan: Plan,
    *,
    quantity: int = 1,
    checkout_url: str | None = None,
) -> CheckoutStarted:
    account = ensure_account(session, account_id, email)
    subscription = _pending_subscription(session, account.id)

    transaction = _reusable_transaction(paddle, subscription, plan, quantity)
    if transaction is None:
        if account.paddle_customer_id is None and account.email:
            customer = paddle.customers.get_or_create(
                account.email, custom_data={"app_account_id": account.id}
            )
            attach_customer(session, account, customer["id"])
        transaction = paddle.transactions.create(
            [{"price_id": plan.price_id, "quantity": quantity}],
            customer_id=account.paddle_customer_id,
            custom_data={
                "app_account_id": account.id,
                "app_subscription_id": str(subscription.id),
            },
            checkout_url=checkout_url,
        )
    subscription.plan_id = plan.id
    subscription.price_id = plan.price_id
    subscription.quantity = quantity
    subscription.currency = plan.currency
    subscription.paddle_transaction_id = transaction["id"]
    session.flush()
    return CheckoutStarted(
        subscription_id=str(subscription.id),
        transaction_id=transaction["id"],
        checkout_url=(transaction.get("checkout") or {}).get("url"),
    )
