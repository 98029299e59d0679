"""Payments as the product hears of them: a failed attempt (what a dunning email needs) and
the payment that recovers it. No row of ours says a payment attempt failed (a checkout's
transaction stays `ready`), so these are told from Paddle's transaction events themselves,
once per Paddle event, and only when the event was applied (a stale one says nothing)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_app.models import OutboundEvent, Transaction
from billing_app.services.events import outbox
from billing_app.services.events.changes import Emission, iso
from paddle_client.timestamps import parse_timestamp

PAID = ("transaction.completed", "transaction.paid")


def payment_shape(data: dict[str, Any]) -> dict[str, Any]:
    attempts = data.get("payments") or []
    latest = attempts[0] if attempts else {}
    totals = (data.get("details") or {}).get("totals") or {}
    return {
        "paddle_transaction_id": data.get("id"),
        "paddle_subscription_id": data.get("subscription_id"),
        "origin": data.get("origin"),
        "status": data.get("status"),
        "total": totals.get("grand_total") or totals.get("total"),
        "currency": data.get("currency_code") or totals.get("currency_code"),
        "error_code": latest.get("error_code"),
        "attempted_at": iso(parse_timestamp(latest.get("created_at"))),
        "invoice_number": data.get("invoice_number"),
    }


def tell_payment(session: Session, event_type: str, event_id: str, data: dict[str, Any]) -> None:
    """`payment.failed` for a failed attempt; `payment.recovered` when a transaction whose
    payment failed is paid. Needs the transaction's account (nothing is told without one)."""
    if event_type != "transaction.payment_failed" and event_type not in PAID:
        return
    transaction_id = data.get("id")
    account_id = session.scalar(
        select(Transaction.account_id).where(Transaction.paddle_transaction_id == transaction_id)
    )
    if account_id is None:
        return
    if event_type == "transaction.payment_failed":
        kind, once = "payment.failed", f"payment.failed:{event_id}"
    elif _failed_before(session, transaction_id):
        kind, once = "payment.recovered", f"payment.recovered:{transaction_id}"
    else:
        return
    outbox.emit(
        session,
        Emission(
            account_id,
            kind,
            {"payment": payment_shape(data)},
            subject=transaction_id,
            once_key=once,
        ),
    )


def _failed_before(session: Session, transaction_id: str) -> bool:
    return (
        session.scalar(
            select(OutboundEvent.position)
            .where(OutboundEvent.subject == transaction_id, OutboundEvent.type == "payment.failed")
            .limit(1)
        )
        is not None
    )
