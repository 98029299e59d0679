"""The outbound events: what changed, told to the product (the outbox), where it is sent
(endpoints), and each sending of an event to an endpoint (deliveries, and their attempts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import Base, UTCDateTime
from billing_app.models._columns import created_at_column, one_of, updated_at_column

# SQLite gives an INTEGER PRIMARY KEY its rowid (and so its autoincrement) only by that name.
_BIG_ID = BigInteger().with_variant(Integer, "sqlite")

DELIVERY_STATUSES = ("pending", "delivered", "failed")
_PENDING = text("status = 'pending'")


class OutboundEvent(Base):
    """One event, written in the transaction of the change it tells of.

    `position` orders the table; the pull feed reads it in (`txid`, `position`) order, and
    only up to the oldest transaction still open (PostgreSQL), so that an event committed
    late by a long transaction is never passed over by a reader's cursor. `body` is the JSON
    as sent and signed, the same bytes on every attempt."""

    __tablename__ = "events"
    __table_args__ = (
        Index("uq_events_account_sequence", "account_id", "sequence", unique=True),
        Index("ix_events_feed", "txid", "position"),
        Index("ix_events_occurred_at", "occurred_at"),
    )

    position: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)  # evt_..., the webhook-id
    type: Mapped[str] = mapped_column(String(48))
    account_id: Mapped[str] = mapped_column(String(128))
    sequence: Mapped[int] = mapped_column(BigInteger)  # per account, from 1
    # What the event is about (a subscription's id, a transaction's txn_...), for look-ups.
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    # An event that must be written once only (a trial's notice, a Paddle event's payment
    # failure) names itself here.
    once_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[str] = mapped_column(Text)
    # PostgreSQL: the writing transaction's id (see the class's docstring); SQLite: 0, its
    # one writer at a time commits in `position` order.
    txid: Mapped[int] = mapped_column(BigInteger, server_default="0")


class EventAccount(Base):
    """Per account: the last sequence number given to its events, and the entitlements last
    announced (null: none yet), which the next announcement compares against."""

    __tablename__ = "event_accounts"

    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    entitlements: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class EventEndpoint(Base):
    """A URL the product receives events at, with its signing secret (`whsec_...`) and, for
    a day after a rotation, the one before it (both signatures are sent)."""

    __tablename__ = "event_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # ep_...
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    # ",type,type," (null: every type), so that a delivery's fan-out matches in SQL.
    types: Mapped[str | None] = mapped_column(Text)
    # The environment's endpoint: EVENTS_ENDPOINT_SECRET, kept here when a worker starts.
    secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(16), default="cli")  # cli|console|environment
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class EventDelivery(Base):
    """One event to one endpoint, until the endpoint answers 2xx (or the schedule ends).

    Per endpoint and account, only the lowest `sequence` still pending is due (see
    `services.events.delivery`), so a consumer receives an account's events in order."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        one_of("status", DELIVERY_STATUSES, "status"),
        Index(
            "ix_event_deliveries_due",
            "next_attempt_at",
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        ),
        Index(
            "ix_event_deliveries_in_order",
            "endpoint_id",
            "account_id",
            "sequence",
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        ),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    event_position: Mapped[int] = mapped_column(
        ForeignKey("events.position", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("event_endpoints.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(String(128))
    sequence: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_latency_ms: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at_column()


class EventDeliveryAttempt(Base):
    """One try at a delivery: what the endpoint answered, and how fast."""

    __tablename__ = "event_delivery_attempts"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("event_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class EventClock(Base):
    """How far the clock sweep has looked: the moments up to `swept_until` (a scheduled
    stop, a grace period's end, a trial's notice) have been announced."""

    __tablename__ = "event_clock"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    swept_until: Mapped[datetime] = mapped_column(UTCDateTime())
