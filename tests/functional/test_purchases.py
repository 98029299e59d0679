"""One-time products: the catalogue, their checkout, the purchases a completed checkout
records, what they grant in entitlements, and refunds and chargebacks taking it back."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from billing_app.models import Product, Purchase, Transaction
from billing_app.services.plans import catalogue as plan_service
from tests.helpers.catalogue import (
    CATALOGUE,
    CUSTOMER,
    PASS,
    REPORTS,
    one_time_transaction,
    refund,
)
from tests.helpers.config import PADDLE_BASE, SERVICE_TOKEN
from tests.helpers.payloads import (
    body_of,
    checkout_transaction,
    envelope,
)
from tests.helpers.rows import make_account, make_subscription
from tests.helpers.samples import sample
from tests.helpers.tokens import auth
from tests.helpers.webhooks import deliver, post_webhook


@pytest.fixture
def catalogue(session):
    plan_service.import_plans(session, copy.deepcopy(CATALOGUE))
    session.commit()


def entitlements(client, account_id="acct_1"):
    response = client.get("/api/v1/entitlements", headers=auth(account_id))
    assert response.status_code == 200, response.json
    return response.json


def test_the_catalogue_lists_plans_and_products_by_type(client, session, catalogue):
    every = client.get("/api/v1/catalog")
    assert every.status_code == 200 and every.headers["ETag"]
    assert [(item["type"], item["slug"]) for item in every.json] == [
        ("subscription", "starter"),
        ("one_time", "reports"),
        ("one_time", "week-pass"),
    ]
    products = client.get("/api/v1/catalog?type=one_time").json
    assert products[1] == {
        "type": "one_time",
        "slug": "week-pass",
        "name": "Week pass",
        "description": None,
        "price_id": PASS,
        "amount": "900",
        "currency": "USD",
        "features": ["exports", "reports"],
        "interval": None,
        "interval_count": None,
        "grant_days": 7,
        "credits": {},
    }
    plans = client.get("/api/v1/catalog?type=subscription").json
    assert [item["slug"] for item in plans] == ["starter"]
    unchanged = client.get("/api/v1/catalog", headers={"If-None-Match": every.headers["ETag"]})
    assert unchanged.status_code == 304
    assert client.get("/api/v1/catalog?type=lifetime").status_code == 422


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"grants": {"features": []}}, "product 'reports' (entry 1): grants.features"),
        ({"grants": {"features": ["x"], "grant_days": 0}}, "grants.grant_days"),
        ({"grants": None}, "grants"),
        ({"interval": "month"}, "interval: Unknown field"),
        ({"price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke"}, "price_id: repeats entry 1"),
    ],
)
def test_a_bad_product_names_itself_and_imports_nothing(session, entry, named):
    from billing_app.errors import ValidationFailed

    product = {**CATALOGUE[1], **entry}
    with pytest.raises(ValidationFailed) as refused:
        plan_service.import_plans(session, [product, CATALOGUE[0]])
    assert named in refused.value.message
    session.rollback()
    assert session.scalars(select(Product)).all() == []


def test_a_product_may_not_take_a_price_a_plan_has(session, catalogue):
    from billing_app.errors import ValidationFailed

    taken = {**CATALOGUE[1], "slug": "extra", "price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke"}
    with pytest.raises(ValidationFailed) as refused:
        plan_service.import_plans(session, [taken])
    assert "product 'extra': price_id" in refused.value.message
    assert "would also belong to plan 'starter'" in refused.value.message


def test_a_product_checkout_asks_paddle_for_its_price_and_reuses_an_open_one(
    client, session, catalogue, paddle
):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    created = sample("api-transaction-create.json")
    created["data"].update(customer_id=CUSTOMER, status="ready")
    created["data"]["items"] = [
        {"price": {"id": REPORTS, "billing_cycle": None, "product_id": "pro_1"}, "quantity": 1}
    ]
    empty = {"data": [], "meta": {"request_id": "r", "pagination": {"has_more": False}}}
    paddle.get(f"{PADDLE_BASE}/transactions", json=empty)
    paddle.post(f"{PADDLE_BASE}/transactions", json=created, status=201)
    paddle.get(f"{PADDLE_BASE}/transactions/{created['data']['id']}", json=created)

    first = client.post("/api/v1/checkout", json={"product": "reports"}, headers=auth("acct_1"))
    assert first.status_code == 201, first.json
    assert first.json["subscription_id"] is None
    assert first.json["transaction_id"] == created["data"]["id"]
    sent = json.loads(paddle.calls[1].request.body)
    assert sent["items"] == [{"price_id": REPORTS, "quantity": 1}]
    assert sent["custom_data"] == {"app_account_id": "acct_1", "app_product": "reports"}
    kept = session.scalars(select(Transaction)).one()
    assert (kept.account_id, kept.status) == ("acct_1", "ready")

    again = client.post("/api/v1/checkout", json={"product": "reports"}, headers=auth("acct_1"))
    assert again.json["transaction_id"] == created["data"]["id"]
    assert [call.request.method for call in paddle.calls] == ["GET", "POST", "GET"]


def test_an_unknown_product_is_a_404(client, session, catalogue):
    response = client.post("/api/v1/checkout", json={"product": "gold"}, headers=auth("acct_1"))
    assert (response.status_code, response.json["error"]) == (404, "product_not_found")
    both = client.post(
        "/api/v1/checkout", json={"product": "reports", "plan": "starter"}, headers=auth("acct_1")
    )
    assert both.status_code == 422


def test_buying_twice_records_two_purchases_and_the_grant_once(client, session, catalogue):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    first = envelope("transaction.completed", one_time_transaction(1))
    assert deliver(client, body_of(first)) == "processed"
    assert post_webhook(client, body_of(first)).json["status"] == "duplicate"  # redelivered
    repeat = envelope("transaction.updated", one_time_transaction(1))  # the same transaction
    deliver(client, body_of(repeat))
    deliver(client, body_of(envelope("transaction.completed", one_time_transaction(2))))

    purchases = session.scalars(select(Purchase).order_by(Purchase.id)).all()
    assert [(p.product_slug, p.paddle_transaction_id, p.total) for p in purchases] == [
        ("reports", f"txn_{1:026d}", 4900),
        ("reports", f"txn_{2:026d}", 4900),
    ]
    answer = entitlements(client)
    assert (answer["access"], answer["features"]) == (False, ["reports"])
    assert answer["grants"] == [
        {"product": "reports", "features": ["reports"], "until": None},
        {"product": "reports", "features": ["reports"], "until": None},
    ]


def test_purchased_features_join_the_plans(client, session, catalogue):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    plan = session.scalars(
        select(plan_service.Plan).where(plan_service.Plan.slug == "starter")
    ).one()
    make_subscription(session, account_id="acct_1", status="active", plan_id=plan.id)
    deliver(client, body_of(envelope("transaction.completed", one_time_transaction(1))))
    answer = entitlements(client)
    assert (answer["access"], answer["plan"], answer["features"]) == (
        True,
        "starter",
        ["projects", "reports"],
    )


def test_a_grant_for_days_ends_on_time(client, session, catalogue):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    days_ago = (datetime.now(UTC) - datetime(2026, 1, 1, tzinfo=UTC)).days
    recent = one_time_transaction(days_ago - 2, PASS, total="900")  # bought two days ago
    old = one_time_transaction(days_ago - 30, PASS, total="900")
    for data in (recent, old):
        deliver(client, body_of(envelope("transaction.completed", data)))
    (grant,) = entitlements(client)["grants"]
    until = datetime.fromisoformat(grant["until"])
    bought = datetime.fromisoformat(recent["payments"][0]["captured_at"].replace("Z", "+00:00"))
    assert until == bought + timedelta(days=7)
    assert entitlements(client)["features"] == ["exports", "reports"]


def test_other_origins_and_recurring_prices_are_not_purchases(client, session, catalogue):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    charge = one_time_transaction(1, origin="subscription_charge")
    deliver(client, body_of(envelope("transaction.completed", charge)))
    deliver(client, body_of(envelope("transaction.completed", checkout_transaction())))
    assert session.scalars(select(Purchase)).all() == []


def test_a_full_refund_revokes_the_grant_and_a_partial_one_keeps_it(client, session, catalogue):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    deliver(client, body_of(envelope("transaction.completed", one_time_transaction(1))))

    assert deliver(client, body_of(refund(1, total="1000"))) == "processed"
    assert entitlements(client)["features"] == ["reports"]  # partial: kept
    assert deliver(client, body_of(refund(2, total="3900", status="pending_approval"))) == (
        "processed"
    )
    assert entitlements(client)["features"] == ["reports"]  # not approved yet
    assert deliver(client, body_of(refund(2, total="3900"))) == "processed"
    assert entitlements(client)["features"] == []  # 1000 + 3900: the whole 4900
    purchase = session.scalars(select(Purchase)).one()
    assert (purchase.revoked_by, purchase.revoked_at) == (
        "refund",
        datetime(2026, 2, 2, tzinfo=UTC),
    )
    history = client.get("/api/v1/transactions", headers=auth("acct_1")).json["data"]
    assert [a["status"] for a in history[0]["adjustments"]] == ["approved", "approved"]


def test_a_chargeback_revokes_until_it_is_reversed(client, session, catalogue):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    deliver(client, body_of(envelope("transaction.completed", one_time_transaction(1))))
    deliver(client, body_of(refund(1, total="4900", action="chargeback")))
    assert entitlements(client)["features"] == []
    deliver(client, body_of(refund(2, total="4900", action="chargeback_reverse")))
    assert entitlements(client)["features"] == ["reports"]


def test_a_refund_that_arrives_before_its_purchase_still_revokes_it(client, session, catalogue):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    deliver(client, body_of(refund(1, total="4900")))
    deliver(client, body_of(envelope("transaction.completed", one_time_transaction(1))))
    assert entitlements(client)["features"] == []
    service = client.get(
        "/api/v1/accounts/acct_1/entitlements", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
    )
    assert service.json["grants"] == []


def test_a_purchase_of_a_customer_linked_later_is_granted_then(client, session, catalogue):
    make_account(session, "acct_1")
    deliver(client, body_of(envelope("transaction.completed", one_time_transaction(1))))
    assert entitlements(client)["features"] == []
    customer = sample("webhook-customer.created.json")["data"]
    customer.update(id=CUSTOMER, custom_data={"app_account_id": "acct_1"})
    deliver(client, body_of(envelope("customer.created", customer)))
    assert entitlements(client)["features"] == ["reports"]


def two_products_bought_together() -> dict:
    """A completed checkout of the reports pack (line `txnitm_reports`, 4900) and the week
    pass (line `txnitm_pass`, 900), 5800 in all."""
    data = one_time_transaction(1, total="5800")
    reports_item, reports_line = data["items"][0], data["details"]["line_items"][0]
    reports_line.update(id="txnitm_reports")
    reports_line["totals"]["total"] = "4900"
    pass_item = copy.deepcopy(reports_item)
    pass_item["price"]["id"] = PASS
    pass_line = copy.deepcopy(reports_line)
    pass_line.update(id="txnitm_pass", price_id=PASS)
    pass_line["totals"]["total"] = "900"
    data["items"].append(pass_item)
    data["details"]["line_items"].append(pass_line)
    return data


def line_refund(n: int, item_id: str, *, total: str, kind: str) -> dict:
    notification = refund(n, total=total, type="partial")
    notification["data"]["items"] = [
        {"item_id": item_id, "type": kind, "amount": total, "totals": {"total": total}}
    ]
    return notification


def revoked(session) -> dict[str, str | None]:
    session.expire_all()
    purchases = session.scalars(select(Purchase)).all()
    session.commit()
    return {purchase.product_slug: purchase.revoked_by for purchase in purchases}


def test_a_refund_of_one_line_takes_back_that_product_only(client, session, catalogue):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    deliver(client, body_of(envelope("transaction.completed", two_products_bought_together())))
    assert revoked(session) == {"reports": None, "week-pass": None}

    deliver(client, body_of(line_refund(1, "txnitm_pass", total="400", kind="partial")))
    assert revoked(session) == {"reports": None, "week-pass": None}  # part of a line
    deliver(client, body_of(line_refund(2, "txnitm_pass", total="500", kind="partial")))
    assert revoked(session) == {"reports": None, "week-pass": "refund"}  # its whole line
    assert entitlements(client)["features"] == ["reports"]
    deliver(client, body_of(line_refund(3, "txnitm_reports", total="4900", kind="full")))
    assert revoked(session) == {"reports": "refund", "week-pass": "refund"}
    assert entitlements(client)["features"] == []
