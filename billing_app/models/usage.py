from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import Base, UTCDateTime
from billing_app.models._columns import created_at_column, one_of, updated_at_column


class UsageEvent(Base):
    """One usage report, kept for audit and disputes, with the answer it was given (a
    repeat of its idempotency key gets that answer again)."""

    __tablename__ = "usage_events"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        # Unique within a period (on PostgreSQL, the partition key must be in it); the
        # recording rule looks for a key in the other open periods itself.
        UniqueConstraint("idempotency_key", "period_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[str] = mapped_column(String(128), index=True)
    meter: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    subject: Mapped[str | None] = mapped_column(String(200))  # a unique_count meter's
    recorded_at: Mapped[datetime] = created_at_column()


class UsageCounter(Base):
    """What an account used of a meter in one billing period, by the meter's aggregation
    (`billing_app.services.usage.meters`): the sum of the usage events admitted into it,
    their number, their peak, the latest value (as of `latest_at`), or the number of
    distinct subjects; kept in the same transactions as they are."""

    __tablename__ = "usage_counters"
    __table_args__ = (
        UniqueConstraint("account_id", "meter", "period_start"),
        CheckConstraint("used >= 0", name="used_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(128))
    meter: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    plan_id: Mapped[int | None] = mapped_column(Integer)
    paddle_subscription_id: Mapped[str | None] = mapped_column(String(64))
    latest_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # a `latest` meter's
    updated_at: Mapped[datetime] = updated_at_column()


class UsageSubject(Base):
    """A subject (a user, a device) seen in an account's period of a `unique_count` meter:
    each counts once, whatever it reports after."""

    __tablename__ = "usage_subjects"
    __table_args__ = (UniqueConstraint("account_id", "meter", "period_start", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(128))
    meter: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    subject: Mapped[str] = mapped_column(String(200))


CHARGE_STATUSES = ("pending", "submitting", "confirmed", "failed", "dead")
OPEN_CHARGE_STATUSES = ("pending", "submitting", "failed")  # still to reach Paddle


class UsageCharge(Base):
    """One overage charge: a (subscription, meter, closed period) billed once through Paddle.

    pending -> submitting (the request is on its way; if its answer is lost, Paddle is asked
    what it holds before anything is sent again) -> confirmed; or failed (Paddle refused; tried
    again after a backoff) -> dead after USAGE_CHARGE_MAX_ATTEMPTS."""

    __tablename__ = "usage_charges"
    __table_args__ = (
        UniqueConstraint("paddle_subscription_id", "meter", "period_start"),
        one_of("status", CHARGE_STATUSES, "status"),
        CheckConstraint("quantity >= 1", name="charge_quantity_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(128), index=True)
    paddle_subscription_id: Mapped[str] = mapped_column(String(64))
    meter: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    used: Mapped[int] = mapped_column(BigInteger)
    price_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
