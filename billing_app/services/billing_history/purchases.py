"""One-time purchases: what a completed checkout of our products grants, and what takes it
back (a full refund, or a chargeback not reversed).

A purchase is a fact of the transaction's newest snapshot, not of one event: whichever
event first shows the transaction `completed` (origin `web` or `api`, as our checkout makes
them) records it, once per product; repeats and stale events record nothing new. Its
revocation is worked out from all of the transaction's adjustments each time one changes,
so any order of their events ends the same.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billing_app.db import upsert_insert, utcnow
from billing_app.models import Adjustment, Product, Purchase, Transaction
from billing_app.services.events import outbox
from billing_app.services.usage.periods import Period
from paddle_client.money import minor_units

PURCHASE_ORIGINS = ("web", "api")


def _lines(data: dict[str, Any]) -> dict[str, tuple[str | None, int | None]]:
    """Each price's line in the transaction: its id (txnitm_) and total (minor units)."""
    lines = {}
    for line in (data.get("details") or {}).get("line_items") or []:
        price_id = line.get("price_id") or (line.get("price") or {}).get("id")
        lines[price_id] = (line.get("id"), minor_units((line.get("totals") or {}).get("total")))
    return lines


def record_purchases(session: Session, row: Transaction, data: dict[str, Any]) -> int:
    """The purchases a completed checkout transaction holds; how many are new."""
    if row.status != "completed" or row.origin not in PURCHASE_ORIGINS:
        return 0
    one_time = {item["price_id"]: item for item in row.items if not item["recurring"]}
    if not one_time:
        return 0
    products = session.scalars(select(Product).where(Product.price_id.in_(list(one_time))))
    lines = _lines(data)
    # Written by core statements below, unseen by the ORM: the outbox is told.
    outbox.touch(session, row.account_id)
    outbox.watch_where(
        session, Purchase, Purchase.paddle_transaction_id == row.paddle_transaction_id
    )
    completed_at = row.completed_at or row.paddle_updated_at or utcnow()
    now, created = utcnow(), 0
    for product in products:
        item = one_time[product.price_id]
        until = completed_at + timedelta(days=product.grant_days) if product.grant_days else None
        created += session.execute(
            upsert_insert(session)(Purchase)
            .values(
                account_id=row.account_id,
                product_id=product.id,
                product_slug=product.slug,
                paddle_transaction_id=row.paddle_transaction_id,
                paddle_customer_id=row.paddle_customer_id,
                price_id=product.price_id,
                paddle_item_id=lines.get(product.price_id, (None, None))[0],
                quantity=item["quantity"],
                currency=row.currency,
                total=lines.get(product.price_id, (None, None))[1],
                features=list(product.features),
                credits=_bought_credits(product, item["quantity"]),
                completed_at=completed_at,
                granted_until=until,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["paddle_transaction_id", "product_id"])
        ).rowcount
    # The transaction's owner may have become known since (its customer linked).
    session.execute(
        update(Purchase)
        .where(
            Purchase.paddle_transaction_id == row.paddle_transaction_id,
            Purchase.account_id.is_distinct_from(row.account_id),
        )
        .values(account_id=row.account_id)
    )
    apply_adjustments(session, row.paddle_transaction_id)
    return created


def _bought_credits(product: Product, quantity: int) -> dict[str, int] | None:
    if not product.credits:
        return None
    return {meter: units * quantity for meter, units in product.credits.items()}


def credits_in(connection, account_id: str, period: Period) -> Counter[str]:
    """Units per meter that the account's purchases completed in `period` add to its
    allowance (none for purchases taken back)."""
    bought = connection.execute(
        select(Purchase.credits).where(
            Purchase.account_id == account_id,
            Purchase.completed_at >= period.start,
            Purchase.completed_at < period.end,
            Purchase.revoked_at.is_(None),
        )
    ).scalars()
    total: Counter[str] = Counter()
    for credits in bought:
        total.update({meter: int(units) for meter, units in (credits or {}).items()})
    return total


def credits_in_many(
    connection, periods: dict[str, set[Period]]
) -> dict[tuple[str, datetime], Counter[str]]:
    """`credits_in` for many accounts' periods (by account) in one read: by (account,
    period start)."""
    found: dict[tuple[str, datetime], Counter[str]] = {
        (account_id, period.start): Counter()
        for account_id, wanted in periods.items()
        for period in wanted
    }
    every = [period for wanted in periods.values() for period in wanted]
    if not every:
        return found
    bought = connection.execute(
        select(Purchase.account_id, Purchase.completed_at, Purchase.credits).where(
            Purchase.account_id.in_(list(periods)),
            Purchase.completed_at >= min(period.start for period in every),
            Purchase.completed_at < max(period.end for period in every),
            Purchase.revoked_at.is_(None),
            Purchase.credits.is_not(None),
        )
    )
    for account_id, completed_at, credits in bought:
        for period in periods[account_id]:
            if period.start <= completed_at < period.end:
                found[(account_id, period.start)].update(
                    {meter: int(units) for meter, units in (credits or {}).items()}
                )
    return found


def revocation(
    adjustments: list[Adjustment], transaction_total: int | None, purchase: Purchase
) -> tuple[str | None, datetime | None]:
    """Whether the transaction's adjustments take back this purchase: ("chargeback" |
    "refund", since when), or (None, None).

    A chargeback does (the whole transaction), unless a chargeback reversal followed it.
    Approved refunds do once they cover the whole transaction (Paddle's `type: full`, or
    adding up to its total), or the purchase's own line (an item of `type: full` naming
    it, or items naming it adding up to its total). A partial refund keeps the purchase."""
    approved = [adjustment for adjustment in adjustments if adjustment.status == "approved"]

    def latest(kind: list[Adjustment]) -> datetime | None:
        return max((a.paddle_updated_at for a in kind if a.paddle_updated_at), default=None)

    chargebacks = [a for a in approved if a.action == "chargeback"]
    reversals = [a for a in approved if a.action == "chargeback_reverse"]
    if len(chargebacks) > len(reversals):
        return "chargeback", latest(chargebacks)
    refunds = [a for a in approved if a.action == "refund"]
    refunded = sum(a.total or 0 for a in refunds)
    whole = transaction_total is not None and transaction_total > 0
    if any(a.type == "full" for a in refunds) or (whole and refunded >= transaction_total):
        return "refund", latest(refunds)
    of_line = [
        (refund, item)
        for refund in refunds
        for item in refund.items or []
        if purchase.paddle_item_id and item.get("item_id") == purchase.paddle_item_id
    ]
    line_refunded = sum(item.get("total") or 0 for _, item in of_line)
    line_total = purchase.total is not None and purchase.total > 0
    if any(item.get("type") == "full" for _, item in of_line) or (
        line_total and line_refunded >= purchase.total
    ):
        return "refund", latest([refund for refund, _ in of_line])
    return None, None


def apply_adjustments(session: Session, paddle_transaction_id: str) -> None:
    """Revoke (or give back) each of the transaction's purchases as its adjustments now say."""
    adjustments = list(
        session.scalars(
            select(Adjustment).where(Adjustment.paddle_transaction_id == paddle_transaction_id)
        )
    )
    total = session.scalar(
        select(Transaction.total).where(Transaction.paddle_transaction_id == paddle_transaction_id)
    )
    bought = session.scalars(
        select(Purchase).where(Purchase.paddle_transaction_id == paddle_transaction_id)
    )
    for purchase in bought:
        revoked_by, revoked_at = revocation(adjustments, total, purchase)
        if revoked_by is not None and revoked_at is None:
            revoked_at = utcnow()
        if revoked_by is None or purchase.revoked_by != revoked_by:
            purchase.revoked_by, purchase.revoked_at = revoked_by, revoked_at


def purchases_of(session: Session, account_id: str) -> list[Purchase]:
    return list(
        session.scalars(
            select(Purchase)
            .where(Purchase.account_id == account_id)
            .order_by(Purchase.completed_at.desc(), Purchase.id.desc())
        )
    )
