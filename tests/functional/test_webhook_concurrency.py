"""Real concurrency on PostgreSQL: copies and rival events racing on separate connections."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from billing_app.models import Subscription, WebhookEvent
from tests.helpers.payloads import T0, body_of, envelope, subscription_data
from tests.helpers.webhooks import post_webhook

pytestmark = pytest.mark.postgres

SENDERS = 8
ROUNDS = 15


def race(app, bodies):
    """POST every body at the same moment, each from its own thread and connection; each
    thread then runs the worker, so as many workers as senders race to apply them."""
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
        assert outcomes == ["accepted"] + ["duplicate"] * (SENDERS - 1)

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


PAIRS_PER_ROUND = 8
LINK_ROUNDS = 25


@pytest.mark.parametrize("names_the_account", [False, True], ids=["no-claim", "claim"])
def test_a_subscription_and_its_customer_arriving_together_stay_linked(
    app, session, names_the_account
):
    """`subscription.created` made outside our checkout (no app ids, or custom_data naming
    the account) races the `customer.created` that names the account: whichever commits
    first, the second sees it, so the subscription ends linked every time."""
    for round_number in range(LINK_ROUNDS):
        bodies = []
        for pair in range(PAIRS_PER_ROUND):
            n = round_number * PAIRS_PER_ROUND + pair
            customer_id = f"ctm_pair{n:06d}"
            bodies.append(
                body_of(
                    envelope(
                        "subscription.created",
                        subscription_data(
                            id=f"sub_pair{n:06d}",
                            customer_id=customer_id,
                            custom_data=(
                                {"app_account_id": f"acct_pair{n:06d}"}
                                if names_the_account
                                else None
                            ),
                        ),
                    )
                )
            )
            bodies.append(
                body_of(
                    envelope(
                        "customer.created",
                        {
                            "id": customer_id,
                            "email": f"pair{n}@example.com",
                            "custom_data": {"app_account_id": f"acct_pair{n:06d}"},
                        },
                    )
                )
            )
        answers = race(app, bodies)
        assert all(status == 200 for status, _ in answers), answers

    session.expire_all()
    rows = session.scalars(select(Subscription)).all()
    assert len(rows) == PAIRS_PER_ROUND * LINK_ROUNDS
    unlinked = [row.paddle_subscription_id for row in rows if row.account_id is None]
    assert unlinked == []
    assert all(row.account_id == "acct_" + row.paddle_subscription_id[4:] for row in rows)
