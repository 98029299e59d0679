"""Real concurrency on PostgreSQL: copies and rival events racing on separate connections."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from billing_app.models import Subscription, WebhookEvent
from tests.factories import T0, body_of, envelope, post_webhook, subscription_data

pytestmark = pytest.mark.postgres

SENDERS = 8
ROUNDS = 15


def race(app, bodies):
    """POST every body at the same moment, each from its own thread and connection."""
    barrier = threading.Barrier(len(bodies))

    def send(body):
        client = app.test_client()
        barrier.wait()
        response = post_webhook(client, body)
        return response.status_code, (response.json or {}).get("status")

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_copies_of_one_event_apply_once(app, session):
    for round_number in range(ROUNDS):
        data = subscription_data(id=f"sub_race{round_number:04d}")
        body = body_of(envelope("subscription.created", data))
        answers = race(app, [body] * SENDERS)
        assert all(status == 200 for status, _ in answers), answers
        outcomes = sorted(outcome for _, outcome in answers)
        assert outcomes == ["duplicate"] * (SENDERS - 1) + ["processed"]

    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Subscription)) == ROUNDS
    deliveries = session.scalars(select(WebhookEvent.deliveries)).all()
    assert deliveries == [SENDERS] * ROUNDS
    assert set(session.scalars(select(WebhookEvent.attempts))) == {1}


def test_rival_events_for_a_new_subscription_serialise(app, session):
    for round_number in range(ROUNDS):
        paddle_id = f"sub_rival{round_number:04d}"
        bodies = [
            body_of(
                envelope(
                    "subscription.updated",
                    subscription_data(id=paddle_id, status=status),
                    occurred_at=T0 + timedelta(seconds=index),
                )
            )
            for index, status in enumerate(["active", "past_due", "active", "paused", "canceled"])
        ]
        answers = race(app, bodies)
        assert all(status == 200 for status, _ in answers), answers
        session.expire_all()
        row = session.scalars(
            select(Subscription).where(Subscription.paddle_subscription_id == paddle_id)
        ).one()
        assert row.status == "canceled"  # the newest event wins whoever commits first
        assert row.last_event_at == T0 + timedelta(seconds=4)
