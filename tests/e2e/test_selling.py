"""Selling through the simulated Paddle: a pricing page per country and currency, with and
without a discount code; checkouts with a valid and an expired code; a subscription
discounted for two periods."""

from __future__ import annotations

from sqlalchemy import select

from billing_app.models import Transaction
from billing_app.services.plans import catalogue as plan_service
from tests.helpers.stack import DAY, Api, Sim, read, status_becomes

STARTER = "pri_01hsim0startermonth000000"  # 1900 USD; 1500 GBP in GB, 1800 EUR in DE/FR/NL
TEAM = "pri_01hsim0teammonth000000000"  # 4900 USD
CATALOGUE = [
    {"slug": "starter", "name": "Starter", "price_id": STARTER, "features": ["projects"]},
    {"slug": "team", "name": "Team", "price_id": TEAM, "features": ["projects", "sso"]},
]


def discount(sim, **fields):
    body = {"description": "Test", "type": "percentage", "amount": "25", **fields}
    made = sim.paddle("POST", "/discounts", body)
    assert made.status_code == 201, made.text
    return made.json()["data"]


def import_catalogue(session):
    plan_service.import_plans(session, CATALOGUE)
    session.commit()


def totals(page):
    return {item["slug"]: item["unit_totals"]["total"] for item in page["items"]}


def test_a_pricing_page_for_two_countries_in_two_currencies(e2e, session):
    import_catalogue(session)
    api, sim = Api(e2e), Sim(e2e)
    discount(sim, code="SPRING25", recur=True)

    uk = api.get("/pricing?country=GB").json()
    assert (uk["currency"], totals(uk)) == ("GBP", {"starter": "1500", "team": "3900"})
    assert all(item["tax_included"] for item in uk["items"])
    us = api.get("/pricing?country=US&currency=USD").json()
    assert (us["currency"], totals(us)) == ("USD", {"starter": "1900", "team": "4900"})

    discounted = api.get("/pricing?country=GB&discount_code=spring25").json()
    assert totals(discounted) == {"starter": "1125", "team": "2925"}
    assert discounted["discount"]["code"] == "SPRING25"
    refused = api.get("/pricing?country=GB&discount_code=NOPE")
    assert (refused.status_code, refused.json()["error"]) == (422, "discount_invalid")


def test_a_checkout_with_a_valid_code_is_discounted_and_an_expired_one_makes_nothing(e2e, session):
    import_catalogue(session)
    api, sim = Api(e2e), Sim(e2e)
    discount(sim, code="OLD", expires_at="2020-01-01T00:00:00Z")
    made_before = len(sim.paddle("GET", "/transactions").json()["data"])
    expired = api.post("/checkout", {"plan": "starter", "discount_code": "old"})
    assert (expired.status_code, expired.json()["error"]) == (422, "discount_invalid")
    assert len(sim.paddle("GET", "/transactions").json()["data"]) == made_before

    code = discount(sim, code="WELCOME", recur=True, maximum_recurring_intervals=2)
    started = api.post("/checkout", {"plan": "starter", "discount_code": "welcome"})
    assert started.status_code == 201, started.text
    transaction_id = started.json()["transaction_id"]
    at_paddle = sim.paddle("GET", f"/transactions/{transaction_id}").json()["data"]
    assert at_paddle["discount_id"] == code["id"]
    assert at_paddle["details"]["totals"]["grand_total"] == "1425"

    sim.post(f"/transactions/{transaction_id}/complete")
    assert status_becomes(api, "active")
    sim.settle()
    shown = api.get("/subscription").json()
    assert shown["discount"]["id"] == code["id"]
    assert shown["discount"]["ends_at"] is not None
    (paid,) = [t for t in api.get("/transactions").json()["data"] if t["id"] == transaction_id]
    assert (paid["discount"], paid["discount_id"], paid["total"]) == ("475", code["id"], "1425")

    sim.post("/clock/advance", {"seconds": 31 * DAY})  # the second discounted period
    sim.post("/clock/advance", {"seconds": 31 * DAY})  # then full price
    sim.settle()
    renewals = read(
        session,
        select(Transaction)
        .where(Transaction.origin == "subscription_recurring")
        .order_by(Transaction.paddle_created_at),
    )
    assert [(row.discount, row.total) for row in renewals] == [(475, 1425), (0, 1900)]


def test_a_recurring_code_applied_to_a_subscription_discounts_its_renewals(e2e, session):
    import_catalogue(session)
    api, sim = Api(e2e), Sim(e2e)
    started = api.post("/checkout", {"plan": "team"})
    sim.post(f"/transactions/{started.json()['transaction_id']}/complete")
    assert status_becomes(api, "active")
    discount(sim, code="ONCE")
    refused = api.act("/subscription/discount", {"code": "once"})
    assert (refused.status_code, refused.json()["error"]) == (422, "discount_invalid")
    assert "one payment only" in refused.json()["message"]

    loyal = discount(sim, code="LOYAL", recur=True)
    applied = api.act("/subscription/discount", {"code": "loyal"})
    assert applied.status_code == 200, applied.text
    assert applied.json()["discount"]["id"] == loyal["id"]
    sim.post("/clock/advance", {"seconds": 31 * DAY})
    sim.settle()
    (renewal,) = read(
        session, select(Transaction).where(Transaction.origin == "subscription_recurring")
    )
    assert (renewal.discount, renewal.total) == (1225, 3675)
