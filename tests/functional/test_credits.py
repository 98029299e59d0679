"""One-time products that credit a meter: bought units raise the allowance of the billing
period they are bought in (included amount and hard limit), are not billed as overage,
and go when the purchase is refunded."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
import responses
from sqlalchemy import select

from billing_app import jobs
from billing_app.errors import ValidationFailed
from billing_app.models import Plan, Purchase, UsageCharge
from billing_app.services.plans import catalogue as plan_service
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.payloads import (
    adjustment,
    body_of,
    envelope,
    one_time_checkout,
    paddle_subscription,
)
from tests.helpers.rows import (
    SAMPLE_CUSTOMER,
    SAMPLE_SUBSCRIPTION,
    closed_period_counter,
    make_account,
    make_active_subscription,
)
from tests.helpers.tokens import auth
from tests.helpers.webhooks import deliver

SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
CUSTOMER = SAMPLE_CUSTOMER
TOP_UP = "pri_01topup1000calls000000000"
OVERAGE_PRICE = "pri_01overage"
CATALOGUE = [
    {
        "slug": "pro",
        "name": "Pro",
        "price_id": "pri_01pro",
        "amount": "9900",
        "currency": "USD",
        "interval": "month",
        "features": ["projects"],
        "meters": {
            "api_calls": {
                "included": 100,
                "hard_limit": 150,
                "overage_price_id": OVERAGE_PRICE,
                "overage_unit": 10,
            }
        },
    },
    {
        "type": "one_time",
        "slug": "top-up",
        "name": "1,000 more calls",
        "price_id": TOP_UP,
        "amount": "500",
        "currency": "USD",
        "grants": {"credits": {"api_calls": 1000}},
    },
]


@pytest.fixture
def subscribed(session):
    """acct_1 on pro, 3 days into a 30-day period, its Paddle customer known (the API
    sample's; the starter plan is there too)."""
    plan_service.import_plans(session, copy.deepcopy(CATALOGUE))
    pro = session.scalars(select(Plan).where(Plan.slug == "pro")).one()
    now = datetime.now(UTC)
    return make_active_subscription(
        session,
        "acct_1",
        plan_id=pro.id,
        price_id=pro.price_id,
        current_period_start=now - timedelta(days=3),
        current_period_end=now + timedelta(days=27),
    )


def buy_top_up(client, n: int, *, quantity: int = 1, captured_at: datetime | None = None):
    data = one_time_checkout(
        f"txn_{n:026d}",
        TOP_UP,
        CUSTOMER,
        captured_at or datetime.now(UTC) - timedelta(hours=1),
        total=str(500 * quantity),
        quantity=quantity,
    )
    assert deliver(client, body_of(envelope("transaction.completed", data))) == "processed"


def report(client, quantity: int, key: str):
    body = {"meter": "api_calls", "quantity": quantity, "idempotency_key": key}
    return client.post("/api/v1/accounts/acct_1/usage", json=body, headers=SERVICE)


def test_bought_credits_raise_this_periods_allowance_and_cap(client, session, subscribed):
    assert report(client, 140, "k1").status_code == 200
    assert report(client, 20, "k2").status_code == 402  # past the plan's 150

    buy_top_up(client, 1, quantity=2)  # two packs of 1,000 calls
    (purchase,) = session.scalars(select(Purchase)).all()
    assert purchase.credits == {"api_calls": 2000}

    admitted = report(client, 20, "k2")
    assert admitted.status_code == 200, admitted.json
    assert {key: admitted.json[key] for key in ("used", "included", "credits", "hard_limit")} == {
        "used": 160,
        "included": 2100,
        "credits": 2000,
        "hard_limit": 2150,
    }
    assert admitted.json["overage"] == 0 and admitted.json["remaining"] == 1990
    (figures,) = client.get("/api/v1/usage", headers=auth("acct_1")).json["meters"]
    assert (figures["credits"], figures["remaining"]) == (2000, 1990)


def test_credits_bought_in_an_earlier_period_do_not_carry_over(client, session, subscribed):
    buy_top_up(client, 1, captured_at=datetime.now(UTC) - timedelta(days=10))
    (figures,) = client.get("/api/v1/usage", headers=auth("acct_1")).json["meters"]
    assert (figures["included"], figures["credits"], figures["hard_limit"]) == (100, 0, 150)


def test_a_refunded_top_up_takes_its_credits_back(client, session, subscribed):
    buy_top_up(client, 1)
    refund = adjustment(f"adj_{1:026d}", f"txn_{1:026d}", CUSTOMER, total="500", type="full")
    assert deliver(client, body_of(envelope("adjustment.updated", refund))) == "processed"
    (figures,) = client.get("/api/v1/usage", headers=auth("acct_1")).json["meters"]
    assert (figures["credits"], figures["hard_limit"]) == (0, 150)
    assert report(client, 151, "k1").status_code == 402


def test_credits_bought_in_a_period_are_not_billed_as_its_overage(app, client, session):
    plan_service.import_plans(session, copy.deepcopy(CATALOGUE))
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    pro = session.scalars(select(Plan).where(Plan.slug == "pro")).one()
    end = datetime.now(UTC) - timedelta(hours=2)
    # 1,031 over the plan; 1,000 of them bought: 31 over, 4 units of 10
    closed_period_counter(session, used=1131, plan_id=pro.id, ended=end)
    buy_top_up(client, 1, captured_at=end - timedelta(days=5))
    with responses.RequestsMock() as paddle:
        charge = f"https://paddle.test/subscriptions/{SAMPLE_SUBSCRIPTION}/charge"
        paddle.post(charge, json=paddle_subscription(id=SAMPLE_SUBSCRIPTION), status=201)
        assert jobs.bill_overage(app) == {"opened": 1, "confirmed": 1}
    session.expire_all()
    assert session.scalars(select(UsageCharge.quantity)).one() == 4


@pytest.mark.parametrize(
    ("grants", "named"),
    [
        ({"credits": {"api_calls": 0}}, "grants.credits.api_calls"),
        ({"credits": {"sms": 10}}, "grants.credits.sms: not a meter of any plan in the file"),
        ({}, "grants.features: a product grants features, credits or both"),
    ],
)
def test_bad_credits_name_the_product_and_field(session, grants, named):
    product = {**CATALOGUE[1], "grants": grants}
    with pytest.raises(ValidationFailed) as refused:
        plan_service.import_plans(session, [CATALOGUE[0], product])
    assert f"product 'top-up' (entry 2): {named}" in refused.value.message


def test_the_catalogue_shows_a_products_credits(client, session):
    plan_service.import_plans(session, copy.deepcopy(CATALOGUE))
    session.commit()
    items = {item["slug"]: item for item in client.get("/api/v1/catalog").json}
    assert items["top-up"]["credits"] == {"api_calls": 1000}
    assert (items["top-up"]["features"], items["pro"]["credits"]) == ([], {})


def test_the_entitlement_reads_write_what_their_schema_documents(client, session, subscribed):
    """The single reads write their JSON themselves (the hot path); it must be what the
    documented schema would have written: meters, a grant with its end, datetimes alike."""
    from billing_app.api.schemas import EntitlementsBatchSchema, EntitlementsSchema
    from billing_app.services.entitlements.reads import entitlement_answers

    catalogue = copy.deepcopy(CATALOGUE)
    catalogue[1]["grants"] = {"features": ["exports"], "grant_days": 30}
    plan_service.import_plans(session, catalogue)
    session.commit()
    buy_top_up(client, 1)
    assert report(client, 7, "k1").status_code == 200

    written = client.get("/api/v1/entitlements", headers=auth("acct_1"))
    by_service = client.get("/api/v1/accounts/acct_1/entitlements", headers=SERVICE)
    documented = EntitlementsSchema().dump(entitlement_answers(["acct_1"])["acct_1"])
    batch = client.post(
        "/api/v1/entitlements/batch", json={"account_ids": ["acct_1"]}, headers=SERVICE
    ).json
    assert written.json == by_service.json == documented
    assert batch == EntitlementsBatchSchema().dump(
        {"entitlements": [{"account_id": "acct_1", **entitlement_answers(["acct_1"])["acct_1"]}]}
    )
    assert batch["entitlements"][0] == {"account_id": "acct_1", **documented}
    assert documented["grants"][0]["until"] and documented["meters"][0]["used"] == 7
    assert written.headers["ETag"] == by_service.headers["ETag"]
