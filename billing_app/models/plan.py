from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import Base
from billing_app.models._columns import created_at_column, one_of, updated_at_column

BILLING_INTERVALS = ("day", "week", "month", "year")


class Plan(Base):
    """A plan the product sells: one Paddle price, and what it entitles an account to.

    The free plan (`free`, at most one, no price) is what every account without a live
    subscription gets. `meters` holds, per meter name, what a billing period includes
    (`billing_app.services.usage.meters`)."""

    __tablename__ = "plans"
    __table_args__ = (
        one_of("interval", BILLING_INTERVALS, "interval"),
        CheckConstraint("interval_count >= 1", name="interval_count_positive"),
        CheckConstraint("free OR price_id IS NOT NULL", name="paid_plan_has_price"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The price's facts, copied from Paddle (empty until `plans import` or `plans sync` has
    # read them there, unless the plans file gave them). Minor units as Paddle sends them:
    # a string of digits, never a float.
    amount: Mapped[str | None] = mapped_column(String(20))
    currency: Mapped[str | None] = mapped_column(String(3))
    interval: Mapped[str | None] = mapped_column(String(8))
    interval_count: Mapped[int] = mapped_column(Integer, default=1)
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    meters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    free: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class Addon(Base):
    """A recurring extra a subscription may carry beside its plan (a Paddle price of the
    same interval): the features, limits, meters' allowances and seats each unit adds
    (`billing_app.services.entitlements.combine` says how they add to the plan's), whether
    it is bought in a quantity, and which plans it may join (empty: any)."""

    __tablename__ = "addons"
    __table_args__ = (
        one_of("interval", BILLING_INTERVALS, "interval"),
        CheckConstraint("seats >= 0", name="seats_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[str | None] = mapped_column(String(20))  # minor units, as on plans
    currency: Mapped[str | None] = mapped_column(String(3))
    interval: Mapped[str | None] = mapped_column(String(8))
    interval_count: Mapped[int] = mapped_column(Integer, default=1)
    features: Mapped[list[str]] = mapped_column(JSON, default=list)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    meters: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # allowance per unit
    seats: Mapped[int] = mapped_column(Integer, default=0)
    has_quantity: Mapped[bool] = mapped_column(Boolean, default=False)
    plans: Mapped[list[str]] = mapped_column(JSON, default=list)  # plan slugs; []: any
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    def may_join(self, plan_slug: str | None) -> bool:
        return not self.plans or plan_slug in self.plans
