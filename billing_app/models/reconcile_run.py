from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing_app.db import Base, UTCDateTime, utcnow
from billing_app.models._columns import one_of

# running: under way (its process holds the lease); succeeded; failed (its error says why);
# interrupted: stopped by a signal after a page; abandoned: its process died (found by the
# next run, once the lease had lapsed).
RECONCILE_RUN_STATUSES = ("running", "succeeded", "failed", "interrupted", "abandoned")


class ReconcileRun(Base):
    """One pass of the nightly reconciliation against Paddle, and what it found."""

    __tablename__ = "reconcile_runs"
    __table_args__ = (one_of("status", RECONCILE_RUN_STATUSES, "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="running")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    seen: Mapped[int] = mapped_column(Integer, default=0)
    in_sync: Mapped[int] = mapped_column(Integer, default=0)
    drift_fixed: Mapped[int] = mapped_column(Integer, default=0)
    missing_locally: Mapped[int] = mapped_column(Integer, default=0)
    missing_in_paddle: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    # Subscriptions Paddle had that it created or found with no account (an operator links
    # them: `billing subscriptions unlinked`).
    unlinked: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The transactions ledger's gap-filling walk (RECONCILE_TRANSACTION_DAYS): those Paddle
    # listed, and those we held at an older version or not at all (found, in a dry run).
    transactions_seen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    transactions_filled: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Refunds, credits and chargebacks of those transactions the ledger lacked or had older.
    adjustments_filled: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)

    drifts: Mapped[list[ReconcileDrift]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="ReconcileDrift.id"
    )


class ReconcileDrift(Base):
    """One field on one subscription that differed from Paddle, with both values."""

    __tablename__ = "reconcile_drifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("reconcile_runs.id", ondelete="CASCADE"), index=True
    )
    paddle_subscription_id: Mapped[str] = mapped_column(String(64), index=True)
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)

    run: Mapped[ReconcileRun] = relationship(back_populates="drifts")


class ReconcileRequest(Base):
    """An operator's "reconcile now" from the console, waiting for a scheduler process to
    take it (a web process may be restarted by a deploy at any moment; a scheduler runs
    the request under the nightly run's lease)."""

    __tablename__ = "reconcile_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    taken_by: Mapped[str | None] = mapped_column(String(128))
