"""The local ledger of Paddle's transactions and their adjustments (billing history), and
what one-time checkouts sell and grant: products and purchases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import Base, PaddleListedId, UTCDateTime
from billing_app.models._columns import PaddleVersioned, created_at_column, updated_at_column

TRANSACTION_STATUSES = ("draft", "ready", "billed", "paid", "completed", "canceled", "past_due")


class Transaction(PaddleVersioned, Base):
    """One Paddle transaction as its newest event told it. Amounts are integer minor units
    of `currency`; `account_id` is the account whose history it belongs to (its customer's
    account), unknown (null) until that customer is linked."""

    __tablename__ = "transactions"
    __table_args__ = (Index("ix_transactions_history", "account_id", "paddle_created_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paddle_transaction_id: Mapped[str] = mapped_column(PaddleListedId, unique=True)
    account_id: Mapped[str | None] = mapped_column(String(128))
    # The account our checkout created it for (null: not made by our checkout): its owner,
    # whichever Paddle customer paid.
    checkout_account_id: Mapped[str | None] = mapped_column(String(128))
    paddle_customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    paddle_subscription_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str | None] = mapped_column(String(48))
    collection_mode: Mapped[str | None] = mapped_column(String(16))
    currency: Mapped[str | None] = mapped_column(String(3))
    subtotal: Mapped[int | None] = mapped_column(BigInteger)
    discount: Mapped[int | None] = mapped_column(BigInteger)
    paddle_discount_id: Mapped[str | None] = mapped_column(String(64))
    tax: Mapped[int | None] = mapped_column(BigInteger)
    total: Mapped[int | None] = mapped_column(BigInteger)
    invoice_number: Mapped[str | None] = mapped_column(String(64))
    billing_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    billing_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # [{price_id, product_id, quantity, recurring}], what was bought
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    paddle_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    billed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


ADJUSTMENT_ACTIONS = (
    "credit",
    "credit_reverse",
    "refund",
    "chargeback",
    "chargeback_reverse",
    "chargeback_warning",
    "chargeback_warning_reverse",
)


class Adjustment(PaddleVersioned, Base):
    """A refund, credit or chargeback against a transaction, as its newest event told it."""

    __tablename__ = "adjustments"
    # The console's front page lists the newest chargebacks.
    __table_args__ = (Index("ix_adjustments_action_created_at", "action", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paddle_adjustment_id: Mapped[str] = mapped_column(String(64), unique=True)
    paddle_transaction_id: Mapped[str] = mapped_column(String(64), index=True)
    paddle_subscription_id: Mapped[str | None] = mapped_column(String(64))
    paddle_customer_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    type: Mapped[str | None] = mapped_column(String(16))  # full | partial, when Paddle says
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str | None] = mapped_column(String(3))
    subtotal: Mapped[int | None] = mapped_column(BigInteger)
    tax: Mapped[int | None] = mapped_column(BigInteger)
    total: Mapped[int | None] = mapped_column(BigInteger)
    # [{item_id (the transaction's line, txnitm_), type (full|partial|tax|proration), total}]
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    paddle_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Product(Base):
    """Something sold once (a one-time Paddle price), bought again and again if wanted.
    What it grants: `features`, for good or for `grant_days` from the purchase; and
    `credits`, units per meter added to the allowance of the billing period it is bought in
    (per quantity bought)."""

    __tablename__ = "products"
    __table_args__ = (CheckConstraint("grant_days >= 1", name="grant_days_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[str | None] = mapped_column(String(20))  # minor units, as on plans
    currency: Mapped[str | None] = mapped_column(String(3))
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_days: Mapped[int | None] = mapped_column(Integer)
    credits: Mapped[dict[str, int] | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Purchase(Base):
    """One product bought in one completed checkout transaction, and what it grants the
    account (the product's features as they were when bought). A full refund or a
    chargeback revokes it; a reversed chargeback gives it back."""

    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("paddle_transaction_id", "product_id"),
        Index("ix_purchases_account_id_completed_at", "account_id", "completed_at"),
        Index("ix_purchases_granted_until", "granted_until"),  # the event clock's sweep
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str | None] = mapped_column(String(128), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    product_slug: Mapped[str] = mapped_column(String(64))
    paddle_transaction_id: Mapped[str] = mapped_column(String(64), index=True)
    paddle_customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    price_id: Mapped[str] = mapped_column(String(64))
    # The transaction's line it was bought on (txnitm_): what a refund of that line names.
    paddle_item_id: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str | None] = mapped_column(String(3))
    total: Mapped[int | None] = mapped_column(BigInteger)  # minor units, the line's total
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    credits: Mapped[dict[str, int] | None] = mapped_column(JSON)  # all units, not per quantity
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    granted_until: Mapped[datetime | None] = mapped_column(UTCDateTime())  # null: for good
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(32))  # refund | chargeback
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
