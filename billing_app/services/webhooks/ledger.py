"""The webhook ledger: record each verified notification once, apply it, keep failures.

A delivery only `accept`s: one insert (the unique `event_id` turns a copy into a counted
duplicate), committed, and Paddle gets its 200. Workers (`billing_app.services.webhooks.inbox`) then
`apply_event` each row: the handler's changes and the row's outcome commit together. When a
handler fails, its changes roll back and the ledger keeps the event as `failed` with its
error and a time to try again; after WEBHOOK_MAX_ATTEMPTS it is `dead`. `replay` re-applies
stored events through the same `apply_event`.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Connection, bindparam, case, select, tuple_, update
from sqlalchemy.orm import Session

from billing_app.db import is_conflict, upsert_insert, utcnow
from billing_app.errors import describe_failure
from billing_app.models import WebhookEvent
from billing_app.services.data_requests import erasure
from billing_app.services.events import outbox
from billing_app.services.webhooks.handlers import HANDLERS
from paddle_client.webhooks import Notification, parse_notification

log = logging.getLogger(__name__)

RETRYABLE = ("failed",)
MAX_ERROR_LENGTH = 2000
MAX_ATTEMPTS = 12  # WEBHOOK_MAX_ATTEMPTS: 1, 2, 4 ... minutes apart, about a day in all


def retry_delay(attempts: int, rand=random.random) -> timedelta:
    """When a failed event may be tried again: 1, 2, 4 ... minutes (at most 6 h), each
    spread by a quarter either way so that a burst of failures does not retry in step."""
    minutes = min(2 ** max(attempts - 1, 0), 360)
    return timedelta(minutes=minutes * (0.75 + 0.5 * rand()))


_LEDGER = WebhookEvent.__table__
# A deadlock or a lock timeout is tried again this soon (doubled at most, by chance).
CONFLICT_RETRY = timedelta(seconds=1)

# The statements every delivery runs are built once, on the table rather than the mapped
# class: executed with plain parameters they skip the ORM's per-call statement building.

# What settling a row writes, beside its outcome and when.
SETTLED = {
    "error": None,
    "next_attempt_at": None,
    "attempts": _LEDGER.c.attempts + 1,
    "claimed_by": None,
    "claimed_until": None,
}

_SETTLE = (
    update(_LEDGER)
    .where(_LEDGER.c.id == bindparam("entry_id"))
    .values(status=bindparam("outcome"), processed_at=bindparam("settled_at"), **SETTLED)
)

_COUNT_REPLAY = (
    update(_LEDGER)
    .where(_LEDGER.c.id == bindparam("entry_id"))
    .values(
        replays=_LEDGER.c.replays + 1,
        last_replay_outcome=bindparam("outcome"),
        last_replayed_at=bindparam("replayed_at"),
    )
)


def _ledger_values(notification: Notification, raw_body: bytes, now: datetime) -> dict:
    return {
        "event_id": notification.event_id,
        "event_type": notification.event_type,
        "occurred_at": notification.occurred_at,
        "notification_id": notification.notification_id,
        "entity_id": _entity_id(notification.data.get("id")),
        "payload": raw_body.decode("utf-8"),
        "status": "received",
        "attempts": 0,
        "deliveries": 1,
        "received_at": now,
    }


def _entity_id(value) -> str | None:
    """The entity's id, for an operator's search, if it is one we can store as text."""
    if not isinstance(value, str) or not value.isprintable():
        return None
    return value[:64] or None


def record_rejected(session: Session, raw_body: bytes, reason: str) -> None:
    """Keep a verified body that is not a notification we can apply, with the reason, under
    an event id made from its digest (so a redelivery is counted, not stored twice)."""
    now = utcnow()
    digest = hashlib.sha256(raw_body).hexdigest()[:40]
    text = raw_body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    values = {
        "event_id": f"rejected_{digest}",
        "event_type": "rejected",
        "occurred_at": now,
        "notification_id": None,
        "entity_id": None,
        "payload": text,
        "status": "rejected",
        "error": reason[:MAX_ERROR_LENGTH],
        "attempts": 0,
        "deliveries": 1,
        "received_at": now,
    }
    statement = (
        upsert_insert(session)(_LEDGER)
        .values(**values)
        .on_conflict_do_update(
            index_elements=["event_id"], set_={"deliveries": _LEDGER.c.deliveries + 1}
        )
    )
    session.execute(statement)


@dataclass(frozen=True)
class LedgerEntry:
    """A ledger row to apply: enough to run its handler and record the outcome."""

    id: int
    event_id: str
    event_type: str
    payload: str
    status: str = "received"

    @classmethod
    def of(cls, event: WebhookEvent) -> LedgerEntry:
        return cls(event.id, event.event_id, event.event_type, event.payload, event.status)

    @property
    def settled(self) -> bool:
        """Applied (or judged stale, ignored) already: a replay must not rewrite that."""
        return self.status not in ("received", "dead", *RETRYABLE)


def record_failure(
    session: Session,
    notification: Notification,
    raw_body: bytes,
    error: Exception,
    *,
    delivered: bool,
    max_attempts: int = MAX_ATTEMPTS,
) -> None:
    """Keep a failed event in the ledger, in a transaction of its own (the one that failed
    was rolled back, with everything the handler had changed): to be tried again after a
    backoff, or, once it has failed `max_attempts` times, parked as `dead`."""
    now = utcnow()
    message = describe_failure(error, MAX_ERROR_LENGTH)
    failed = {"status": "failed", "error": message, "processed_at": None}
    statement = (
        upsert_insert(session)(_LEDGER)
        .values(**{**_ledger_values(notification, raw_body, now), **failed, "attempts": 1})
        .on_conflict_do_update(
            index_elements=["event_id"],
            set_={
                **failed,
                "attempts": _LEDGER.c.attempts + 1,
                "deliveries": _LEDGER.c.deliveries + (1 if delivered else 0),
            },
        )
        .returning(_LEDGER.c.id, _LEDGER.c.attempts)
    )
    entry_id, attempts = session.execute(statement).one()
    if attempts >= max_attempts:
        log.error(
            "webhook %s (%s) failed %d times; parked as dead: %s",
            notification.event_id,
            notification.event_type,
            attempts,
            message,
        )
        parked = {"status": "dead", "next_attempt_at": None}
    elif is_conflict(error):  # another transaction was in the way: again in a moment
        parked = {"next_attempt_at": now + CONFLICT_RETRY * (1 + random.random())}  # noqa: S311
    else:
        parked = {"next_attempt_at": now + retry_delay(attempts)}
    session.execute(
        update(_LEDGER)
        .where(_LEDGER.c.id == entry_id)
        .values(claimed_by=None, claimed_until=None, **parked)
    )


def apply_event(
    session: Session,
    entry: LedgerEntry,
    notification: Notification | None = None,
    *,
    delivered: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> str:
    """Run the event's handler and record the outcome on the ledger row.

    On failure the whole transaction is rolled back (the handler's changes with it) and the
    event is recorded as `failed` in a new one; the caller commits either way. Replaying an
    event already settled records the replay's outcome beside the event's own.
    """
    raw_body = entry.payload.encode("utf-8")
    notification = notification or parse_notification(raw_body)
    handler = HANDLERS.get(entry.event_type)
    outbox.caused_by(session, "paddle_webhook")
    try:
        outcome = handler(session, notification) if handler else "ignored"
        erasure.keep_erased_out(session, entry.id, entry.payload, notification.data)
        if entry.settled:
            _count_replay(session, entry, outcome)
        else:
            settle(session, entry.id, outcome)
    except Exception as error:  # any failure must be kept on the ledger, not lost
        log.error(
            "webhook %s (%s) failed: %s",
            notification.event_id,
            notification.event_type,
            describe_failure(error),
        )
        log.debug("webhook %s failed", notification.event_id, exc_info=True)
        session.rollback()
        if entry.settled:
            _count_replay(session, entry, "failed")
        else:
            record_failure(
                session,
                notification,
                raw_body,
                error,
                delivered=delivered,
                max_attempts=max_attempts,
            )
        return "failed"
    return outcome


def settle(session: Session, entry_id: int, outcome: str) -> None:
    """Record a row's outcome without running its handler (a superseded snapshot)."""
    session.execute(_SETTLE, {"entry_id": entry_id, "outcome": outcome, "settled_at": utcnow()})


def _count_replay(session: Session, entry: LedgerEntry, outcome: str) -> None:
    session.execute(
        _COUNT_REPLAY, {"entry_id": entry.id, "outcome": outcome, "replayed_at": utcnow()}
    )


@cache
def _accept_once(insert):
    """`INSERT ... ON CONFLICT (event_id) DO UPDATE` counting the delivery (and making a
    failed event due now), `RETURNING deliveries`: 1 for a new event. One statement, so a
    delivery costs one round trip; the unique index decides between concurrent copies."""
    statement = insert(_LEDGER)
    make_due = case(
        (_LEDGER.c.status == "failed", statement.excluded.received_at),
        else_=_LEDGER.c.next_attempt_at,
    )
    return statement.on_conflict_do_update(
        index_elements=["event_id"],
        set_={"deliveries": _LEDGER.c.deliveries + 1, "next_attempt_at": make_due},
    ).returning(_LEDGER.c.deliveries)


_ACCEPT_ONCE: dict = {}


def accept(connection: Connection | Session, notification: Notification, raw_body: bytes) -> str:
    """Keep a verified notification for the workers: `accepted`, or `duplicate` for a copy
    of one already kept (counted; a copy of a failed one makes it due now: Paddle's retry
    is a good moment for ours). The caller commits, unless `connection` autocommits."""
    insert = upsert_insert(connection)
    statement = _ACCEPT_ONCE.get(insert)
    if statement is None:  # built once per dialect: the intake's hot path
        statement = _ACCEPT_ONCE[insert] = _accept_once(insert)
    values = _ledger_values(notification, raw_body, utcnow())
    deliveries = connection.execute(statement, values).scalar_one()
    return "accepted" if deliveries == 1 else "duplicate"


def events_to_replay(
    session: Session,
    *,
    statuses: Iterable[str] = ("failed",),
    event_ids: Iterable[str] = (),
    due_before: datetime | None = None,
    limit: int | None = None,
) -> list[LedgerEntry]:
    query = (
        select(WebhookEvent)
        .where(WebhookEvent.status != "rejected")  # not a notification: nothing to apply
        .order_by(WebhookEvent.occurred_at, WebhookEvent.event_id)
    )
    event_ids = list(event_ids)
    if event_ids:
        query = query.where(WebhookEvent.event_id.in_(event_ids))
    else:
        query = query.where(WebhookEvent.status.in_(list(statuses)))
    if due_before is not None:
        query = query.where(
            (WebhookEvent.next_attempt_at.is_(None)) | (WebhookEvent.next_attempt_at <= due_before)
        )
    if limit:
        query = query.limit(limit)
    return [LedgerEntry.of(event) for event in session.scalars(query)]


@dataclass(frozen=True)
class Replayed:
    event_id: str
    event_type: str
    outcome: str
    kept_status: str | None  # an event already settled keeps its own outcome beside the replay's


def replay(session: Session, entries: Iterable[LedgerEntry]) -> list[Replayed]:
    """An operator's replay (the CLI's and the console's): each event through the same path
    as a delivery, committed one by one."""
    replayed = []
    for entry in entries:
        outcome = apply_event(session, entry)
        session.commit()
        kept = entry.status if entry.settled else None
        replayed.append(Replayed(entry.event_id, entry.event_type, outcome, kept))
    return replayed


def ledger_events(
    session: Session,
    *,
    statuses: Iterable[str] = (),
    event_types: Iterable[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int = 50,
) -> list[WebhookEvent]:
    """The newest ledger rows matching the filters, for an operator; `after` (a row's
    received_at and id) starts the page after that row."""
    query = (
        select(WebhookEvent)
        .order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc())
        .limit(limit)
    )
    if statuses:
        query = query.where(WebhookEvent.status.in_(list(statuses)))
    if event_types:
        query = query.where(WebhookEvent.event_type.in_(list(event_types)))
    if since is not None:
        query = query.where(WebhookEvent.received_at >= since)
    if until is not None:
        query = query.where(WebhookEvent.received_at < until)
    if after is not None:
        query = query.where(tuple_(WebhookEvent.received_at, WebhookEvent.id) < after)
    return list(session.scalars(query))


def ledger_event(session: Session, event_id: str) -> WebhookEvent | None:
    return session.scalars(select(WebhookEvent).where(WebhookEvent.event_id == event_id)).first()
