from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import Base, UTCDateTime, utcnow
from billing_app.models._columns import one_of

# rejected: a verified body that is not a notification we can apply (kept with the reason,
# under a made-up event id, for an operator).
WEBHOOK_EVENT_STATUSES = (
    "received",
    "processed",
    "duplicate",
    "stale",
    "ignored",
    "failed",
    "rejected",
    "dead",  # failed WEBHOOK_MAX_ATTEMPTS times: parked for an operator, never pruned
)


class WebhookEvent(Base):
    """The ledger: every verified Paddle notification, kept before it is applied."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        one_of("status", WEBHOOK_EVENT_STATUSES, "status"),
        Index("ix_webhook_events_status_received_at", "status", "received_at"),
        Index("ix_webhook_events_status_next_attempt_at", "status", "next_attempt_at"),
        # The console's inbox: newest first, all of it or by type.
        Index("ix_webhook_events_received_at", "received_at"),
        Index("ix_webhook_events_event_type_received_at", "event_type", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    notification_id: Mapped[str | None] = mapped_column(String(64))
    # The entity the event is about (sub_, txn_, ctm_...), for an operator's search.
    entity_id: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="received")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # How many times Paddle delivered it; more than one means duplicates were acknowledged.
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # An operator's replays of an event already settled, kept beside its own outcome (which
    # stays: the ledger must keep the fact that the event was applied).
    # A worker applying the row holds it until `claimed_until`; a worker that died loses
    # it then, and another claims it (the visibility timeout).
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replays: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_replay_outcome: Mapped[str | None] = mapped_column(String(16))
    last_replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
