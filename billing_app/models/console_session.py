from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import Base, UTCDateTime, utcnow


class ConsoleSession(Base):
    """One sign-in to the operator console. The signed cookie names it; signing out revokes
    it here, so a copy of the cookie taken before the sign-out opens nothing after it."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # random, in the cookie
    operator: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
