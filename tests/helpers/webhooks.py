"""Delivering signed notifications as Paddle does, and applying them as the worker does."""

from __future__ import annotations

import json

from flask import has_app_context
from sqlalchemy import select

from billing_app.db import single_statement
from billing_app.extensions import db
from billing_app.models import WebhookEvent
from billing_app.worker import Worker
from paddle_client.webhooks import sign
from tests.helpers.config import WEBHOOK_SECRET


def post_webhook(
    client, body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp=None, apply: bool = True
):
    """Deliver a signed notification as Paddle does, then (unless `apply` is False) let the
    worker apply what is due, as the service's own worker would a moment later. Both use
    connections of their own, so the test's session first commits what it holds open
    (on SQLite an open transaction would keep them waiting for its write lock)."""
    if has_app_context():
        db.session.commit()
    header = sign(body, secret, timestamp=timestamp)
    response = client.post(
        "/webhooks/paddle",
        data=body,
        headers={"Paddle-Signature": header, "Content-Type": "application/json"},
    )
    if apply:
        drain(client.application)
    return response


def drain(app) -> dict[str, int]:
    """Run the webhook worker until nothing is due; the outcomes counted."""
    worker, outcomes = Worker(app), {}
    while worked := worker.run_once():
        for outcome, count in worked.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    return outcomes


def deliver(client, body: bytes) -> str:
    """Deliver and apply one notification; the outcome the ledger recorded for it."""
    response = post_webhook(client, body)
    assert response.status_code == 200, response.json
    event_id = json.loads(body)["event_id"]
    with client.application.app_context(), single_statement(db.engine) as connection:
        return connection.execute(
            select(WebhookEvent.status).where(WebhookEvent.event_id == event_id)
        ).scalar_one()
