"""Add-ons through the simulated Paddle: added and removed with their features, limits and
seats appearing and going, refused where they may not go, removed at the period's end, and
read the same when made in Paddle's dashboard."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from billing_app import jobs
from billing_app.models import Subscription, Transaction
from billing_app.services.plans import catalogue as plan_service
from paddle_client.timestamps import parse_timestamp
from tests.helpers.stack import SIM_KEY, Api, Sim, read, status_becomes

STARTER = "pri_01hsim0startermonth000000"  # 1900 a month
TEAM = "pri_01hsim0teammonth000000000"  # 4900 a month
STORAGE = "pri_01hsim0storagemonth00000"  # 500 a month
CATALOGUE = [
    {"slug": "starter", "name": "Starter", "price_id": STARTER, "limits": {"storage_gb": 5}},
    {
        "slug": "team",
        "name": "Team",
        "price_id": TEAM,
        "features": ["sso"],
        "limits": {"storage_gb": 50, "audit_log": False},
    },
    {
        "type": "addon",
        "slug": "storage",
        "name": "Extra storage",
        "price_id": STORAGE,
        "features": ["extra-storage"],
        "limits": {"storage_gb": 100, "audit_log": True},
        "seats": 2,
        "quantity": True,
        "plans": ["team"],
    },
]


@pytest.fixture
def runner(e2e, make_app):
    return make_app(PADDLE_API_BASE_URL=e2e.sim, PADDLE_API_KEY=SIM_KEY)


def subscribed(e2e, session, plan="team"):
    plan_service.import_plans(session, CATALOGUE)
    session.commit()
    api, sim = Api(e2e), Sim(e2e)
    started = api.post("/checkout", {"plan": plan})
    sim.post(f"/transactions/{started.json()['transaction_id']}/complete")
    assert status_becomes(api, "active")
    sim.settle()
    return api, sim


def paddle_items(sim, session):
    (row,) = read(session, select(Subscription))
    entity = sim.paddle("GET", f"/subscriptions/{row.paddle_subscription_id}").json()["data"]
    return sorted((item["price"]["id"], item["quantity"]) for item in entity["items"])


def test_an_add_on_added_and_removed_brings_and_takes_its_grants(e2e, session):
    api, sim = subscribed(e2e, session)
    before = api.get("/entitlements").json()
    assert (before["limits"]["storage_gb"], before["seats"]) == (50, 1)

    added = api.act("/subscription/addons", {"addon": "storage", "quantity": 2})
    assert added.status_code == 200, added.text
    assert added.json()["addons"] == [
        {"slug": "storage", "name": "Extra storage", "quantity": 2, "remove_at": None}
    ]
    assert paddle_items(sim, session) == sorted([(TEAM, 1), (STORAGE, 2)])
    sim.settle()
    with_storage = api.get("/entitlements").json()
    assert "extra-storage" in with_storage["features"]
    assert with_storage["limits"]["storage_gb"] == 250  # 50 + 2 x 100
    assert with_storage["limits"]["audit_log"] is True
    assert with_storage["seats"] == 5  # 1 + 2 x 2
    prorated = read(session, select(Transaction).where(Transaction.origin == "subscription_update"))
    assert [row.total for row in prorated] == [1000]  # the two units, billed at once

    removed = api.delete("/subscription/addons/storage")
    assert removed.status_code == 200, removed.text
    assert removed.json()["addons"] == []
    sim.settle()
    after = api.get("/entitlements").json()
    assert "extra-storage" not in after["features"]
    assert (after["limits"]["storage_gb"], after["seats"]) == (50, 1)


def test_an_add_on_refused_where_it_may_not_go_and_a_change_that_would_strand_it(e2e, session):
    api, sim = subscribed(e2e, session)
    api.act("/subscription/addons", {"addon": "storage", "quantity": 1})
    sim.settle()
    stranded = api.post("/subscription/change", {"plan": "starter"})
    assert (stranded.status_code, stranded.json()["error"]) == (409, "addon_not_allowed")
    assert stranded.json()["addons"] == ["storage"]
    assert paddle_items(sim, session) == sorted([(TEAM, 1), (STORAGE, 1)])  # nothing sent
    many = api.post("/subscription/addons", {"addon": "nope"})
    assert (many.status_code, many.json()["error"]) == (404, "addon_not_found")


def test_an_add_on_is_refused_on_a_plan_it_may_not_join(e2e, session):
    api, _sim = subscribed(e2e, session, plan="starter")
    refused = api.act("/subscription/addons", {"addon": "storage"})
    assert (refused.status_code, refused.json()["error"]) == (409, "addon_not_allowed")


def test_an_add_on_removed_at_period_end_stays_until_the_renewal(e2e, session, runner):
    api, sim = subscribed(e2e, session)
    api.act("/subscription/addons", {"addon": "storage", "quantity": 1})
    sim.settle()
    renewal = parse_timestamp(api.get("/subscription").json()["next_billed_at"])
    later = api.delete("/subscription/addons/storage?effective_from=next_billing_period")
    assert later.json()["addons"][0]["remove_at"] == later.json()["next_billed_at"]
    assert "extra-storage" in api.get("/entitlements").json()["features"]

    now = parse_timestamp(sim.get_clock())
    sim.post("/clock/advance", {"seconds": (renewal - timedelta(minutes=40) - now).total_seconds()})
    outcome = jobs.carry_out_scheduled_changes(runner, now=parse_timestamp(sim.get_clock()))
    assert outcome == {"done": 1}
    assert paddle_items(sim, session) == [(TEAM, 1)]
    sim.post("/clock/advance", {"seconds": 45 * 60})
    sim.settle()
    (renewed,) = read(
        session, select(Transaction).where(Transaction.origin == "subscription_recurring")
    )
    assert renewed.total == 4900  # the plan alone


def test_an_add_on_made_in_paddles_dashboard_is_read_the_same(e2e, session):
    api, sim = subscribed(e2e, session)
    (row,) = read(session, select(Subscription))
    made = sim.paddle(
        "PATCH",
        f"/subscriptions/{row.paddle_subscription_id}",
        {
            "items": [{"price_id": TEAM, "quantity": 1}, {"price_id": STORAGE, "quantity": 3}],
            "proration_billing_mode": "do_not_bill",
        },
    )
    assert made.status_code == 200, made.text
    sim.settle()
    assert api.get("/entitlements").json()["limits"]["storage_gb"] == 350
    assert api.get("/subscription").json()["addons"][0]["quantity"] == 3
