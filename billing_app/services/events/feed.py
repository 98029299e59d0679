"""The pull feed: the outbox read in order from a cursor, for consumers that cannot take
webhooks, and the lists an operator reads (the CLI, the console).

Order is (`txid`, `position`). On PostgreSQL positions are given when events are inserted,
not when they commit, so a reader that followed `position` alone could pass over an event
a slower transaction commits later. The feed reads only events of transactions older than
the oldest one still open (`pg_snapshot_xmin`): every transaction below that horizon has
ended, so nothing can appear behind the cursor. (A transaction left open for long holds the
feed back meanwhile; the service holds none open while it waits on anything.) On SQLite one
writer at a time commits in position order; `txid` is 0.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import literal_column, select, tuple_
from sqlalchemy.orm import Session

from billing_app.models import EventDelivery, EventDeliveryAttempt, OutboundEvent


@dataclass(frozen=True)
class Cursor:
    txid: int
    position: int

    def encode(self) -> str:
        return base64.urlsafe_b64encode(f"{self.txid}.{self.position}".encode()).decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor a page gave; ValueError for anything else."""
        try:
            txid, position = base64.urlsafe_b64decode(text.encode()).decode().split(".")
            return cls(int(txid), int(position))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ValueError("not a cursor this feed gave") from None


START = Cursor(-1, 0)


def read_feed(
    connection, after: Cursor, *, types: list[str] | None = None, limit: int = 100
) -> tuple[list[str], Cursor]:
    """Up to `limit` event bodies (JSON text) after `after`, oldest first, and the cursor to
    read on from."""
    query = (
        select(OutboundEvent.txid, OutboundEvent.position, OutboundEvent.body)
        .where(tuple_(OutboundEvent.txid, OutboundEvent.position) > (after.txid, after.position))
        .order_by(OutboundEvent.txid, OutboundEvent.position)
        .limit(limit)
    )
    if types:
        query = query.where(OutboundEvent.type.in_(types))
    if connection.dialect.name == "postgresql":
        query = query.where(OutboundEvent.txid < _horizon())
    rows = connection.execute(query).all()
    if not rows:
        return [], after
    return [row.body for row in rows], Cursor(rows[-1].txid, rows[-1].position)


def latest_cursor(connection) -> Cursor:
    """The cursor after the newest event a reader can see now: reading on from it gives only
    what is written from now on."""
    query = (
        select(OutboundEvent.txid, OutboundEvent.position)
        .order_by(OutboundEvent.txid.desc(), OutboundEvent.position.desc())
        .limit(1)
    )
    if connection.dialect.name == "postgresql":
        query = query.where(OutboundEvent.txid < _horizon())
    row = connection.execute(query).first()
    return Cursor(row.txid, row.position) if row is not None else START


def is_kept(connection, cursor: Cursor) -> bool:
    """Is the event a cursor was given after still kept? A cursor is the last event a page
    held; once that event is deleted (EVENTS_RETENTION_DAYS), those after it may be too."""
    if cursor == START:
        return True
    found = connection.execute(
        select(OutboundEvent.position).where(
            OutboundEvent.position == cursor.position, OutboundEvent.txid == cursor.txid
        )
    ).first()
    return found is not None


def _horizon():
    """The oldest transaction still open: those below it have all ended."""
    return literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


@dataclass(frozen=True)
class Listed:
    event: OutboundEvent
    deliveries: list[EventDelivery]


def list_events(
    session: Session,
    *,
    type: str | None = None,
    account_id: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[Listed]:
    """The newest events first, each with its deliveries; `status`: those with a delivery
    in that state (pending, delivered, failed)."""
    query = select(OutboundEvent).order_by(OutboundEvent.position.desc()).limit(limit)
    if type:
        query = query.where(OutboundEvent.type == type)
    if account_id:
        query = query.where(OutboundEvent.account_id == account_id)
    if since:
        query = query.where(OutboundEvent.occurred_at >= since)
    if status:
        query = query.where(
            OutboundEvent.position.in_(
                select(EventDelivery.event_position).where(EventDelivery.status == status)
            )
        )
    return _with_deliveries(session, list(session.scalars(query)))


def event_with_deliveries(session: Session, event_id: str) -> Listed | None:
    event = session.scalar(select(OutboundEvent).where(OutboundEvent.id == event_id))
    return _with_deliveries(session, [event])[0] if event is not None else None


def attempts_of(session: Session, delivery_ids: list[int]) -> dict[int, list]:
    """Each delivery's attempts, oldest first."""
    found: dict[int, list] = {delivery_id: [] for delivery_id in delivery_ids}
    if delivery_ids:
        for attempt in session.scalars(
            select(EventDeliveryAttempt)
            .where(EventDeliveryAttempt.delivery_id.in_(delivery_ids))
            .order_by(EventDeliveryAttempt.id)
        ):
            found[attempt.delivery_id].append(attempt)
    return found


def _with_deliveries(session: Session, events: list[OutboundEvent]) -> list[Listed]:
    deliveries: dict[int, list[EventDelivery]] = {event.position: [] for event in events}
    if events:
        for found in session.scalars(
            select(EventDelivery)
            .where(EventDelivery.event_position.in_(list(deliveries)))
            .order_by(EventDelivery.id)
        ):
            deliveries[found.event_position].append(found)
    return [Listed(event, deliveries[event.position]) for event in events]
