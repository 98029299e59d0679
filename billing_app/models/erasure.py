from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import Base, UTCDateTime


class ErasedCustomer(Base):
    """A Paddle customer whose account's personal data was erased on request: a later
    webhook about it is stored without its personal fields, and its email and name are
    never kept again (`services.data_requests`)."""

    __tablename__ = "erased_customers"

    paddle_customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(128), index=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Erasure(Base):
    """An account erased on request: when, by whom, and how many rows of each kind changed
    (the proof an operator shows; the audit log has the same for console erasures)."""

    __tablename__ = "erasures"

    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime())
    erased_by: Mapped[str] = mapped_column(String(128))
    changed: Mapped[dict[str, Any]] = mapped_column(JSON)
