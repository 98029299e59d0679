"""The whole lifecycle through real processes: the frontend's calls, the simulated Paddle,
its webhooks, time travel, faults, and the reconciliation repairing lost webhooks."""

from __future__ import annotations

import requests
from sqlalchemy import select

from billing_app.models import Subscription, WebhookEvent
from tests.helpers.rows import make_plan
from tests.helpers.stack import DAY, STARTER, Api, Sim, read, status_becomes
from tests.helpers.waiting import eventually


def subscribe(api, sim, session):
    make_plan(session, slug="starter", price_id=STARTER, amount="1900", features=["projects"])
    plans = api.get("/plans").json()
    assert [plan["slug"] for plan in plans] == ["starter"]
    started = api.post("/checkout", {"plan": "starter"})
    assert started.status_code == 201, started.text
    checkout = started.json()
    page = requests.get(checkout["checkout_url"], timeout=5)
    assert "Pay" in page.text
    sim.post(f"/transactions/{checkout['transaction_id']}/complete")
    return checkout


def test_checkout_pause_resume_cancel_and_time_travel(e2e, session):
    api, sim = Api(e2e), Sim(e2e)
    subscribe(api, sim, session)
    assert status_becomes(api, "active")
    assert api.get("/entitlements").json() == {
        "access": True,
        "plan": "starter",
        "status": "active",
        "features": ["projects"],
        "limits": {"projects": 3},
        "seats": 1,
        "meters": [],
        "grants": [],
        "recheck_at": None,
    }

    paused = api.act("/subscription/pause", {"effective_from": "next_billing_period"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["scheduled_change"]["action"] == "pause"
    resumed = api.post("/subscription/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["scheduled_change"] is None

    canceled = api.post("/subscription/cancel", {"effective_from": "next_billing_period"}).json()
    assert canceled["scheduled_change"]["action"] == "cancel" and canceled["access"] is True
    sim.settle()
    assert api.get("/subscription").json()["scheduled_change"]["action"] == "cancel"

    sim.post("/clock/advance", {"seconds": 32 * DAY})
    assert status_becomes(api, "canceled")
    assert api.get("/entitlements").json()["access"] is False
    assert api.post("/subscription/resume").json()["error"] == "subscription_canceled"


def test_a_failed_renewal_goes_past_due_and_recovers(e2e, session):
    api, sim = Api(e2e), Sim(e2e)
    subscribe(api, sim, session)
    assert status_becomes(api, "active")
    # Active once the checkout's transaction is applied; Paddle's id comes with its
    # subscription's own event, which may be applied a moment later.
    paddle_id = eventually(lambda: read(session, select(Subscription.paddle_subscription_id))[0])
    assert paddle_id

    sim.post(f"/subscriptions/{paddle_id}/fail-next-renewal")
    sim.post("/clock/advance", {"seconds": 31 * DAY})
    assert status_becomes(api, "past_due")
    assert api.get("/entitlements").json()["access"] is True  # within the grace period

    update = api.post("/subscription/payment-method").json()
    sim.post(f"/transactions/{update['transaction_id']}/complete")
    assert status_becomes(api, "active")


def test_duplicate_and_reordered_deliveries_end_in_the_right_state(e2e, session):
    api, sim = Api(e2e), Sim(e2e)
    sim.post("/faults", {"duplicate": True, "reverse_next": 6})
    subscribe(api, sim, session)
    sim.post("/deliveries/release")
    assert status_becomes(api, "active")
    sim.settle()
    ledger = read(session, select(WebhookEvent))
    assert ledger and all(event.attempts == 1 for event in ledger)  # none applied twice
    assert any(event.deliveries == 2 for event in ledger)
    (row,) = read(session, select(Subscription))
    assert (row.status, row.account_id, row.paddle_subscription_id is not None) == (
        "active",
        "acct_e2e",
        True,
    )


def test_lost_webhooks_are_repaired_by_reconcile(e2e, session):
    api, sim = Api(e2e), Sim(e2e)
    sim.post("/faults", {"drop_next": 100})
    subscribe(api, sim, session)
    sim.settle()
    assert api.get("/subscription").json()["status"] == "pending"  # Paddle's news never came

    result = e2e.cli("billing", "reconcile")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "drift repaired     1" in result.stdout  # our stuck checkout, not "missing"
    assert "missing locally    0" in result.stdout
    assert result.stdout.count("seen 1,") == 1  # the last progress line prints once
    subscription = api.get("/subscription").json()
    assert subscription["status"] == "active"
    assert subscription["plan"] == "starter"
    assert api.get("/entitlements").json()["access"] is True
