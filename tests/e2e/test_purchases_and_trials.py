"""One-time purchases, trials and billing history through the simulated Paddle: buy a
product twice, subscribe with a trial and pass its end, fetch invoices."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from billing_app.services.plans import catalogue as plan_service
from tests.helpers.stack import DAY, Api, Sim, status_becomes
from tests.helpers.waiting import eventually

ONBOARDING = "pri_01hsim0onboarding0000000"  # the simulator's one-time price (9900)
PRO_TRIAL = "pri_01hsim0protrial000000000"  # its 14-day-trial price (2900 a month)
CATALOGUE = [
    {
        "slug": "pro",
        "name": "Pro",
        "price_id": PRO_TRIAL,
        "amount": "2900",
        "currency": "USD",
        "interval": "month",
        "features": ["projects"],
    },
    {
        "type": "one_time",
        "slug": "onboarding",
        "name": "Onboarding",
        "price_id": ONBOARDING,
        "amount": "9900",
        "currency": "USD",
        "grants": {"features": ["onboarding-call"]},
    },
]


def history(api):
    return api.get("/transactions").json()["data"]


def buy(api, sim, **body):
    started = api.post("/checkout", body)
    assert started.status_code == 201, started.text
    sim.post(f"/transactions/{started.json()['transaction_id']}/complete")
    return started.json()["transaction_id"]


def test_buy_twice_subscribe_with_a_trial_and_read_the_history(e2e, session):
    plan_service.import_plans(session, CATALOGUE)
    session.commit()
    api, sim = Api(e2e), Sim(e2e)
    assert [item["slug"] for item in api.get("/catalog?type=one_time").json()] == ["onboarding"]

    first = buy(api, sim, product="onboarding")
    sim.settle()
    second = buy(api, sim, product="onboarding")  # bought again: allowed, a new transaction
    assert second != first
    sim.settle()
    grants = api.get("/entitlements").json()["grants"]
    assert [grant["product"] for grant in grants] == ["onboarding", "onboarding"]
    assert "onboarding-call" in api.get("/entitlements").json()["features"]

    trial_checkout = buy(api, sim, plan="pro")
    assert status_becomes(api, "trialing")
    shown = api.get("/subscription").json()
    assert shown["trial_ends_at"] and shown["access"] is True
    sim.settle()

    completed = {t["id"]: t for t in history(api)}
    assert completed[first]["total"] == "9900" and completed[first]["invoice_available"]
    link = api.get(f"/transactions/{first}/invoice")
    assert link.status_code == 200, link.text
    pdf = requests.get(f"{e2e.sim}{urlsplit(link.json()['url']).path}", timeout=10)
    assert pdf.content.startswith(b"%PDF")
    zero = api.get(f"/transactions/{trial_checkout}/invoice")  # a trial's checkout is free
    assert (zero.status_code, zero.json()["error"]) == (409, "invoice_unavailable")

    sim.post("/clock/advance", {"seconds": 15 * DAY})
    assert status_becomes(api, "active")
    sim.settle()

    def renewal_in_history():
        return [
            t
            for t in history(api)
            if t["origin"] == "subscription_recurring" and t["status"] == "completed"
        ]

    assert eventually(renewal_in_history)
    (renewal,) = renewal_in_history()
    assert renewal["total"] == "2900"


def test_a_purchase_whose_webhooks_were_lost_is_found_by_reconcile(e2e, session):
    plan_service.import_plans(session, CATALOGUE)
    session.commit()
    api, sim = Api(e2e), Sim(e2e)
    sim.post("/faults", {"drop_next": 100})
    bought = buy(api, sim, product="onboarding")
    sim.settle()
    assert api.get("/entitlements").json()["grants"] == []  # Paddle's news never came

    result = e2e.cli("billing", "reconcile")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "transactions       1 seen, 1 filled" in result.stdout
    entitlements = api.get("/entitlements").json()
    assert [grant["product"] for grant in entitlements["grants"]] == ["onboarding"]
    assert "onboarding-call" in entitlements["features"]
    assert [t["id"] for t in history(api)] == [bought]
