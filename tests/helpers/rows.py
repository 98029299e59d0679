"""Rows in our tables, committed, for tests that start from a given state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from billing_app.models import (
    Account,
    Plan,
    Product,
    Purchase,
    Subscription,
    UsageCounter,
    WebhookEvent,
)
from tests.helpers.payloads import body_of


def make_plan(session, **fields: Any) -> Plan:
    values = {
        "slug": "starter",
        "name": "Starter",
        "price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke",
        "amount": "3000",
        "currency": "USD",
        "interval": "month",
        "features": ["projects", "exports"],
        "limits": {"projects": 3},
        **fields,
    }
    plan = Plan(**values)
    session.add(plan)
    session.commit()
    return plan


def make_account(session, account_id: str = "acct_1", **fields: Any) -> Account:
    account = Account(
        id=account_id, email=fields.pop("email", f"{account_id}@example.com"), **fields
    )
    session.add(account)
    session.commit()
    return account


def make_subscription(session, **fields: Any) -> Subscription:
    subscription = Subscription(**{"status": "pending", **fields})
    session.add(subscription)
    session.commit()
    return subscription


# The subscription and customer of Paddle's `GET /subscriptions/{id}` sample.
SAMPLE_SUBSCRIPTION = "sub_01hp463gxfvndqjjyqn2n7tkth"
SAMPLE_CUSTOMER = "ctm_01hp462x4578nc20acj9g956yy"


def make_active_subscription(session, account_id: str = "acct_1", **fields: Any) -> Subscription:
    """`account_id` with an active subscription of 10 seats on the starter plan, known to
    Paddle as its API sample's subscription and customer."""
    plan = make_plan(session)
    make_account(session, account_id, paddle_customer_id=SAMPLE_CUSTOMER)
    values = {
        "account_id": account_id,
        "status": "active",
        "plan_id": plan.id,
        "price_id": plan.price_id,
        "quantity": 10,
        "paddle_subscription_id": SAMPLE_SUBSCRIPTION,
        "paddle_customer_id": SAMPLE_CUSTOMER,
        "last_event_at": datetime(2024, 2, 8, tzinfo=UTC),
        **fields,
    }
    return make_subscription(session, **values)


def make_purchase(
    session, account_id: str, slug: str, features: list[str], **fields: Any
) -> Purchase:
    """`account_id` bought the product `slug` (made if new), granting `features`."""
    price_id = f"pri_{slug}"
    product = session.query(Product).filter_by(slug=slug).one_or_none()
    if product is None:
        product = Product(slug=slug, name=slug.title(), price_id=price_id, features=features)
        session.add(product)
        session.flush()
    purchase = Purchase(
        **{
            "account_id": account_id,
            "product_id": product.id,
            "product_slug": slug,
            "paddle_transaction_id": f"txn_{slug}",
            "price_id": price_id,
            "quantity": 1,
            "features": features,
            "completed_at": datetime.now(UTC),
            **fields,
        }
    )
    session.add(purchase)
    session.commit()
    return purchase


def closed_period_counter(
    session,
    *,
    used: int,
    plan_id: int,
    ended: datetime,
    account_id: str = "acct_1",
    paddle_subscription_id: str = SAMPLE_SUBSCRIPTION,
    meter: str = "api_calls",
) -> UsageCounter:
    """What `account_id` used of `meter` in a 30-day period that ended at `ended`."""
    counter = UsageCounter(
        account_id=account_id,
        meter=meter,
        period_start=ended - timedelta(days=30),
        period_end=ended,
        used=used,
        plan_id=plan_id,
        paddle_subscription_id=paddle_subscription_id,
    )
    session.add(counter)
    session.commit()
    return counter


def ledger_row(session, notification: dict[str, Any], *, status="failed", due=True, **fields):
    """A ledger row as a delivery left it: by default failed once and due now (or later)."""
    now = datetime.now(UTC)
    values = {
        "event_id": notification["event_id"],
        "event_type": notification["event_type"],
        "occurred_at": datetime.fromisoformat(notification["occurred_at"].replace("Z", "+00:00")),
        "entity_id": notification["data"].get("id"),
        "payload": body_of(notification).decode(),
        "status": status,
        "attempts": 1,
        "next_attempt_at": now - timedelta(seconds=1) if due else now + timedelta(hours=1),
    }
    row = WebhookEvent(**{**values, **fields})
    session.add(row)
    session.commit()
    return row
