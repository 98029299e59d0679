from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from billing_app.db import Base, UTCDateTime


class ProcessHeartbeat(Base):
    """A background process saying it is alive: the console tells a schedule that runs
    from one that is only written down."""

    __tablename__ = "process_heartbeats"

    process: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid
    kind: Mapped[str] = mapped_column(String(16), index=True)  # scheduler
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
