"""What each change to a watched row means to the product: the events a row's state before
and after a transaction gives, one pure function per table.

A row's state is the mapping of the columns its `Watched` reads (None: the row did not
exist, or, for rows kept from Paddle, had no Paddle state yet). The functions never look at
how the change was made, so every path that writes the row (a webhook, a user's action,
reconciliation, an operator's link) tells the same story of the same change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from billing_app.models import Adjustment, Plan, Purchase, Subscription, Transaction
from paddle_client.timestamps import format_timestamp

State = Mapping[str, Any]


@dataclass(frozen=True)
class Emission:
    """An event to be written: for whom, what, about what (`subject`), and, for an event
    that must exist once only whatever happens again, its `once_key`."""

    account_id: str
    type: str
    data: dict[str, Any]
    subject: str | None = None
    once_key: str | None = None


def iso(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


# --- subscriptions -------------------------------------------------------------------

# Changes to these (with the status the same) are a `subscription.updated`.
_UPDATED_WHEN = (
    "plan",
    "quantity",
    "currency",
    "current_period_start",
    "current_period_end",
    "scheduled_action",
    "scheduled_effective_at",
    "trial_ends_at",
)
_ENTERED = {"paused": "paused", "canceled": "canceled", "past_due": "past_due"}


def subscription_shape(state: State) -> dict[str, Any]:
    scheduled = None
    if state["scheduled_action"]:
        scheduled = {
            "action": state["scheduled_action"],
            "effective_at": iso(state["scheduled_effective_at"]),
        }
    return {
        "id": str(state["id"]),
        "paddle_subscription_id": state["paddle_subscription_id"],
        "status": state["status"],
        "plan": state["plan"],
        "seats": state["quantity"],
        "currency": state["currency"],
        "current_period": {
            "starts_at": iso(state["current_period_start"]),
            "ends_at": iso(state["current_period_end"]),
        },
        "scheduled_change": scheduled,
        "trial_ends_at": iso(state["trial_ends_at"]),
        "paused_at": iso(state["paused_at"]),
        "canceled_at": iso(state["canceled_at"]),
    }


def _previous(before: State, after: State, fields) -> dict[str, Any]:
    changed = {}
    for name in fields:
        if before[name] != after[name]:
            old = before[name]
            changed[name] = iso(old) if isinstance(old, datetime) else old
    return changed


def subscription_types(before: State | None, after: State) -> list[str]:
    """The `subscription.*` types of one change, in the order they happened."""
    status = after["status"]
    known = (
        before is not None
        and before["account_id"] == after["account_id"]
        and before["status"] != "pending"
    )
    if not known:
        types = ["subscription.created"]
        if status == "active":
            types.append("subscription.activated")
        elif status in _ENTERED:
            types.append(f"subscription.{_ENTERED[status]}")
        return types
    old = before["status"]
    if status != old:
        if status == "active" and old == "trialing":
            return ["subscription.activated"]
        if status == "active" and old == "paused":
            return ["subscription.resumed"]
        if status in _ENTERED:
            return [f"subscription.{_ENTERED[status]}"]
        return ["subscription.updated"]
    if any(before[name] != after[name] for name in _UPDATED_WHEN):
        return ["subscription.updated"]
    return []


def subscription_events(before: State | None, after: State | None) -> list[Emission]:
    """A checkout not paid yet (`pending`) and a subscription of no known account tell the
    product nothing; one linked to an account later is `created` for that account."""
    if after is None or after["account_id"] is None or after["status"] == "pending":
        return []
    types = subscription_types(before, after)
    if not types:
        return []
    data: dict[str, Any] = {"subscription": subscription_shape(after)}
    if before is not None and before["account_id"] == after["account_id"]:
        data["previous"] = _previous(before, after, ("status", *_UPDATED_WHEN))
    return [Emission(after["account_id"], kind, data, subject=str(after["id"])) for kind in types]


# --- purchases -----------------------------------------------------------------------


def purchase_shape(state: State) -> dict[str, Any]:
    return {
        "id": state["id"],
        "product": state["product_slug"],
        "quantity": state["quantity"],
        "total": str(state["total"]) if state["total"] is not None else None,
        "currency": state["currency"],
        "paddle_transaction_id": state["paddle_transaction_id"],
        "completed_at": iso(state["completed_at"]),
        "granted_until": iso(state["granted_until"]),
        "revoked_at": iso(state["revoked_at"]),
        "revoked_by": state["revoked_by"],
    }


def purchase_events(before: State | None, after: State | None) -> list[Emission]:
    if after is None or after["account_id"] is None:
        return []
    newly_theirs = before is None or before["account_id"] != after["account_id"]
    if newly_theirs:
        kind = "purchase.completed" if after["revoked_at"] is None else None
    elif before["revoked_at"] is None and after["revoked_at"] is not None:
        kind = "purchase.revoked"
    elif before["revoked_at"] is not None and after["revoked_at"] is None:
        kind = "purchase.restored"
    else:
        kind = None
    if kind is None:
        return []
    data = {"purchase": purchase_shape(after)}
    return [Emission(after["account_id"], kind, data, subject=after["paddle_transaction_id"])]


# --- adjustments ---------------------------------------------------------------------


def adjustment_shape(state: State) -> dict[str, Any]:
    return {
        "paddle_adjustment_id": state["paddle_adjustment_id"],
        "paddle_transaction_id": state["paddle_transaction_id"],
        "paddle_subscription_id": state["paddle_subscription_id"],
        "type": state["type"],
        "status": state["status"],
        "reason": state["reason"],
        "total": str(state["total"]) if state["total"] is not None else None,
        "currency": state["currency"],
    }


def adjustment_events(before: State | None, after: State | None) -> list[Emission]:
    """A refund once Paddle approves it; a chargeback when it first arrives."""
    if after is None or after["account_id"] is None or after["last_event_at"] is None:
        return []
    existed = before is not None and before["last_event_at"] is not None
    if after["action"] == "refund" and after["status"] == "approved":
        if existed and before["status"] == "approved":
            return []
        kind, key = "refund.approved", "refund"
    elif after["action"] == "chargeback" and not existed:
        kind, key = "chargeback.created", "chargeback"
    else:
        return []
    return [
        Emission(
            after["account_id"],
            kind,
            {key: adjustment_shape(after)},
            subject=after["paddle_transaction_id"],
        )
    ]


# --- the watched tables --------------------------------------------------------------


@dataclass(frozen=True)
class Watched:
    """A table whose changes are events: the columns read of a row (by primary key), and
    the function that turns a row's before and after into its events."""

    name: str
    model: type
    query: Select
    events: Callable[[State | None, State | None], list[Emission]]

    @property
    def key(self):
        return self.model.__mapper__.primary_key[0]

    def read(self, connection, keys) -> dict[Any, State]:
        if not keys:
            return {}
        rows = connection.execute(self.query.where(self.key.in_(list(keys))))
        return {row.id: dict(row._mapping) for row in rows}


WATCHED: dict[type, Watched] = {
    watched.model: watched
    for watched in (
        Watched(
            "subscription",
            Subscription,
            select(
                Subscription.id,
                Subscription.account_id,
                Subscription.status,
                Plan.slug.label("plan"),
                Subscription.quantity,
                Subscription.currency,
                Subscription.paddle_subscription_id,
                Subscription.current_period_start,
                Subscription.current_period_end,
                Subscription.scheduled_action,
                Subscription.scheduled_effective_at,
                Subscription.trial_ends_at,
                Subscription.paused_at,
                Subscription.canceled_at,
            ).outerjoin(Plan, Plan.id == Subscription.plan_id),
            subscription_events,
        ),
        Watched(
            "purchase",
            Purchase,
            select(
                Purchase.id,
                Purchase.account_id,
                Purchase.product_slug,
                Purchase.quantity,
                Purchase.total,
                Purchase.currency,
                Purchase.paddle_transaction_id,
                Purchase.completed_at,
                Purchase.granted_until,
                Purchase.revoked_at,
                Purchase.revoked_by,
            ),
            purchase_events,
        ),
        Watched(
            "adjustment",
            Adjustment,
            select(
                Adjustment.id,
                Transaction.account_id,
                Adjustment.paddle_adjustment_id,
                Adjustment.paddle_transaction_id,
                Adjustment.paddle_subscription_id,
                Adjustment.action,
                Adjustment.type,
                Adjustment.status,
                Adjustment.reason,
                Adjustment.total,
                Adjustment.currency,
                Adjustment.last_event_at,
            ).outerjoin(
                Transaction,
                Transaction.paddle_transaction_id == Adjustment.paddle_transaction_id,
            ),
            adjustment_events,
        ),
    )
}
