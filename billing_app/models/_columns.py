"""Column helpers shared by the models."""

from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import UTCDateTime, utcnow


def created_at_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


def updated_at_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False)


def one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    """A CHECK constraint that keeps `column` within `values`."""
    allowed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


class PaddleVersioned:
    """The version of a Paddle entity a row holds, for every table kept from Paddle's events
    (subscriptions, transactions, adjustments): the columns of
    `billing_app.services.stale_guard.Versioned`, and Paddle's own version."""

    # The stale-event guard: occurred_at of the newest Paddle event (or answer) applied.
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Breaks ties between events stamped with the same instant.
    last_event_id: Mapped[str | None] = mapped_column(String(64))
    # Paddle's own `updated_at` of the entity version we hold: the reconciler's comparison.
    paddle_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
