"""Overage through the simulated Paddle: a closed period's overage is charged once, even when
Paddle's answer to the charge is lost, and the next renewal bills it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import select

from billing_app.models import Plan, Subscription, UsageCharge
from tests.helpers.rows import closed_period_counter, make_plan
from tests.helpers.stack import DAY, SIM_KEY, Api, Sim, read, status_becomes
from tests.helpers.waiting import eventually

STARTER = "pri_01hsim0startermonth000000"
ONE_TIME = "pri_01hsim0onboarding0000000"  # the simulator's one-time price
AUTH = {"Authorization": f"Bearer {SIM_KEY}"}


def test_a_lost_charge_answer_still_bills_the_overage_once_with_the_renewal(e2e, session):
    api, sim = Api(e2e), Sim(e2e)
    meters = {"api_calls": {"included": 100, "overage_price_id": ONE_TIME, "overage_unit": 10}}
    make_plan(session, slug="starter", price_id=STARTER, amount="1900", meters=meters)
    started = api.post("/checkout", {"plan": "starter"})
    assert started.status_code == 201, started.text
    sim.post(f"/transactions/{started.json()['transaction_id']}/complete")
    assert status_becomes(api, "active")
    used = api.get("/usage").json()["meters"]
    assert [(m["meter"], m["used"], m["included"]) for m in used] == [("api_calls", 0, 100)]

    # Plain values: an expired ORM attribute would open a transaction (on SQLite, the lock).
    (paddle_id,) = read(session, select(Subscription.paddle_subscription_id))
    (plan_id,) = read(session, select(Plan.id))
    ended = datetime.now(UTC) - timedelta(days=1)  # a period that closed yesterday, 125 used
    closed_period_counter(
        session,
        used=125,
        plan_id=plan_id,
        ended=ended,
        account_id="acct_e2e",
        paddle_subscription_id=paddle_id,
    )

    sim.post("/faults", {"lose_answer_next": 1})  # Paddle applies the charge; we hear a 503
    first = e2e.cli("billing", "usage", "bill")
    assert first.returncode == 0, first.stderr
    assert "sent to Paddle: submitting 1." in first.stdout, first.stdout
    second = e2e.cli("billing", "usage", "bill")
    assert "sent to Paddle: confirmed 1." in second.stdout, second.stdout + second.stderr
    charges = session.execute(
        select(UsageCharge.status, UsageCharge.quantity, UsageCharge.attempts)
    ).all()
    session.commit()
    assert [tuple(charge) for charge in charges] == [("confirmed", 3, 1)]

    upcoming = requests.get(
        f"{e2e.sim}/subscriptions/{paddle_id}?include=next_transaction",
        headers=AUTH,
        timeout=10,
    ).json()["data"]["next_transaction"]["details"]["line_items"]
    assert [line for line in upcoming if line["price_id"] == ONE_TIME] == [
        {"price_id": ONE_TIME, "quantity": 3}
    ]  # one charge, not two
    sim.post("/clock/advance", {"seconds": 32 * DAY})
    sim.settle()

    def renewal_items():
        renewals = requests.get(
            f"{e2e.sim}/transactions",
            params={"subscription_id": paddle_id, "origin": "subscription_recurring"},
            headers=AUTH,
            timeout=10,
        ).json()["data"]
        return renewals and [(i["price"]["id"], i["quantity"]) for i in renewals[-1]["items"]]

    assert eventually(renewal_items) == [(STARTER, 1), (ONE_TIME, 3)]
