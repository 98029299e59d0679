"""Claims with a visibility timeout: how a worker holds rows of a work queue while it works
on them (the webhook inbox, the outbound deliveries: `billing_app.worker` runs both).

A claim names the worker and lasts until `claimed_until`; a worker that dies loses its
rows when their claims run out, and another takes them. While it works, a worker renews its
claims from a connection of its own (its transaction may be waiting on a lock); when it
stops, it lets go of what it did not settle, for others to take at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from billing_app.db import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claims:
    """The claims on `table`'s rows that are still `unsettled`."""

    table: Table
    unsettled: ColumnElement[bool]

    def renew(self, engine: Engine, worker: str, visibility: timedelta) -> bool:
        """Extend `worker`'s claims. A row its own transaction holds locked is passed over
        (no other worker can take it meanwhile); a renewal the database did not answer is
        logged and tried at the next beat: the claims last a while yet."""
        table = self.table
        mine = (
            select(table.c.id)
            .where(table.c.claimed_by == worker, self.unsettled)
            .with_for_update(skip_locked=True)
        )
        try:
            with engine.begin() as connection:
                connection.execute(
                    update(table)
                    .where(table.c.id.in_(mine.scalar_subquery()))
                    .values(claimed_until=utcnow() + visibility)
                )
        except SQLAlchemyError as error:
            log.warning("worker %s could not renew its claims: %s", worker, type(error).__name__)
        return True

    def release(self, session: Session, worker: str) -> int:
        """Let go of `worker`'s claims on rows it did not settle; how many. Commits."""
        table = self.table
        released = session.execute(
            update(table)
            .where(table.c.claimed_by == worker, self.unsettled)
            .values(claimed_by=None, claimed_until=None)
        ).rowcount
        session.commit()
        return released
