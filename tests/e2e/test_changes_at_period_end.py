"""A downgrade at the end of the period, through the simulated Paddle: what was paid for is
kept until the period ends, the renewal bills the new plan in full with no proration, and
the scheduler's run survives being late across the renewal or killed halfway.

The run is called in this process with the simulator's clock as its `now` (the service's
own clock does not move with the simulator's)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from billing_app import jobs
from billing_app.models import Subscription, SubscriptionChange, Transaction
from billing_app.services.plans import catalogue as plan_service
from paddle_client.timestamps import parse_timestamp
from tests.helpers.events import entitlement_changes
from tests.helpers.stack import SIM_KEY, Api, Sim, read, status_becomes

STARTER = "pri_01hsim0startermonth000000"  # 1900 a month
TEAM = "pri_01hsim0teammonth000000000"  # 4900 a month
CATALOGUE = [
    {
        "slug": "starter",
        "name": "Starter",
        "price_id": STARTER,
        "amount": "1900",
        "currency": "USD",
        "interval": "month",
        "features": ["projects"],
    },
    {
        "slug": "team",
        "name": "Team",
        "price_id": TEAM,
        "amount": "4900",
        "currency": "USD",
        "interval": "month",
        "features": ["projects", "sso"],
    },
]


@pytest.fixture
def runner(e2e, make_app):
    """An app of this process that talks to the simulator, to run the scheduler's job."""
    return make_app(PADDLE_API_BASE_URL=e2e.sim, PADDLE_API_KEY=SIM_KEY)


def sim_now(sim) -> datetime:
    return parse_timestamp(sim.get_clock())


def on_team(e2e, session):
    plan_service.import_plans(session, CATALOGUE)
    session.commit()
    api, sim = Api(e2e), Sim(e2e)
    started = api.post("/checkout", {"plan": "team"})
    sim.post(f"/transactions/{started.json()['transaction_id']}/complete")
    assert status_becomes(api, "active")
    sim.settle()
    return api, sim


def downgrade(api):
    asked = api.act(
        "/subscription/change", {"plan": "starter", "effective_from": "next_billing_period"}
    )
    assert asked.status_code == 200, asked.text
    return asked.json()


def renewal_of(api) -> datetime:
    return parse_timestamp(api.get("/subscription").json()["next_billed_at"])


def advance_to(sim, moment: datetime) -> None:
    sim.post("/clock/advance", {"seconds": (moment - sim_now(sim)).total_seconds()})


def paddle_items(sim, subscription_id):
    entity = sim.paddle("GET", f"/subscriptions/{subscription_id}").json()["data"]
    return [(item["price"]["id"], item["quantity"]) for item in entity["items"]]


def the_change(session) -> SubscriptionChange:
    (change,) = read(session, select(SubscriptionChange))
    return change


def test_a_downgrade_keeps_what_was_paid_for_until_the_renewal_bills_the_new_plan(
    e2e, session, runner
):
    api, sim = on_team(e2e, session)
    renewal = renewal_of(api)
    shown = downgrade(api)
    assert shown["plan"] == "team"
    assert shown["scheduled_change"] == {
        "action": "change",
        "effective_at": shown["next_billed_at"],
        "resume_at": None,
        "plan": "starter",
        "quantity": 1,
    }
    assert "sso" in api.get("/entitlements").json()["features"]
    assert jobs.carry_out_scheduled_changes(runner, now=sim_now(sim)) == {}  # not yet

    reconciled = e2e.cli("billing", "reconcile")
    assert "drift repaired     0" in reconciled.stdout, reconciled.stdout  # no drift

    advance_to(sim, renewal - timedelta(minutes=40))
    assert jobs.carry_out_scheduled_changes(runner, now=sim_now(sim)) == {"done": 1}
    sim.settle()
    subscription = api.get("/subscription").json()
    assert subscription["plan"] == "team"  # held: Paddle has the new items already
    assert subscription["scheduled_change"]["plan"] == "starter"
    assert "sso" in api.get("/entitlements").json()["features"]
    assert the_change(session).proration_billing_mode == "do_not_bill"
    charged_early = read(
        session, select(Transaction).where(Transaction.origin == "subscription_update")
    )
    assert charged_early == []  # no proration charge or credit

    advance_to(sim, renewal + timedelta(minutes=1))
    sim.settle()
    (renewed,) = read(
        session, select(Transaction).where(Transaction.origin == "subscription_recurring")
    )
    assert (renewed.total, renewed.items[0]["price_id"]) == (1900, STARTER)
    after = api.get("/subscription").json()
    assert (after["plan"], after["scheduled_change"]) == ("starter", None)
    assert "sso" not in api.get("/entitlements").json()["features"]
    (last,) = entitlement_changes(runner, "acct_e2e")[-1:]
    assert ("sso" in last["before"]["features"], "sso" in last["after"]["features"]) == (
        True,
        False,
    )


def test_a_run_killed_across_the_renewal_still_changes_once_without_a_charge(e2e, session, runner):
    api, sim = on_team(e2e, session)
    renewal = renewal_of(api)
    downgrade(api)
    advance_to(sim, renewal + timedelta(minutes=5))  # the scheduler was down meanwhile
    sim.settle()
    change = the_change(session)
    session.execute(  # killed after taking it, before Paddle was asked
        SubscriptionChange.__table__.update().values(status="sending", attempts=1)
    )
    session.commit()
    assert change.status == "scheduled"

    assert jobs.carry_out_scheduled_changes(runner, now=sim_now(sim)) == {"done": 1}
    assert jobs.carry_out_scheduled_changes(runner, now=sim_now(sim)) == {}  # never twice
    sim.settle()
    change = the_change(session)
    assert (change.status, change.attempts) == ("done", 2)
    assert change.proration_billing_mode == "prorated_immediately"  # a credit, no charge
    charges = read(session, select(Transaction).where(Transaction.origin == "subscription_update"))
    assert charges == []
    assert api.get("/subscription").json()["plan"] == "starter"
    assert "sso" not in api.get("/entitlements").json()["features"]

    advance_to(sim, renewal_of(api) + timedelta(minutes=1))
    sim.settle()
    renewals = read(
        session,
        select(Transaction)
        .where(Transaction.origin == "subscription_recurring")
        .order_by(Transaction.paddle_created_at),
    )
    assert [row.total for row in renewals] == [4900, 1900]


def test_a_change_paddle_holds_already_is_recorded_not_sent_again(e2e, session, runner):
    api, sim = on_team(e2e, session)
    renewal = renewal_of(api)
    downgrade(api)
    advance_to(sim, renewal - timedelta(minutes=40))
    (subscription,) = read(session, select(Subscription))
    paddle_id = subscription.paddle_subscription_id
    # The run sent it and was killed before it recorded Paddle's answer.
    sent = sim.paddle(
        "PATCH",
        f"/subscriptions/{paddle_id}",
        {"items": [{"price_id": STARTER, "quantity": 1}], "proration_billing_mode": "do_not_bill"},
    )
    assert sent.status_code == 200, sent.text
    session.execute(SubscriptionChange.__table__.update().values(status="sending", attempts=1))
    session.commit()
    updates_before = sim.count_events("subscription.updated")

    assert jobs.carry_out_scheduled_changes(runner, now=sim_now(sim)) == {"done": 1}
    assert sim.count_events("subscription.updated") == updates_before
    assert paddle_items(sim, paddle_id) == [(STARTER, 1)]
    sim.settle()
    assert "sso" in api.get("/entitlements").json()["features"]  # held to the renewal


def test_resume_withdraws_a_waiting_change_and_a_cancellation_ends_one(e2e, session, runner):
    api, sim = on_team(e2e, session)
    downgrade(api)
    resumed = api.post("/subscription/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["scheduled_change"] is None
    downgrade(api)
    canceled = api.post("/subscription/cancel", {"effective_from": "next_billing_period"})
    assert canceled.json()["scheduled_change"]["action"] == "cancel"
    statuses = sorted(change.status for change in read(session, select(SubscriptionChange)))
    assert statuses == ["withdrawn", "withdrawn"]
    advance_to(sim, renewal_of(api) - timedelta(minutes=40))
    assert jobs.carry_out_scheduled_changes(runner, now=sim_now(sim)) == {}
