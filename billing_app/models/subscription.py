from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing_app.db import Base, PaddleListedId, UTCDateTime
from billing_app.models._columns import (
    PaddleVersioned,
    created_at_column,
    one_of,
    updated_at_column,
)

SUBSCRIPTION_STATUSES = ("pending", "trialing", "active", "past_due", "paused", "canceled")
# A live subscription is any that is not over; an account has at most one.
LIVE_STATUSES = ("pending", "trialing", "active", "past_due", "paused")
SCHEDULED_ACTIONS = ("cancel", "pause", "resume")

_NOT_CANCELED = text("status <> 'canceled'")


class Subscription(PaddleVersioned, Base):
    """Our record of one subscription: the source of truth for access."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        one_of("status", SUBSCRIPTION_STATUSES, "status"),
        one_of("scheduled_action", SCHEDULED_ACTIONS, "scheduled_action"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        Index(
            "uq_subscriptions_live_account",
            "account_id",
            unique=True,
            postgresql_where=_NOT_CANCELED,
            sqlite_where=_NOT_CANCELED,
        ),
        # The event clock's sweep finds the moments access changes by the clock alone.
        Index("ix_subscriptions_scheduled_effective_at", "scheduled_effective_at"),
        Index("ix_subscriptions_trial_ends_at", "trial_ends_at"),
        Index("ix_subscriptions_status_current_period_start", "status", "current_period_start"),
        Index("ix_subscriptions_held_until", "held_until"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Null while we cannot tell whose it is: kept, reported, linked later.
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    price_id: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    currency: Mapped[str | None] = mapped_column(String(3))

    paddle_subscription_id: Mapped[str | None] = mapped_column(PaddleListedId, unique=True)
    paddle_customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    paddle_transaction_id: Mapped[str | None] = mapped_column(String(64), index=True)
    custom_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    current_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_billed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scheduled_action: Mapped[str | None] = mapped_column(String(8))
    scheduled_effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scheduled_resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    trial_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The discount Paddle says is on it: from when, until when (null: for good).
    discount_id: Mapped[str | None] = mapped_column(String(64))
    discount_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    discount_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A change at period end reaches Paddle shortly before the renewal; until then (and
    # while the new period has not begun) the account keeps this plan and these seats.
    held_plan_id: Mapped[int | None] = mapped_column(Integer)  # a plan's id
    held_quantity: Mapped[int | None] = mapped_column(Integer)
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    items: Mapped[list[SubscriptionItem]] = relationship(
        back_populates="subscription",
        cascade="all, delete-orphan",
        order_by="SubscriptionItem.id",
    )
    plan = relationship("Plan", foreign_keys=[plan_id])
    held_plan = relationship(
        "Plan", primaryjoin="Plan.id == foreign(Subscription.held_plan_id)", viewonly=True
    )
    account = relationship("Account")


class SubscriptionItem(Base):
    """One price on a subscription (the base plan or an add-on) and its quantity."""

    __tablename__ = "subscription_items"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        Index("uq_subscription_items_price", "subscription_id", "price_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    price_id: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str | None] = mapped_column(String(16))
    recurring: Mapped[bool] = mapped_column(Boolean, default=True)

    subscription: Mapped[Subscription] = relationship(back_populates="items")


CHANGE_STATUSES = ("scheduled", "sending", "done", "withdrawn", "failed")
CHANGE_KINDS = ("plan", "remove_addon")
_CHANGE_OPEN = text("status IN ('scheduled', 'sending')")


class SubscriptionChange(Base):
    """A change of plan or seats, or an add-on's removal, that the customer asked for at the
    end of the period: Paddle
    cannot hold one (API-NOTES 7.4), so it waits here until it is sent (`scheduled_changes`).

    `scheduled` until due; `sending` while it is being sent (a crash leaves it so, and the
    next run asks Paddle what it holds before sending again); `done` once Paddle holds the
    new items; `withdrawn` by a cancellation, a pause, `/resume` or another change;
    `failed` when Paddle refused it (`last_error`)."""

    __tablename__ = "subscription_changes"
    __table_args__ = (
        one_of("status", CHANGE_STATUSES, "status"),
        one_of("kind", CHANGE_KINDS, "kind"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        Index(
            "uq_subscription_changes_open",
            "subscription_id",
            "price_id",
            unique=True,
            postgresql_where=_CHANGE_OPEN,
            sqlite_where=_CHANGE_OPEN,
        ),
        Index("ix_subscription_changes_status_effective_at", "status", "effective_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str | None] = mapped_column(String(128))
    # `plan`: the main item becomes `price_id` x `quantity` (a plan, seats);
    # `remove_addon`: the add-on of `price_id` goes.
    kind: Mapped[str] = mapped_column(String(16), default="plan")
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    price_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    # What it was when asked: what is held until the renewal once it is sent (the other
    # items, add-ons, are read again from Paddle when it is sent).
    from_price_id: Mapped[str | None] = mapped_column(String(64))
    from_plan_id: Mapped[int | None] = mapped_column(Integer)
    from_quantity: Mapped[int | None] = mapped_column(Integer)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    proration_billing_mode: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    plan = relationship("Plan")
