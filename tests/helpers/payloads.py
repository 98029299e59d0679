"""Paddle's entities and notifications, built from its real samples."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers.samples import sample

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


def paddle_subscription(**changes: Any) -> dict[str, Any]:
    """Paddle's answer to a subscription call (the real `GET /subscriptions/{id}` sample)."""
    data = copy.deepcopy(sample("api-subscription-get.json")["data"])
    data.update(changes)
    return {"data": data, "meta": {"request_id": "req-test"}}


def paddle_entity(paddle_id: str, **changes) -> dict:
    """A Paddle subscription entity (from the real API sample) with its own id."""
    data = copy.deepcopy(sample("api-subscription-get.json")["data"])
    for key in ("recurring_transaction_details", "next_transaction", "management_urls"):
        data.pop(key, None)
    data["id"] = paddle_id
    data.update(changes)
    return data


# Paddle's `scheduled_change` of a cancellation at the end of the period.
SCHEDULED_CANCEL = {
    "action": "cancel",
    "effective_at": "2099-03-08T11:02:03.946454Z",
    "resume_at": None,
}


def canceled_now() -> dict[str, Any]:
    """Paddle's answer to a cancellation `immediately`."""
    return paddle_subscription(
        status="canceled",
        canceled_at="2024-02-09T00:00:00Z",
        updated_at="2024-02-09T00:00:00Z",
        current_billing_period=None,
        next_billed_at=None,
    )


def paddle_error_body(code: str, detail: str = "", *, type: str = "request_error") -> dict:
    """Paddle's error envelope, as its API answers a refusal."""
    return {
        "error": {"type": type, "code": code, "detail": detail},
        "meta": {"request_id": "req-test"},
    }
