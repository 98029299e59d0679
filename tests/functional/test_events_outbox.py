"""The outbox: each change that commits writes its events once, in the same transaction,
whichever path made it; a change rolled back writes none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from billing_app.models import EventAccount, OutboundEvent, Subscription
from billing_app.services.reconcile import Reconciler
from billing_app.services.subscriptions.ownership import link_subscription
from paddle_client import Client
from tests.helpers.config import PADDLE_BASE
from tests.helpers.events import entitlement_changes, events_of
from tests.helpers.paddle_lists import serve_subscription_list
from tests.helpers.payloads import (
    SCHEDULED_CANCEL,
    body_of,
    canceled_now,
    envelope,
    paddle_entity,
    paddle_subscription,
    subscription_data,
)
from tests.helpers.rows import (
    make_account,
    make_active_subscription,
    make_plan,
    make_subscription,
)
from tests.helpers.samples import sample_bytes
from tests.helpers.tokens import auth
from tests.helpers.webhooks import deliver, post_webhook

ACCOUNT = {"app_account_id": "acct_1"}
DAY = datetime(2026, 1, 1, tzinfo=UTC)


def notification(kind: str, moment: datetime, **changes):
    data = subscription_data(custom_data=ACCOUNT, **changes)
    return body_of(envelope(kind, data, occurred_at=moment))


@pytest.fixture
def account(session):
    make_plan(session)
    make_account(session, "acct_1")


def test_a_subscription_activated_by_webhook_tells_the_account_once(client, account, app):
    activated = notification("subscription.activated", DAY)
    assert deliver(client, activated) == "processed"
    bodies = events_of(app, "acct_1")
    assert [body["type"] for body in bodies] == [
        "subscription.created",
        "subscription.activated",
        "entitlements.changed",
    ]
    assert [body["sequence"] for body in bodies] == [1, 2, 3]
    assert bodies[0]["data"]["subscription"]["status"] == "active"
    assert bodies[0]["data"]["subscription"]["plan"] == "starter"
    change = bodies[2]["data"]
    assert change["before"]["access"] is False and change["after"]["access"] is True
    assert change["after"]["features"] == ["projects", "exports"]
    assert change["cause"] == "paddle_webhook"
    assert change["with"] == ["subscription.created", "subscription.activated"]

    # The same delivery again, and an older snapshot, change nothing: no event.
    post_webhook(client, activated)
    assert deliver(client, notification("subscription.updated", DAY - timedelta(hours=1))) == (
        "stale"
    )
    assert len(events_of(app, "acct_1")) == 3


def test_a_cancellation_then_tells_of_the_lost_access(client, account, app):
    deliver(client, notification("subscription.activated", DAY))
    canceled = notification(
        "subscription.canceled",
        DAY + timedelta(days=1),
        status="canceled",
        canceled_at="2026-01-02T00:00:00Z",
        scheduled_change=None,
    )
    deliver(client, canceled)
    types = events_of(app, "acct_1", types=True)
    assert types[3:] == ["subscription.canceled", "entitlements.changed"]
    last = entitlement_changes(app, "acct_1")[-1]
    assert (last["before"]["access"], last["after"]["access"]) == (True, False)
    assert last["after"]["features"] == []


def test_a_change_that_does_not_change_what_the_product_sees_tells_nothing(client, account, app):
    deliver(client, notification("subscription.activated", DAY))
    # Paddle's next snapshot with only its own bookkeeping changed (the next bill's date).
    deliver(
        client,
        notification(
            "subscription.updated", DAY + timedelta(hours=1), next_billed_at="2030-01-01T00:00:00Z"
        ),
    )
    assert len(events_of(app, "acct_1")) == 3


def test_a_past_due_subscription_says_past_due_once(client, account, app):
    deliver(client, notification("subscription.activated", DAY))
    past_due = notification("subscription.past_due", DAY + timedelta(hours=1), status="past_due")
    deliver(client, past_due)
    post_webhook(client, past_due)  # Paddle's retry: told once
    types = events_of(app, "acct_1", types=True)
    # The grace period runs from the current period's start (the sample's, long past), so
    # the access is gone as well.
    assert types[3] == "subscription.past_due"
    assert types.count("subscription.past_due") == 1


def test_a_rolled_back_change_writes_no_event(app, session, account):
    session.add(Subscription(account_id="acct_1", status="active", quantity=1))
    session.flush()
    session.rollback()
    session.add(Subscription(account_id="acct_1", status="pending", quantity=1))
    session.commit()  # a checkout not paid yet: nothing the product is told
    assert events_of(app) == []


def test_an_operator_linking_a_subscription_tells_its_new_account(client, app, session):
    make_plan(session)
    post_webhook(client, sample_bytes("webhook-subscription.activated.json"))
    assert events_of(app) == []  # nobody's yet: nothing to tell anyone
    paddle_id = session.scalars(select(Subscription.paddle_subscription_id)).one()
    link_subscription(session, paddle_id, "acct_7")
    session.commit()
    types = events_of(app, "acct_7", types=True)
    assert types[0] == "subscription.created"
    assert types[-1] == "entitlements.changed"
    assert entitlement_changes(app, "acct_7")[0]["cause"] == "operator"


def test_an_accounts_events_are_numbered_one_after_the_other(app, session):
    plan = make_plan(session)
    make_account(session, "acct_1")
    first = make_subscription(session, account_id="acct_1", status="active", plan_id=plan.id)
    first.quantity = 3
    session.commit()
    first.status = "paused"
    session.commit()
    sequences = session.scalars(
        select(OutboundEvent.sequence)
        .where(OutboundEvent.account_id == "acct_1")
        .order_by(OutboundEvent.position)
    ).all()
    assert sequences == list(range(1, len(sequences) + 1))
    assert session.get(EventAccount, "acct_1").sequence == len(sequences)
    assert events_of(app, "acct_1", types=True) == [
        "subscription.created",
        "subscription.activated",
        "entitlements.changed",
        "subscription.updated",
        "entitlements.changed",
        "subscription.paused",
        "entitlements.changed",
    ]


# Every path that changes a subscription tells the same story.

SUB = "sub_01hp463gxfvndqjjyqn2n7tkth"


def test_a_users_cancellation_tells_its_scheduled_change_and_its_cause(
    client, session, paddle, app
):
    make_active_subscription(session)
    before = len(events_of(app, "acct_1"))
    paddle.post(
        f"{PADDLE_BASE}/subscriptions/{SUB}/cancel",
        json=paddle_subscription(
            scheduled_change=SCHEDULED_CANCEL, updated_at="2024-02-09T00:00:00Z"
        ),
    )
    cancel = client.post("/api/v1/subscription/cancel", json={}, headers=auth("acct_1"))
    assert cancel.status_code == 200, cancel.json
    (told,) = events_of(app, "acct_1")[before:]
    assert told["type"] == "subscription.updated"
    assert told["data"]["subscription"]["scheduled_change"]["action"] == "cancel"
    previous = told["data"]["previous"]  # what changed, as it was (Paddle's answer fills more)
    assert previous["scheduled_action"] is None and previous["scheduled_effective_at"] is None
    assert "status" not in previous and "plan" not in previous


def test_a_users_immediate_cancellation_takes_the_access_with_it(client, session, paddle, app):
    make_active_subscription(session)
    paddle.post(
        f"{PADDLE_BASE}/subscriptions/{SUB}/cancel",
        json=canceled_now(),
    )
    client.post(
        "/api/v1/subscription/cancel",
        json={"effective_from": "immediately"},
        headers=auth("acct_1"),
    )
    assert events_of(app, "acct_1", types=True)[-2:] == [
        "subscription.canceled",
        "entitlements.changed",
    ]
    change = entitlement_changes(app, "acct_1")[-1]
    assert (change["after"]["access"], change["cause"]) == (False, "api")


def test_a_reconcile_repair_tells_what_it_repaired(session, paddle, app):
    make_active_subscription(session)
    serve_subscription_list(
        paddle, [paddle_entity(SUB, status="paused", updated_at="2030-01-01T00:00:00Z")]
    )
    client = Client("pdl_sdbx_apikey_test", base_url=PADDLE_BASE, sleep=lambda _s: None)
    run = Reconciler(session, client).run()
    assert run.drift_fixed == 1
    assert events_of(app, "acct_1", types=True)[-2:] == [
        "subscription.paused",
        "entitlements.changed",
    ]
    assert entitlement_changes(app, "acct_1")[-1]["cause"] == "reconcile"


def test_a_dry_run_reconcile_tells_nothing(session, paddle, app):
    make_active_subscription(session)
    count = len(events_of(app))
    serve_subscription_list(
        paddle, [paddle_entity(SUB, status="paused", updated_at="2030-01-01T00:00:00Z")]
    )
    client = Client("pdl_sdbx_apikey_test", base_url=PADDLE_BASE, sleep=lambda _s: None)
    Reconciler(session, client, dry_run=True).run()
    assert len(events_of(app)) == count
