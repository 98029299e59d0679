from datetime import datetime

from sqlalchemy import Index, String, func
from sqlalchemy.orm import Mapped, mapped_column, validates

from billing_app.db import Base, UTCDateTime
from billing_app.models._columns import created_at_column, updated_at_column


class Account(Base):
    """One of the product's accounts, and the Paddle customer that pays for it."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    # Support finds every account of a company by it ("example.com").
    email_domain: Mapped[str | None] = mapped_column(String(255), index=True)
    name: Mapped[str | None] = mapped_column(String(320))  # the Paddle customer's
    # Paddle's `updated_at` of the customer whose email and name we hold: an older
    # `customer.*` event changes neither.
    customer_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paddle_customer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    @validates("email")
    def _keep_the_domain(self, key: str, email: str | None) -> str | None:
        self.email_domain = email_domain(email)
        return email


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.split("@", 1)[1].strip().lower() or None


# An operator finds a customer by email whatever its case. (Prefix matches on PostgreSQL are
# served by the pattern indexes of migration 0026, which Alembic does not compare.)
Index("ix_accounts_email_lower", func.lower(Account.email))
