"""The webhook ledger as a work queue: workers claim due rows, apply them through the same
`apply_event` as delivery and replay, and let go.

A claim is one atomic statement that marks a batch of due rows as this worker's until a
visibility timeout: on PostgreSQL the batch is picked `FOR UPDATE SKIP LOCKED`, so any
number of workers on any number of hosts take disjoint batches; on SQLite the one writer
at a time makes the `UPDATE ... RETURNING` atomic. A worker that died loses its rows when
their claim runs out, and another worker takes them. Before applying a row the worker locks
it and checks it is still its own and still unsettled, so a delivery applying the same row
at the same moment (Paddle's own retry) and the worker never both apply it.

Due: `received`, or `failed` whose backoff has passed; never `dead` (it failed
WEBHOOK_MAX_ATTEMPTS times and waits for an operator's replay).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from billing_app.db import utcnow
from billing_app.metrics import WEBHOOK_APPLY_SECONDS, WEBHOOKS_APPLIED
from billing_app.models import WebhookEvent
from billing_app.services.claims import Claims
from billing_app.services.webhooks import ledger as webhook_service
from billing_app.services.webhooks.ledger import LedgerEntry

log = logging.getLogger(__name__)

_LEDGER = WebhookEvent.__table__
UNSETTLED = ("received", "failed")
SNAPSHOTS_PER_SUBSCRIPTION = 20  # at most this many rows claimed per row of a batch
VISIBILITY = timedelta(seconds=30)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Claimed:
    entry: LedgerEntry
    occurred_at: datetime
    entity_id: str | None


def claim_due(
    session: Session,
    worker: str,
    *,
    limit: int,
    visibility: timedelta = VISIBILITY,
    now: datetime | None = None,
) -> list[Claimed]:
    """Mark up to `limit` due rows as `worker`'s, oldest first, and return them. Commits."""
    now = now or utcnow()
    due = (
        _LEDGER.c.status.in_(UNSETTLED),
        or_(_LEDGER.c.next_attempt_at.is_(None), _LEDGER.c.next_attempt_at <= now),
        or_(_LEDGER.c.claimed_until.is_(None), _LEDGER.c.claimed_until < now),
    )
    oldest = (
        select(_LEDGER.c.id, _LEDGER.c.entity_id, _LEDGER.c.event_type)
        .where(*due)
        .order_by(_LEDGER.c.occurred_at, _LEDGER.c.event_id)
        .limit(limit)
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:  # rows another worker is claiming right now are passed over, not waited for
        oldest = oldest.with_for_update(skip_locked=True)
    oldest = oldest.subquery()
    # With the oldest due rows come the other due snapshots of their subscriptions: of
    # those only the newest needs applying (`newest_per_subscription`), so the deeper the
    # backlog, the less work each event costs.
    snapshot = _LEDGER.c.event_type.like("subscription.%")
    their_subscriptions = select(oldest.c.entity_id).where(
        oldest.c.event_type.like("subscription.%")
    )
    pick = (
        select(_LEDGER.c.id)
        .where(
            *due,
            or_(
                _LEDGER.c.id.in_(select(oldest.c.id)),
                and_(snapshot, _LEDGER.c.entity_id.in_(their_subscriptions)),
            ),
        )
        .order_by(_LEDGER.c.occurred_at, _LEDGER.c.event_id)
        .limit(limit * SNAPSHOTS_PER_SUBSCRIPTION)
    )
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    claim = (
        update(_LEDGER)
        .where(_LEDGER.c.id.in_(pick.scalar_subquery()))
        .values(claimed_by=worker, claimed_until=now + visibility)
        .returning(
            _LEDGER.c.id,
            _LEDGER.c.event_id,
            _LEDGER.c.event_type,
            _LEDGER.c.payload,
            _LEDGER.c.status,
            _LEDGER.c.occurred_at,
            _LEDGER.c.entity_id,
        )
    )
    rows = session.execute(claim).all()
    session.commit()
    claimed = [
        Claimed(
            LedgerEntry(row.id, row.event_id, row.event_type, row.payload, row.status),
            row.occurred_at,
            row.entity_id,
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda item: (item.occurred_at, item.entry.event_id))


def _subscription_of(item: Claimed) -> str | None:
    return item.entity_id if item.entry.event_type.startswith("subscription.") else None


def newest_per_subscription(batch: list[Claimed]) -> tuple[list[Claimed], dict[int, list[int]]]:
    """(to apply, superseded): of several snapshots of one subscription in a batch only the
    newest needs applying; the older ones' ledger ids are listed under the newest one's.
    The stale guard would turn them into `stale` anyway."""
    newest: dict[str, Claimed] = {}
    for item in batch:  # in (occurred_at, event_id) order: the last one seen is the newest
        if subscription := _subscription_of(item):
            newest[subscription] = item
    to_apply, superseded = [], {}
    for item in batch:
        subscription = _subscription_of(item)
        if subscription is None or newest[subscription] is item:
            to_apply.append(item)
        else:
            superseded.setdefault(newest[subscription].entry.id, []).append(item.entry.id)
    return to_apply, superseded


_LOCK_OWN = select(_LEDGER.c.status, _LEDGER.c.claimed_by).with_for_update()


def _still_ours(session: Session, entry_id: int, worker: str) -> bool:
    row = session.execute(_LOCK_OWN.where(_LEDGER.c.id == entry_id)).first()
    return row is not None and row.status in UNSETTLED and row.claimed_by == worker


def _ours(worker: str, entry_ids: list[int]):
    return update(_LEDGER).where(
        _LEDGER.c.id.in_(entry_ids),
        _LEDGER.c.claimed_by == worker,
        _LEDGER.c.status.in_(UNSETTLED),
    )


def settle_batch(
    session: Session, worker: str, batch: list[Claimed], *, max_attempts: int
) -> dict[str, int]:
    """Apply a claimed batch, a row per transaction; return the outcomes counted.

    The snapshots a row supersedes are settled `stale` once it has applied. If it failed,
    they are handed back instead, to be applied on their own meanwhile: a newest snapshot
    that can never be applied must not keep its subscription from the older ones."""
    outcomes: dict[str, int] = {}
    to_apply, superseded = newest_per_subscription(batch)
    for item in to_apply:
        if not _still_ours(session, item.entry.id, worker):
            session.commit()  # a delivery or another worker settled it meanwhile
            continue
        started = time.perf_counter()
        outcome = webhook_service.apply_event(session, item.entry, max_attempts=max_attempts)
        stale = 0
        if older := superseded.get(item.entry.id):
            # In the same transaction as the apply: one commit settles the row and the
            # snapshots it supersedes (or hands them back, if it failed), together.
            if outcome == "failed":
                session.execute(_ours(worker, older).values(claimed_by=None, claimed_until=None))
            else:
                settled = {**webhook_service.SETTLED, "status": "stale", "processed_at": utcnow()}
                stale = session.execute(_ours(worker, older).values(**settled)).rowcount
        session.commit()
        WEBHOOK_APPLY_SECONDS.labels(item.entry.event_type).observe(time.perf_counter() - started)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        WEBHOOKS_APPLIED.labels(item.entry.event_type, outcome).inc()
        if stale:
            outcomes["stale"] = outcomes.get("stale", 0) + stale
            WEBHOOKS_APPLIED.labels(item.entry.event_type, "stale").inc(stale)
    return outcomes


CLAIMS = Claims(_LEDGER, _LEDGER.c.status.in_(UNSETTLED))
renew_claims = CLAIMS.renew
release_claims = CLAIMS.release


def backlog(session: Session) -> tuple[int, float | None]:
    """How many rows wait to be applied, and the age in seconds of the oldest."""
    count, oldest = session.execute(
        select(func.count(), func.min(_LEDGER.c.received_at)).where(_LEDGER.c.status.in_(UNSETTLED))
    ).one()
    return count, (utcnow() - oldest).total_seconds() if oldest else None
