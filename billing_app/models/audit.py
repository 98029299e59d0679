from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    """One operator action in the console (or a sign-in): who, when, what, and how it
    ended. Written after the action, in a transaction of its own, so a refused or failed
    action is recorded too."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target_at", "target", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))  # the name given at sign-in
    address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))  # sign_in, replay_webhook, link, ...
    # What it acted on: an event id, a Paddle subscription id, an account id, a run id.
    target: Mapped[str | None] = mapped_column(String(128))
    # The account it concerns, when there is one (the account page lists its actions).
    account_id: Mapped[str | None] = mapped_column(String(128), index=True)
    result: Mapped[str] = mapped_column(String(32))  # ok, refused, failed, or an outcome
    detail: Mapped[str | None] = mapped_column(Text)
