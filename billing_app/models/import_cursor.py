from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import Base, UTCDateTime
from billing_app.models._columns import updated_at_column


class ImportCursor(Base):
    """Where a walk of Paddle's lists by `billing import paddle` has got to: the last id of
    the last page it finished, so an import that was stopped goes on from there."""

    __tablename__ = "import_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)  # customers | subscriptions
    after: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = updated_at_column()
