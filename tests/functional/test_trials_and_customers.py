"""Trials (trialing with its end shown, access while it lasts, `activate` ends it now) and
the customer's email and name kept current from `customer.*` events."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from billing_app.models import Account, Subscription
from tests.helpers.config import PADDLE_BASE
from tests.helpers.payloads import body_of, envelope
from tests.helpers.rows import (
    SAMPLE_CUSTOMER,
    SAMPLE_SUBSCRIPTION,
    make_account,
    make_active_subscription,
    make_plan,
)
from tests.helpers.samples import sample
from tests.helpers.tokens import auth
from tests.helpers.webhooks import deliver

TRIAL_CUSTOMER = "ctm_01hv6y1jedq4p1n0yqn5ba3ky4"  # the samples' customer


def test_a_trial_is_shown_with_its_end_and_grants_access(client, session):
    make_plan(session, price_id="pri_01gsz8x8sawmvhz1pv30nge1ke")
    make_account(session, "acct_1", paddle_customer_id=TRIAL_CUSTOMER)
    trialing = sample("webhook-subscription.trialing.json")["data"]
    trialing["custom_data"] = None
    trialing["customer_id"] = TRIAL_CUSTOMER
    assert deliver(client, body_of(envelope("subscription.trialing", trialing))) == "processed"

    shown = client.get("/api/v1/subscription", headers=auth("acct_1")).json
    assert shown["status"] == "trialing"
    assert shown["trial_ends_at"] == "2024-04-26T11:30:29.637000+00:00"
    row = session.scalars(select(Subscription)).one()
    assert row.trial_ends_at == datetime(2024, 4, 26, 11, 30, 29, 637000, tzinfo=UTC)


def test_activate_ends_the_trial_at_paddle_and_stores_its_answer(client, session, paddle):
    make_active_subscription(session, status="trialing")
    answer = sample("api-subscription-get.json")
    answer["data"]["updated_at"] = "2026-06-01T00:00:00Z"
    paddle.post(f"{PADDLE_BASE}/subscriptions/{SAMPLE_SUBSCRIPTION}/activate", json=answer)

    response = client.post("/api/v1/subscription/activate", headers=auth("acct_1"))
    assert response.status_code == 200, response.json
    assert response.json["status"] == "active"
    session.expire_all()
    assert session.scalars(select(Subscription.status)).one() == "active"


def test_activate_is_a_409_unless_trialing_and_never_asks_paddle(client, session, paddle):
    make_active_subscription(session)
    response = client.post("/api/v1/subscription/activate", headers=auth("acct_1"))
    assert (response.status_code, response.json["error"]) == (409, "invalid_state")
    assert "trialing" in response.json["message"]
    assert not paddle.calls


def customer_event(event_type: str, updated_at: str, **changes):
    data = sample("webhook-customer.updated.json")["data"]
    data.update(id=SAMPLE_CUSTOMER, updated_at=updated_at, **changes)
    return envelope(event_type, data)


def test_a_customers_new_email_shows_in_the_subscription_and_an_older_one_does_not_undo_it(
    client, session
):
    make_active_subscription(session)  # acct_1 owns SAMPLE_CUSTOMER; no custom_data needed
    newer = customer_event(
        "customer.updated", "2026-03-02T00:00:00Z", email="jo.new@example.com", name="Jo New"
    )
    older = customer_event(
        "customer.updated", "2026-03-01T00:00:00Z", email="jo.old@example.com", name="Jo Old"
    )
    assert deliver(client, body_of(newer)) == "processed"
    assert deliver(client, body_of(older)) == "processed"

    customer = client.get("/api/v1/subscription", headers=auth("acct_1")).json["customer"]
    assert customer == {"id": SAMPLE_CUSTOMER, "email": "jo.new@example.com", "name": "Jo New"}
    account = session.get(Account, "acct_1")
    assert account.customer_updated_at == datetime(2026, 3, 2, tzinfo=UTC)


def test_a_customer_no_account_owns_changes_nothing(client, session):
    make_account(session, "acct_1")
    stranger = customer_event("customer.updated", "2026-03-02T00:00:00Z", email="x@example.com")
    assert deliver(client, body_of(stranger)) == "ignored"
    assert session.get(Account, "acct_1").email == "acct_1@example.com"
