"""Reading the outbox as a consumer would, and sending what it holds as the event workers do."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from billing_app.db import single_statement, utcnow
from billing_app.extensions import db
from billing_app.models import EventDelivery, OutboundEvent
from billing_app.worker import EventOutbox, Worker


def events_of(app, account_id: str | None = None, *, types: bool = False) -> list:
    """The events written (an account's, or all), oldest first: their bodies, or `types`."""
    query = select(OutboundEvent.body).order_by(OutboundEvent.position)
    if account_id is not None:
        query = query.where(OutboundEvent.account_id == account_id)
    with app.app_context(), single_statement(db.engine) as connection:
        bodies = [json.loads(body) for body in connection.execute(query).scalars()]
    return [body["type"] for body in bodies] if types else bodies


def entitlement_changes(app, account_id: str) -> list[dict]:
    """The account's `entitlements.changed` events' data, oldest first."""
    return [
        body["data"]
        for body in events_of(app, account_id)
        if body["type"] == "entitlements.changed"
    ]


def send_due(app) -> dict[str, int]:
    """Run an event worker until nothing is due now; the outcomes counted."""
    worker, outcomes = Worker(app, queue=EventOutbox(app)), {}
    while sent := worker.run_once():
        for outcome, count in sent.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    return outcomes


def time_passes(app) -> None:
    """Every delivery waiting for a retry is due now (and every claim has run out)."""
    with app.app_context(), single_statement(db.engine) as connection:
        connection.execute(
            update(EventDelivery)
            .where(EventDelivery.status == "pending")
            .values(next_attempt_at=utcnow(), claimed_until=None)
        )
