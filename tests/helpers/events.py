"""Reading the outbox as a consumer would: each account's events in sequence order."""

from __future__ import annotations

import json

from sqlalchemy import select

from billing_app.db import single_statement
from billing_app.extensions import db
from billing_app.models import OutboundEvent


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
