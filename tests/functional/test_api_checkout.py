"""GET /plans and POST /checkout, with Paddle faked at the HTTP edge."""

import json
import uuid

import pytest
import requests
import responses
from sqlalchemy import select

from billing_app.models import Account, Subscription
from tests.helpers.config import PADDLE_BASE
from tests.helpers.payloads import paddle_error_body
from tests.helpers.rows import make_account, make_plan, make_subscription
from tests.helpers.samples import sample
from tests.helpers.tokens import auth


def subscriptions(session):
    session.expire_all()
    return list(session.scalars(select(Subscription)))


def test_plans_lists_active_plans_with_etag_and_cache_headers(client, session):
    make_plan(session, features=["projects"], limits={"projects": 3})
    make_plan(session, slug="old", price_id="pri_old", active=False)
    response = client.get("/api/v1/plans")
    assert response.status_code == 200
    assert response.json == [
        {
            "slug": "starter",
            "name": "Starter",
            "description": None,
            "price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke",
            "amount": "3000",
            "currency": "USD",
            "interval": "month",
            "interval_count": 1,
            "features": ["projects"],
            "limits": {"projects": 3},
            "free": False,
            "meters": {},
        }
    ]
    assert response.headers["Cache-Control"] == "public, max-age=60"
    again = client.get("/api/v1/plans", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def no_open_checkout(paddle):
    """Paddle's answer to 'which checkouts of this customer are still open?': none."""
    empty = {"data": [], "meta": {"request_id": "r", "pagination": {"has_more": False}}}
    paddle.get(f"{PADDLE_BASE}/transactions", json=empty)


def transaction_created(paddle):
    no_open_checkout(paddle)
    paddle.post(
        f"{PADDLE_BASE}/transactions", json=sample("api-transaction-create.json"), status=201
    )


def customer_created(paddle):
    paddle.post(f"{PADDLE_BASE}/customers", json=sample("api-customer-get.json"), status=201)


def test_checkout_creates_a_pending_subscription_customer_and_transaction(client, session, paddle):
    make_plan(session)
    customer_created(paddle)
    transaction_created(paddle)
    response = client.post(
        "/api/v1/checkout", json={"plan": "starter", "quantity": 3}, headers=auth("acct_1")
    )
    assert response.status_code == 201, response.json
    (row,) = subscriptions(session)
    transaction = sample("api-transaction-create.json")["data"]
    assert response.json == {
        "subscription_id": str(row.id),
        "transaction_id": transaction["id"],
        "checkout_url": transaction["checkout"]["url"],
    }
    assert (row.status, row.account_id, row.quantity, row.paddle_transaction_id) == (
        "pending",
        "acct_1",
        3,
        transaction["id"],
    )
    customer_request = json.loads(paddle.calls[0].request.body)
    assert customer_request == {
        "email": "acct_1@example.com",
        "custom_data": {"app_account_id": "acct_1"},
    }
    looked_for = paddle.calls[1].request
    assert "status=draft%2Cready" in looked_for.url or "status=draft,ready" in looked_for.url
    transaction_request = json.loads(paddle.calls[2].request.body)
    assert transaction_request == {
        "items": [{"price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke", "quantity": 3}],
        "customer_id": sample("api-customer-get.json")["data"]["id"],
        "custom_data": {"app_account_id": "acct_1", "app_subscription_id": str(row.id)},
        "checkout": {"url": "https://app.example.com/checkout"},
    }
    account = session.get(Account, "acct_1")
    assert account.paddle_customer_id == sample("api-customer-get.json")["data"]["id"]


def test_a_second_click_reuses_the_pending_checkout(client, session, paddle):
    make_plan(session)
    customer_created(paddle)
    transaction_created(paddle)
    first = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    transaction_id = first.json["transaction_id"]
    paddle.get(
        f"{PADDLE_BASE}/transactions/{transaction_id}", json=sample("api-transaction-create.json")
    )
    second = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    assert second.status_code == 201
    assert second.json == first.json
    assert len(subscriptions(session)) == 1
    assert [call.request.method for call in paddle.calls] == ["POST", "GET", "POST", "GET"]


def buyer_with_a_paddle_customer(session):
    """The starter plan, and acct_1 already known to Paddle (no customer call needed)."""
    make_plan(session)
    make_account(session, "acct_1", paddle_customer_id="ctm_1")


def test_checkout_by_price_id_and_for_an_existing_customer(client, session, paddle):
    buyer_with_a_paddle_customer(session)
    transaction_created(paddle)
    response = client.post(
        "/api/v1/checkout",
        json={"price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke", "quantity": 2},
        headers=auth("acct_1"),
    )
    assert response.status_code == 201, response.json
    sent = json.loads(paddle.calls[1].request.body)
    assert sent["customer_id"] == "ctm_1"  # no customer was created
    assert sent["items"] == [{"price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke", "quantity": 2}]
    assert len(paddle.calls) == 2


def test_a_live_subscription_means_409(client, session):
    make_plan(session)
    make_account(session, "acct_1")
    make_subscription(session, account_id="acct_1", status="active", paddle_subscription_id="sub_1")
    response = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    assert response.status_code == 409
    assert response.json["error"] == "subscription_exists"
    assert "already has an active subscription" in response.json["message"]


def test_an_unknown_plan_is_404(client, session):
    response = client.post("/api/v1/checkout", json={"plan": "gold"}, headers=auth("acct_1"))
    assert response.status_code == 404
    assert response.json["error"] == "plan_not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "plan"),
        ({"plan": "starter", "price_id": "pri_1"}, "plan"),
        ({"plan": "starter", "quantity": 0}, "quantity"),
        ({"plan": "starter", "qty": 2}, "qty"),
    ],
)
def test_invalid_bodies_are_422_with_field_errors(client, body, field):
    response = client.post("/api/v1/checkout", json=body, headers=auth("acct_1"))
    assert response.status_code == 422
    assert response.json["error"] == "validation_error"
    assert field in response.json["errors"]


def test_paddle_down_is_503_and_leaves_the_table_unchanged(client, session, paddle):
    buyer_with_a_paddle_customer(session)
    no_open_checkout(paddle)
    paddle.post(f"{PADDLE_BASE}/transactions", status=502, json={})
    response = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    assert response.status_code == 503
    assert response.json["error"] == "paddle_unavailable"
    assert subscriptions(session) == []
    # A create that may have landed is never repeated: Paddle is asked for it instead.
    assert [call.request.method for call in paddle.calls] == ["GET", "POST", "GET"]


def test_paddle_rate_limit_is_503_with_retry_after(client, session, paddle):
    buyer_with_a_paddle_customer(session)
    no_open_checkout(paddle)
    paddle.post(
        f"{PADDLE_BASE}/transactions",
        status=429,
        json=sample("api-error-too-many-requests.json"),
        headers={"Retry-After": "60"},
    )
    response = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert subscriptions(session) == []


def test_paddle_refusal_is_502_with_its_code(client, session, paddle):
    buyer_with_a_paddle_customer(session)
    no_open_checkout(paddle)
    paddle.post(
        f"{PADDLE_BASE}/transactions",
        status=400,
        json={
            "error": {
                "type": "request_error",
                "code": "transaction_price_not_found",
                "detail": "price not found",
                "documentation_url": "https://developer.paddle.com/errors",
            },
            "meta": {"request_id": "r"},
        },
    )
    response = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    assert response.status_code == 502
    assert response.json["error"] == "paddle_error"
    assert response.json["paddle_error_code"] == "transaction_price_not_found"
    assert subscriptions(session) == []


def test_without_a_paddle_key_checkout_is_503_but_reads_work(make_app, session):
    make_plan(session)
    client = make_app(PADDLE_API_KEY=None).test_client()
    response = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    assert response.status_code == 503
    assert response.json["error"] == "paddle_not_configured"
    assert client.get("/api/v1/plans").status_code == 200
    assert client.get("/api/v1/subscription", headers=auth("acct_1")).json["status"] == "free"
    assert client.get("/api/v1/entitlements", headers=auth("acct_1")).json["access"] is False


def test_the_key_never_appears_in_an_error_body(client, session, paddle):
    buyer_with_a_paddle_customer(session)
    no_open_checkout(paddle)
    paddle.post(
        f"{PADDLE_BASE}/transactions",
        status=403,
        json={"error": {"code": "invalid_token", "detail": "bad"}},
    )
    response = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    assert "pdl_sdbx_apikey_test" not in response.get_data(as_text=True)


def open_checkout_of(sent: dict) -> dict:
    """The transaction Paddle made from the create request `sent`, as its list shows it."""
    transaction = sample("api-transaction-create.json")["data"]
    return {
        **transaction,
        "status": "ready",
        "custom_data": sent["custom_data"],
        "items": [
            {"price": {"id": item["price_id"]}, "quantity": item["quantity"]}
            for item in sent["items"]
        ],
    }


def test_a_create_whose_answer_was_lost_is_found_at_paddle_not_made_twice(client, session, paddle):
    """Paddle made the transaction but the answer timed out: the user gets it, and a
    retry reuses it."""
    buyer_with_a_paddle_customer(session)
    made = []

    def create(request):
        made.append(json.loads(request.body))
        raise requests.exceptions.ReadTimeout("Paddle answered after our timeout")

    def listing(request):
        data = [open_checkout_of(sent) for sent in made]
        body = {"data": data, "meta": {"request_id": "r", "pagination": {"has_more": False}}}
        return (200, {"Content-Type": "application/json"}, json.dumps(body))

    paddle.add_callback(responses.POST, f"{PADDLE_BASE}/transactions", callback=create)
    paddle.add_callback(responses.GET, f"{PADDLE_BASE}/transactions", callback=listing)
    first = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    assert first.status_code == 201, first.json
    (row,) = subscriptions(session)
    assert (
        first.json["subscription_id"]
        == str(row.id)
        == made[0]["custom_data"]["app_subscription_id"]
    )
    assert row.paddle_transaction_id == first.json["transaction_id"]

    # The user clicks again (say the first answer never reached the browser either).
    row.paddle_transaction_id = None
    session.commit()
    second = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    assert second.status_code == 201, second.json
    assert second.json == first.json
    assert len(made) == 1  # one transaction at Paddle, whatever was lost on the way


def test_an_open_checkout_for_another_plan_is_not_reused(client, session, paddle):
    buyer_with_a_paddle_customer(session)
    other = open_checkout_of(
        {
            "custom_data": {"app_account_id": "acct_1", "app_subscription_id": str(uuid.uuid4())},
            "items": [{"price_id": "pri_other", "quantity": 1}],
        }
    )
    listing = {"data": [other], "meta": {"request_id": "r", "pagination": {"has_more": False}}}
    paddle.get(f"{PADDLE_BASE}/transactions", json=listing)
    paddle.post(
        f"{PADDLE_BASE}/transactions", json=sample("api-transaction-create.json"), status=201
    )
    response = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    assert response.status_code == 201
    assert [call.request.method for call in paddle.calls] == ["GET", "POST"]


def test_an_unverified_email_makes_no_customer_and_adopts_none(client, session, paddle):
    """Paddle's checkout asks the buyer instead; an email the identity provider did not
    verify could be anyone's."""
    make_plan(session)
    transaction_created(paddle)
    response = client.post(
        "/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1", email_verified=False)
    )
    assert response.status_code == 201, response.json
    # No customer call: the open checkouts lately updated are looked at, then the create.
    assert [call.request.method for call in paddle.calls] == ["GET", "POST"]
    assert "customer_id" not in paddle.calls[0].request.params
    assert "customer_id" not in json.loads(paddle.calls[1].request.body)
    assert session.get(Account, "acct_1").paddle_customer_id is None


def test_a_verified_email_does_not_adopt_another_accounts_customer(client, session, paddle):
    make_plan(session)
    make_account(session, "acct_owner", paddle_customer_id="ctm_01hv6y1jedq4p1n0yqn5ba3ky4")
    existing = sample("api-customer-get.json")
    paddle.post(
        f"{PADDLE_BASE}/customers",
        status=409,
        json=paddle_error_body(
            "customer_already_exists",
            "customer email conflicts with customer of id ctm_01hv6y1jedq4p1n0yqn5ba3ky4",
        ),
    )
    paddle.get(
        f"{PADDLE_BASE}/customers/ctm_01hv6y1jedq4p1n0yqn5ba3ky4",
        json={**existing, "data": {**existing["data"], "id": "ctm_01hv6y1jedq4p1n0yqn5ba3ky4"}},
    )
    transaction_created(paddle)
    response = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_1"))
    assert response.status_code == 201, response.json
    sent = json.loads(paddle.calls[-1].request.body)
    assert "customer_id" not in sent
    assert session.get(Account, "acct_1").paddle_customer_id is None


def test_a_lost_create_is_found_without_a_paddle_customer_too(client, session, paddle):
    """The buyer's email is not verified, so the transaction has no customer to list by:
    the lost one is found among the open transactions Paddle updated lately, by our
    custom_data, and a retry makes no second transaction."""
    make_plan(session)
    made, asked = [], []

    def create(request):
        made.append(json.loads(request.body))
        raise requests.exceptions.ReadTimeout("Paddle answered after our timeout")

    def listing(request):
        asked.append(request.params)
        data = [{**open_checkout_of(sent), "customer_id": None} for sent in made]
        body = {"data": data, "meta": {"request_id": "r", "pagination": {"has_more": False}}}
        return (200, {"Content-Type": "application/json"}, json.dumps(body))

    paddle.add_callback(responses.POST, f"{PADDLE_BASE}/transactions", callback=create)
    paddle.add_callback(responses.GET, f"{PADDLE_BASE}/transactions", callback=listing)
    unverified = auth("acct_1", email_verified=False)
    first = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=unverified)
    assert first.status_code == 201, first.json
    assert "customer_id" not in asked[0] and "updated_at[GTE]" in asked[0]
    assert asked[0]["status"] == "draft,ready"
    (row,) = subscriptions(session)
    row.paddle_transaction_id = None  # the first answer never reached the browser either
    session.commit()
    second = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=unverified)
    assert second.status_code == 201, second.json
    assert second.json == first.json
    assert len(made) == 1
