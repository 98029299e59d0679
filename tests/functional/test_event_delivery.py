"""Delivering events to the product's endpoints, to the Standard Webhooks spec: signed (and
verified here by the spec's own library), retried on its schedule, in order per account,
and endpoints that fail or are gone disabled."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from billing_app.models import EventDelivery, EventDeliveryAttempt, EventEndpoint, Plan
from billing_app.services.events import delivery, endpoints
from billing_app.worker import EventOutbox, Worker
from tests.helpers.events import events_of, send_due, time_passes
from tests.helpers.receiver import Receiver
from tests.helpers.rows import make_account, make_plan, make_subscription
from tests.helpers.tokens import service_auth


@pytest.fixture
def app(make_app):
    # The receiver listens on 127.0.0.1; the tests send (no worker thread of the app's own).
    app = make_app(EVENTS_ALLOW_PRIVATE_URLS=True, WEBHOOK_WORKER_IN_PROCESS=False)
    with app.app_context():
        yield app


@pytest.fixture
def receiver():
    with Receiver() as receiver:
        yield receiver


def add_endpoint(session, url, **options):
    endpoint, secret = endpoints.add_endpoint(session, url, allow_private=True, **options)
    session.commit()
    return endpoint, secret


def subscribe(session, account_id="acct_1"):
    """An account takes an active subscription: three events (created, activated, its
    entitlements changed)."""
    plan = session.scalars(select(Plan)).first() or make_plan(session)
    make_account(session, account_id)
    return make_subscription(session, account_id=account_id, status="active", plan_id=plan.id)


def test_a_delivery_is_signed_to_the_spec_and_verifies(app, session, receiver):
    _, secret = add_endpoint(session, receiver.url)
    subscribe(session)
    assert send_due(app) == {"delivered": 3}
    assert [event["type"] for event in receiver.events()] == [
        "subscription.created",
        "subscription.activated",
        "entitlements.changed",
    ]
    first = receiver.received[0]
    verified = Webhook(secret).verify(first.body, first.headers)
    assert verified["type"] == "subscription.created"
    assert verified["account_id"] == "acct_1" and verified["sequence"] == 1
    assert first.headers["webhook-id"] == verified["id"] == events_of(app)[0]["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoints.new_secret()).verify(first.body, first.headers)

    (attempt, *_) = session.scalars(select(EventDeliveryAttempt)).all()
    assert attempt.status_code == 200 and attempt.latency_ms >= 0
    statuses = session.scalars(select(EventDelivery.status)).all()
    assert statuses == ["delivered"] * 3


def test_during_a_rotation_both_secrets_verify(app, session, receiver):
    endpoint, old = add_endpoint(session, receiver.url)
    new = endpoints.rotate_secret(session, endpoint.id)
    session.commit()
    subscribe(session)
    send_due(app)
    received = receiver.received[0]
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(received.body, received.headers)["sequence"] == 1
    assert Webhook(new).verify(received.body, received.headers)["sequence"] == 1


def test_an_endpoint_takes_only_the_types_it_asked_for(app, session, receiver):
    add_endpoint(session, receiver.url, types=["entitlements.changed"])
    subscribe(session)
    send_due(app)
    assert [event["type"] for event in receiver.events()] == ["entitlements.changed"]
    with pytest.raises(endpoints.EndpointRefused, match="unknown event type"):
        endpoints.add_endpoint(
            session, receiver.url, types=["subscription.exploded"], allow_private=True
        )


def test_a_receiver_down_for_an_hour_gets_everything_in_order_once_back(app, session, receiver):
    add_endpoint(session, receiver.url)
    subscribe(session, "acct_1")
    subscribe(session, "acct_2")
    receiver.default = (503, {})
    for _ in range(4):  # an hour of retries: 5 s, 5 min, 30 min...
        send_due(app)
        time_passes(app)
    # Only each account's first event was tried: the later ones wait their turn.
    assert {event["sequence"] for event in receiver.events()} == {1}
    receiver.default = (200, {})
    while send_due(app):
        pass
    for account in ("acct_1", "acct_2"):
        sequences = [e["sequence"] for e in receiver.events() if e["account_id"] == account]
        # Retries repeat the first; after it, each arrives once, in order.
        assert sequences[-3:] == [1, 2, 3] and set(sequences[:-3]) == {1}
    assert set(session.scalars(select(EventDelivery.status))) == {"delivered"}


def test_retry_after_is_honoured_and_the_schedule_ends_in_failed(app, session, receiver):
    add_endpoint(session, receiver.url)
    subscribe(session)
    receiver.answer(429, **{"Retry-After": "7200"})
    assert send_due(app) == {"retrying": 1}
    first = session.scalars(select(EventDelivery).order_by(EventDelivery.sequence)).first()
    assert first.next_attempt_at - first.first_failed_at >= timedelta(seconds=7200)
    assert delivery.retry_delay(1) < timedelta(seconds=6)
    assert delivery.retry_delay(9) >= timedelta(hours=21)
    assert delivery.retry_delay(10) is None  # the tenth failure ends the schedule


def test_a_410_disables_the_endpoint_and_enabling_it_delivers_the_backlog(
    app, session, receiver, caplog
):
    endpoint, _ = add_endpoint(session, receiver.url)
    subscribe(session)
    receiver.answer(410)
    with caplog.at_level(logging.ERROR):
        assert send_due(app) == {"gone": 1}
    session.expire_all()
    assert session.get(EventEndpoint, endpoint.id).disabled_reason == (
        "the endpoint answered 410 Gone"
    )
    session.commit()  # (SQLite: a transaction holds the write lock the scrape's would wait on)
    assert "disabled" in caplog.text
    scraped = app.test_client().get("/metrics", headers=service_auth()).text
    assert "billing_event_endpoints_disabled 1.0" in scraped
    assert "billing_event_deliveries_pending 3.0" in scraped
    assert 'billing_event_deliveries_total{outcome="gone"}' in scraped
    subscribe(session, "acct_2")  # while disabled: kept for it
    assert send_due(app) == {}
    assert endpoints.enable_endpoint(session, endpoint.id) == 6
    session.commit()
    assert send_due(app) == {"delivered": 6}


def test_an_endpoint_failing_every_delivery_for_days_is_disabled(make_app, session, receiver):
    app = make_app(EVENTS_ALLOW_PRIVATE_URLS=True, EVENTS_DISABLE_AFTER_HOURS=0)
    with app.app_context():
        endpoint, _ = add_endpoint(session, receiver.url)
        subscribe(session)
        receiver.default = (500, {})
        send_due(app)
        session.expire_all()
        disabled = session.get(EventEndpoint, endpoint.id)
        assert disabled.disabled_at is not None
        assert disabled.disabled_reason.startswith("every delivery failed since")


def test_a_dead_workers_claims_run_out_and_another_delivers_with_the_same_id(
    app, session, receiver
):
    add_endpoint(session, receiver.url)
    subscribe(session)
    dead = Worker(app, queue=EventOutbox(app), name="killed")
    claimed = dead.queue.claim(session, "killed", 50, timedelta(seconds=30))
    assert len(claimed) == 1  # the first of the account's line only
    session.commit()
    assert send_due(app) == {}  # claimed by the dead worker: nobody takes it yet
    time_passes(app)
    assert send_due(app) == {"delivered": 3}
    ids = [received.headers["webhook-id"] for received in receiver.received]
    assert len(ids) == len(set(ids)) == 3


def test_private_addresses_are_refused_unless_allowed(session):
    for url in ("http://127.0.0.1/hook", "http://10.1.2.3/hook", "http://169.254.169.254/x"):
        with pytest.raises(endpoints.EndpointRefused, match="non-public address"):
            endpoints.add_endpoint(session, url)
    with pytest.raises(endpoints.EndpointRefused, match="not an http"):
        endpoints.add_endpoint(session, "ftp://example.com/x")
    endpoint, secret = endpoints.add_endpoint(session, "http://127.0.0.1/hook", allow_private=True)
    assert secret.startswith("whsec_") and endpoint.id.startswith("ep_")


def test_the_environments_endpoint_is_made_by_a_worker_and_signs_with_its_secret(
    make_app, session, receiver
):
    secret = endpoints.new_secret()
    settings = {"EVENTS_ALLOW_PRIVATE_URLS": True, "WEBHOOK_WORKER_IN_PROCESS": False}
    app = make_app(**settings, EVENTS_ENDPOINT_URL=receiver.url, EVENTS_ENDPOINT_SECRET=secret)
    with app.app_context():
        assert send_due(app) == {}  # the worker's first look makes the endpoint
        subscribe(session)
        assert send_due(app) == {"delivered": 3}
        received = receiver.received[0]
        assert Webhook(secret).verify(received.body, received.headers)["sequence"] == 1
    unset = make_app(**settings)  # a process without the variable leaves it be
    with unset.app_context():
        send_due(unset)
        (endpoint,) = session.scalars(select(EventEndpoint)).all()
        assert (endpoint.id, endpoint.disabled_at) == (endpoints.ENVIRONMENT_ENDPOINT, None)
        with pytest.raises(endpoints.EndpointRefused, match="EVENTS_ENDPOINT_SECRET"):
            endpoints.rotate_secret(session, endpoint.id)


def test_later_events_go_ahead_once_an_earlier_one_has_failed_past_the_hold(
    make_app, session, receiver
):
    app = make_app(
        EVENTS_ALLOW_PRIVATE_URLS=True, WEBHOOK_WORKER_IN_PROCESS=False, EVENTS_ORDER_HOLD_SECONDS=0
    )
    with app.app_context():
        add_endpoint(session, receiver.url)
        subscribe(session)
        receiver.answer(500)  # the first event is refused once
        send_due(app)
        assert [event["sequence"] for event in receiver.events()] == [1, 2, 3]
        time_passes(app)
        assert send_due(app) == {"delivered": 1}
        assert [event["sequence"] for event in receiver.events()] == [1, 2, 3, 1]
