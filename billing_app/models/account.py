from datetime import datetime

from sqlalchemy import Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import Base, UTCDateTime
from billing_app.models._columns import created_at_column, updated_at_column


class Account(Base):
    """One of the product's accounts, and the Paddle customer that pays for it."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(320))  # the Paddle customer's
    # Paddle's `updated_at` of the customer whose email and name we hold: an older
    # `customer.*` event changes neither.
    customer_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paddle_customer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


# An operator finds a customer by email whatever its case.
Index("ix_accounts_email_lower", func.lower(Account.email))
