"""Builders for test data: Paddle notifications (signed as Paddle signs them), rows."""

from __future__ import annotations

import copy
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from billing_app.models import Account, Plan, Subscription, UsageCounter
from paddle_client.webhooks import sign
from tests.conftest import JWT_SECRET, WEBHOOK_SECRET, sample

_sequence = itertools.count(1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_id(n: int | None = None) -> str:
    return f"evt_{(n if n is not None else next(_sequence)):026d}"


def envelope(
    event_type: str,
    data: dict[str, Any],
    *,
    occurred_at: datetime | None = None,
    event: str | None = None,
) -> dict[str, Any]:
    n = next(_sequence)
    return {
        "event_id": event or event_id(n),
        "event_type": event_type,
        "occurred_at": stamp(occurred_at or T0 + timedelta(seconds=n)),
        "notification_id": f"ntf_{n:026d}",
        "data": data,
    }


def body_of(notification: dict[str, Any]) -> bytes:
    return json.dumps(notification).encode("utf-8")


def post_webhook(
    client, body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp=None, apply: bool = True
):
    """Deliver a signed notification as Paddle does, then (unless `apply` is False) let the
    worker apply what is due, as the service's own worker would a moment later. Both use
    connections of their own, so the test's session first commits what it holds open
    (on SQLite an open transaction would keep them waiting for its write lock)."""
    from flask import has_app_context

    from billing_app.extensions import db

    if has_app_context():
        db.session.commit()
    header = sign(body, secret, timestamp=timestamp)
    response = client.post(
        "/webhooks/paddle",
        data=body,
        headers={"Paddle-Signature": header, "Content-Type": "application/json"},
    )
    if apply:
        drain(client.application)
    return response


def drain(app) -> dict[str, int]:
    """Run the webhook worker until nothing is due; the outcomes counted."""
    from billing_app.worker import Worker

    worker, outcomes = Worker(app), {}
    while worked := worker.run_once():
        for outcome, count in worked.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    return outcomes


def deliver(client, body: bytes) -> str:
    """Deliver and apply one notification; the outcome the ledger recorded for it."""
    from sqlalchemy import select

    from billing_app.db import single_statement
    from billing_app.models import WebhookEvent

    response = post_webhook(client, body)
    assert response.status_code == 200, response.json
    event_id = json.loads(body)["event_id"]
    with client.application.app_context():
        from billing_app.extensions import db

        with single_statement(db.engine) as connection:
            return connection.execute(
                select(WebhookEvent.status).where(WebhookEvent.event_id == event_id)
            ).scalar_one()


def ledger_row(session, notification: dict[str, Any], *, status="failed", due=True, **fields):
    """A ledger row as a delivery left it: by default failed once and due now (or later)."""
    from billing_app.models import WebhookEvent

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


def subscription_data(**changes: Any) -> dict[str, Any]:
    """Paddle's subscription entity (from the real `subscription.activated` sample)."""
    data = copy.deepcopy(sample("webhook-subscription.activated.json")["data"])
    data.update(changes)
    return data


def checkout_transaction(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(sample("webhook-transaction.completed.json")["data"])
    data.update(changes)
    return data


def one_time_checkout(
    transaction_id: str,
    price_id: str,
    customer_id: str,
    captured_at: datetime,
    *,
    total: str,
    quantity: int = 1,
    **changes: Any,
) -> dict[str, Any]:
    """A completed checkout transaction of `quantity` of one one-time price."""
    data = checkout_transaction(id=transaction_id, customer_id=customer_id, **changes)
    item = data["items"][0]
    item["price"].update(id=price_id, billing_cycle=None, trial_period=None)
    item["quantity"] = quantity
    data["items"] = [item]
    line = data["details"]["line_items"][0]
    line.update(price_id=price_id, quantity=quantity)
    line["totals"]["total"] = total
    data["details"]["line_items"] = [line]
    data["details"]["totals"]["total"] = total
    data["payments"][0]["captured_at"] = captured_at.isoformat().replace("+00:00", "Z")
    data["subscription_id"] = None
    return data


def adjustment(
    adjustment_id: str,
    transaction_id: str,
    customer_id: str,
    *,
    total: str,
    action: str = "refund",
    status: str = "approved",
    **changes: Any,
) -> dict[str, Any]:
    """An adjustment (a refund by default, approved) against a transaction."""
    data = copy.deepcopy(sample("webhook-adjustment.updated.json")["data"])
    data.update(
        id=adjustment_id,
        transaction_id=transaction_id,
        customer_id=customer_id,
        subscription_id=None,
        action=action,
        status=status,
        type=None,
    )
    data.update(changes)
    data["totals"]["total"] = total
    return data


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


def paddle_error_body(code: str, detail: str = "", *, type: str = "request_error") -> dict:
    """Paddle's error envelope, as its API answers a refusal."""
    return {
        "error": {"type": type, "code": code, "detail": detail},
        "meta": {"request_id": "req-test"},
    }


def user_token(subject: str = "acct_1", /, *, secret: str = JWT_SECRET, **claims: Any) -> str:
    now = datetime.now(UTC)
    payload = {
        "sub": subject,
        "email": f"{subject}@example.com",
        "email_verified": True,  # as most identity providers say; tests of the rest say False
        "exp": now + timedelta(hours=1),
    }
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


def auth(subject: str = "acct_1", /, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(subject, **claims)}"}


def paddle_subscription(**changes: Any) -> dict[str, Any]:
    """Paddle's answer to a subscription call (the real `GET /subscriptions/{id}` sample)."""
    data = copy.deepcopy(sample("api-subscription-get.json")["data"])
    data.update(changes)
    return {"data": data, "meta": {"request_id": "req-test"}}


def eventually(check, timeout: float = 15.0, pause: float = 0.1):
    """`check()`'s first truthy result within `timeout` seconds, else its last one."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(pause)
