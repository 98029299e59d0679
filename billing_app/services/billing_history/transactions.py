"""The transactions ledger: every Paddle transaction we hear of, as its newest event (or
Paddle's answer) told it, and the billing history read from it.

One rule, `record_transaction`, keeps a row from a transaction entity; webhooks, our
checkout and the reconciler's gap filling all go through it. The row belongs to the account
whose checkout created it (whichever customer paid), else as `ownership.claimed_owner`
decides; a transaction of a customer no account owns yet is kept with no account and joins
its account's history when the customer is linked.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from billing_app.db import lock_or_create, utcnow
from billing_app.errors import InvoiceUnavailable, TransactionNotFound, ValidationFailed
from billing_app.models import Adjustment, Purchase, Transaction
from billing_app.services.billing_history import purchases
from billing_app.services.stale_guard import is_newer, mark_applied
from billing_app.services.subscriptions.accounts import serialise_on_customer
from billing_app.services.subscriptions.ownership import (
    app_ids,
    claimed_owner,
    customer_paid_for_checkout,
)
from billing_app.services.subscriptions.sync import item_values, period_of
from paddle_client import ApiError, Client
from paddle_client.money import totals_in_minor_units
from paddle_client.timestamps import parse_timestamp

# What billing history shows unless asked for a status: checkouts still open are not history.
HISTORY_STATUSES = ("billed", "paid", "completed", "canceled", "past_due")
INVOICE_LINK_LIFETIME = timedelta(hours=1)  # Paddle's links stop working after an hour


def _completed_at(data: dict[str, Any]) -> datetime | None:
    """When a completed transaction was paid: its captured payment (the same in every
    snapshot, so any delivery order gives the same row), else when it was billed."""
    if data.get("status") != "completed":
        return None
    captured = [
        parse_timestamp(payment["captured_at"])
        for payment in data.get("payments") or []
        if payment.get("captured_at")
    ]
    return max(captured, default=None) or parse_timestamp(data.get("billed_at"))


def transaction_values(data: dict[str, Any]) -> dict[str, Any]:
    """Our columns from Paddle's transaction entity. Raises ValueError on malformed money."""
    period_start, period_end = period_of(data, "billing_period")
    items = []
    for item in data.get("items") or []:
        values = item_values(item)
        values.pop("status")
        items.append(values)
    return {
        "paddle_customer_id": data.get("customer_id"),
        "paddle_subscription_id": data.get("subscription_id"),
        "status": data.get("status") or "draft",
        "origin": data.get("origin"),
        "collection_mode": data.get("collection_mode"),
        **totals_in_minor_units(data, (data.get("details") or {}).get("totals")),
        "paddle_discount_id": data.get("discount_id"),
        "invoice_number": data.get("invoice_number"),
        "billing_period_start": period_start,
        "billing_period_end": period_end,
        "items": items,
        "paddle_created_at": parse_timestamp(data.get("created_at")),
        "billed_at": parse_timestamp(data.get("billed_at")),
        "completed_at": _completed_at(data),
        "paddle_updated_at": parse_timestamp(data.get("updated_at")),
    }


def record_transaction(
    session: Session,
    data: dict[str, Any],
    *,
    occurred_at: datetime,
    event_id: str | None,
    checkout_account_id: str | None = None,
) -> tuple[str, Transaction]:
    """Keep Paddle's transaction as of `occurred_at`: ("processed" | "stale", its row).
    `checkout_account_id`: our checkout created it, for that account."""
    values = transaction_values(data)  # malformed money fails here, before any write
    if checkout_account_id is None:  # its owner may be its customer's: see a link racing
        serialise_on_customer(session, values["paddle_customer_id"])
    row = lock_or_create(
        session, Transaction, "paddle_transaction_id", data["id"], status="draft", items=[]
    )
    if checkout_account_id:
        row.checkout_account_id = checkout_account_id
    if not is_newer(row, occurred_at, event_id):
        return "stale", row
    for field, value in values.items():
        setattr(row, field, value)
    row.account_id = _owner(session, row, data)
    mark_applied(row, occurred_at, event_id)
    return "processed", row


def _owner(session: Session, row: Transaction, data: dict[str, Any]) -> str | None:
    if row.checkout_account_id is not None:
        customer_paid_for_checkout(session, row.checkout_account_id, row.paddle_customer_id)
        return row.checkout_account_id
    account_id, _ = app_ids(data.get("custom_data"))
    owner = claimed_owner(session, account_id, row.paddle_customer_id, row.paddle_transaction_id)
    return owner.id if owner is not None else None


def keep_transaction(
    session: Session, data: dict[str, Any], *, occurred_at: datetime, event_id: str | None
) -> str:
    """Paddle's transaction kept in the ledger, with the purchases it completes: the rule
    of every `transaction.*` webhook, and of reconciliation filling the ledger's gaps."""
    recorded, row = record_transaction(session, data, occurred_at=occurred_at, event_id=event_id)
    if recorded == "processed":
        purchases.record_purchases(session, row, data)
    return recorded


def link_customers_history(session: Session, account_id: str, customer_id: str) -> int:
    """A customer now known to be `account_id`'s brings the transactions and purchases no
    account owned yet into the account's history."""
    return sum(
        session.execute(
            update(kept)
            .where(kept.paddle_customer_id == customer_id, kept.account_id.is_(None))
            .values(account_id=account_id)
        ).rowcount
        for kept in (Transaction, Purchase)
    )


# Billing history


@dataclass(frozen=True)
class Page:
    transactions: list[Transaction]
    adjustments: dict[str, list[Adjustment]]  # by Paddle transaction id
    next_cursor: str | None


def _encode_cursor(row: Transaction) -> str:
    moment = row.paddle_created_at.isoformat() if row.paddle_created_at else ""
    raw = f"{moment}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, row_id = raw.rsplit("|", 1)
        return (datetime.fromisoformat(moment) if moment else None), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(
            "The cursor is not one this service gave.", errors={"cursor": ["not a valid cursor"]}
        ) from None


def _after(cursor: str):
    """Rows that come after the cursor's row, newest first (no time sorts last)."""
    moment, row_id = _decode_cursor(cursor)
    created, key = Transaction.paddle_created_at, Transaction.id
    if moment is None:
        return and_(created.is_(None), key < row_id)
    return or_(
        created < moment,
        and_(created == moment, key < row_id),
        created.is_(None),
    )


def history(
    session: Session,
    account_id: str,
    *,
    statuses: list[str] | None = None,
    limit: int = 20,
    cursor: str | None = None,
) -> Page:
    """The account's transactions, newest first, a page at a time, with their adjustments."""
    query = (
        select(Transaction)
        .where(
            Transaction.account_id == account_id,
            Transaction.status.in_(statuses or HISTORY_STATUSES),
        )
        .order_by(Transaction.paddle_created_at.desc().nulls_last(), Transaction.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        query = query.where(_after(cursor))
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    adjustments: dict[str, list[Adjustment]] = {row.paddle_transaction_id: [] for row in rows}
    if rows:
        for adjustment in session.scalars(
            select(Adjustment)
            .where(Adjustment.paddle_transaction_id.in_(list(adjustments)))
            .order_by(Adjustment.paddle_created_at, Adjustment.id)
        ):
            adjustments[adjustment.paddle_transaction_id].append(adjustment)
    return Page(rows, adjustments, _encode_cursor(rows[-1]) if more else None)


def owned_transaction(session: Session, account_id: str, paddle_transaction_id: str):
    """The account's transaction by Paddle id, or None (another's is as good as unknown)."""
    return session.scalars(
        select(Transaction).where(
            Transaction.paddle_transaction_id == paddle_transaction_id,
            Transaction.account_id == account_id,
        )
    ).first()


def has_invoice(row: Transaction) -> bool:
    """Does Paddle keep an invoice PDF for this transaction (as far as our row tells)?"""
    invoiced = row.status == "completed" or (
        row.collection_mode == "manual" and row.status == "billed"
    )
    return invoiced and row.total != 0


def invoice_link(
    session: Session,
    paddle: Client,
    account_id: str,
    paddle_transaction_id: str,
    *,
    disposition: str = "attachment",
) -> dict[str, Any]:
    """A fresh link to the invoice PDF of one of the account's transactions, fetched from
    Paddle now and never kept: it stops working within the hour."""
    row = owned_transaction(session, account_id, paddle_transaction_id)
    available = row is not None and has_invoice(row)
    session.rollback()  # nothing held while Paddle answers
    if row is None:
        raise TransactionNotFound()
    if not available:
        raise InvoiceUnavailable()
    asked_at = utcnow()
    try:
        url = paddle.transactions.invoice_pdf_url(paddle_transaction_id, disposition=disposition)
    except ApiError as error:
        if 400 <= error.status < 500 and error.status != 429:
            raise InvoiceUnavailable(
                f"Paddle has no invoice for this transaction ({error.code})."
            ) from error
        raise
    return {"url": url, "expires_at": asked_at + INVOICE_LINK_LIFETIME}
