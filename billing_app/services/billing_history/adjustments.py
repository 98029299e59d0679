"""Refunds, credits and chargebacks: kept against their transaction, as their newest event
told them (a refund starts `pending_approval`, then is `approved` or `rejected`)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from billing_app.db import lock_or_create
from billing_app.models import Adjustment
from billing_app.services.billing_history.purchases import apply_adjustments
from billing_app.services.stale_guard import is_newer, mark_applied
from paddle_client.money import minor_units, totals_in_minor_units
from paddle_client.timestamps import parse_timestamp

log = logging.getLogger(__name__)


def adjustment_values(data: dict[str, Any]) -> dict[str, Any]:
    """Our columns from Paddle's adjustment entity. Raises ValueError on malformed money."""
    return {
        "paddle_transaction_id": data["transaction_id"],
        "paddle_subscription_id": data.get("subscription_id"),
        "paddle_customer_id": data.get("customer_id"),
        "action": data["action"],
        "type": data.get("type"),
        "status": data["status"],
        "reason": data.get("reason"),
        **totals_in_minor_units(data, data.get("totals"), ("subtotal", "tax", "total")),
        "items": [
            {
                "item_id": item.get("item_id"),
                "type": item.get("type"),
                "total": minor_units((item.get("totals") or {}).get("total") or item.get("amount")),
            }
            for item in data.get("items") or []
            if isinstance(item, dict)
        ],
        "paddle_created_at": parse_timestamp(data.get("created_at")),
        "paddle_updated_at": parse_timestamp(data.get("updated_at")),
    }


def record_adjustment(
    session: Session, data: dict[str, Any], *, occurred_at: datetime, event_id: str | None
) -> tuple[str, Adjustment]:
    """Keep Paddle's adjustment as of `occurred_at`: ("processed" | "stale", its row)."""
    values = adjustment_values(data)
    row = lock_or_create(
        session,
        Adjustment,
        "paddle_adjustment_id",
        data["id"],
        **{key: values[key] for key in ("paddle_transaction_id", "action", "status")},
    )
    if not is_newer(row, occurred_at, event_id):
        return "stale", row
    for field, value in values.items():
        setattr(row, field, value)
    mark_applied(row, occurred_at, event_id)
    return "processed", row


def keep_adjustment(
    session: Session, data: dict[str, Any], *, occurred_at: datetime, event_id: str | None
) -> str:
    """Paddle's adjustment kept, and what it takes back (or gives back) taken: the rule of
    every `adjustment.*` webhook, and of reconciliation filling the ledger's gaps."""
    recorded, adjustment = record_adjustment(
        session, data, occurred_at=occurred_at, event_id=event_id
    )
    if recorded == "processed":
        apply_adjustments(session, adjustment.paddle_transaction_id)
    if recorded == "processed" and adjustment.action == "chargeback":
        log.warning(
            "chargeback %s on transaction %s (subscription %s)",
            adjustment.paddle_adjustment_id,
            adjustment.paddle_transaction_id,
            adjustment.paddle_subscription_id or "none",
        )
    return recorded
