"""The caller's subscription: read it, pause, cancel, resume, change, pay, portal."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from responses import matchers
from sqlalchemy import select

from billing_app.models import Subscription
from tests.helpers.config import PADDLE_BASE, SERVICE_TOKEN
from tests.helpers.payloads import (
    SCHEDULED_CANCEL,
    body_of,
    canceled_now,
    envelope,
    paddle_subscription,
)
from tests.helpers.rows import make_active_subscription, make_plan
from tests.helpers.samples import sample
from tests.helpers.tokens import auth
from tests.helpers.webhooks import deliver

SUB = "sub_01hp463gxfvndqjjyqn2n7tkth"
RESUME_AT = (datetime.now(UTC) + timedelta(days=40)).replace(microsecond=0)
PERIOD = {"starts_at": "2026-05-01T00:00:00Z", "ends_at": "2026-06-01T00:00:00Z"}


@pytest.fixture
def active(session):
    """acct_1 with an active subscription on the starter plan, known to Paddle."""
    return make_active_subscription(session)


def row(session):
    session.expire_all()
    return session.scalars(select(Subscription)).one()


def test_an_account_that_never_subscribed_is_free(client):
    response = client.get("/api/v1/subscription", headers=auth("acct_new"))
    assert response.status_code == 200
    assert response.json["status"] == "free"
    assert response.json["access"] is False


def test_get_reads_the_table(client, session, active):
    response = client.get("/api/v1/subscription", headers=auth("acct_1"))
    body = response.json
    assert body["id"] == str(active.id)
    assert (body["status"], body["plan"], body["quantity"], body["access"]) == (
        "active",
        "starter",
        10,
        True,
    )
    assert body["scheduled_change"] is None


def test_pause_at_period_end_stores_the_scheduled_change_at_once(client, session, active, paddle):
    answer = paddle_subscription(
        scheduled_change={
            "action": "pause",
            "effective_at": "2024-03-08T11:02:03.946454Z",
            "resume_at": None,
        },
        updated_at="2024-02-09T00:00:00Z",
    )
    paddle.post(f"{PADDLE_BASE}/subscriptions/{SUB}/pause", json=answer)
    response = client.post("/api/v1/subscription/pause", json={}, headers=auth("acct_1"))
    assert response.status_code == 200, response.json
    assert json.loads(paddle.calls[0].request.body) == {"effective_from": "next_billing_period"}
    assert response.json["scheduled_change"]["action"] == "pause"
    assert response.json["status"] == "active"
    stored = row(session)
    assert stored.scheduled_action == "pause"
    assert stored.last_event_at == datetime(2024, 2, 9, tzinfo=UTC)

    # A webhook older than Paddle's answer cannot undo it.
    older = envelope(
        "subscription.updated",
        paddle_subscription(updated_at="2024-02-08T12:00:00Z")["data"] | {"id": SUB},
        occurred_at=datetime(2024, 2, 8, 12, tzinfo=UTC),
    )
    assert deliver(client, body_of(older)) == "stale"
    assert row(session).scheduled_action == "pause"


def test_pause_immediately_with_resume_at(client, session, active, paddle):
    answer = paddle_subscription(
        status="paused", paused_at="2024-02-09T00:00:00Z", updated_at="2024-02-09T00:00:00Z"
    )
    paddle.post(f"{PADDLE_BASE}/subscriptions/{SUB}/pause", json=answer)
    response = client.post(
        "/api/v1/subscription/pause",
        json={"effective_from": "immediately", "resume_at": RESUME_AT.isoformat()},
        headers=auth("acct_1"),
    )
    assert response.json["status"] == "paused"
    sent = json.loads(paddle.calls[0].request.body)
    assert sent["effective_from"] == "immediately"
    assert sent["resume_at"].startswith(RESUME_AT.strftime("%Y-%m-%dT%H:%M:%S"))
    assert row(session).paused_at == datetime(2024, 2, 9, tzinfo=UTC)


def test_pausing_a_paused_subscription_is_409_without_calling_paddle(client, session, active):
    active.status = "paused"
    session.commit()
    response = client.post("/api/v1/subscription/pause", json={}, headers=auth("acct_1"))
    assert response.status_code == 409
    assert response.json["error"] == "invalid_state"
    assert "paused" in response.json["message"]


@pytest.mark.parametrize("action", ["pause", "cancel", "resume", "payment-method"])
def test_an_action_between_payment_and_paddles_subscription_is_409_retry_shortly(
    client, session, active, paddle, action
):
    # `transaction.paid` gave access; `subscription.created` has not been applied yet
    active.paddle_subscription_id = None
    session.commit()
    response = client.post(f"/api/v1/subscription/{action}", json={}, headers=auth("acct_1"))
    assert response.status_code == 409, response.json
    assert response.json["error"] == "checkout_in_progress"
    assert "try again in a few seconds" in response.json["message"]
    assert "Retry-After" not in response.headers  # that header is for 429 and 503 only
    assert not paddle.calls


def test_cancel_at_period_end_then_resume_removes_it(client, session, active, paddle):
    paddle.post(
        f"{PADDLE_BASE}/subscriptions/{SUB}/cancel",
        json=paddle_subscription(
            scheduled_change=SCHEDULED_CANCEL, updated_at="2024-02-09T00:00:00Z"
        ),
    )
    paddle.patch(
        f"{PADDLE_BASE}/subscriptions/{SUB}",
        json=paddle_subscription(updated_at="2024-02-10T00:00:00Z"),
    )
    cancel = client.post("/api/v1/subscription/cancel", json={}, headers=auth("acct_1"))
    assert cancel.json["scheduled_change"]["action"] == "cancel"
    assert cancel.json["access"] is True  # until the end of the period

    again = client.post("/api/v1/subscription/cancel", json={}, headers=auth("acct_1"))
    assert again.status_code == 409 and again.json["error"] == "invalid_state"

    resume = client.post("/api/v1/subscription/resume", headers=auth("acct_1"))
    assert resume.status_code == 200
    assert json.loads(paddle.calls[-1].request.body) == {"scheduled_change": None}
    assert resume.json["scheduled_change"] is None
    assert row(session).scheduled_action is None


def test_cancel_immediately(client, session, active, paddle):
    paddle.post(
        f"{PADDLE_BASE}/subscriptions/{SUB}/cancel",
        json=canceled_now(),
    )
    response = client.post(
        "/api/v1/subscription/cancel",
        json={"effective_from": "immediately"},
        headers=auth("acct_1"),
    )
    assert response.json["status"] == "canceled"
    assert response.json["access"] is False
    assert json.loads(paddle.calls[0].request.body) == {"effective_from": "immediately"}


def test_resume_a_paused_subscription(client, session, active, paddle):
    active.status = "paused"
    session.commit()
    paddle.post(
        f"{PADDLE_BASE}/subscriptions/{SUB}/resume",
        json=paddle_subscription(updated_at="2024-02-11T00:00:00Z"),
    )
    response = client.post("/api/v1/subscription/resume", headers=auth("acct_1"))
    assert response.json["status"] == "active"
    assert json.loads(paddle.calls[0].request.body) == {"effective_from": "immediately"}


def test_resume_a_canceled_subscription_is_409(client, session, active):
    active.status = "canceled"
    session.commit()
    response = client.post("/api/v1/subscription/resume", headers=auth("acct_1"))
    assert response.status_code == 409
    assert response.json["error"] == "subscription_canceled"


def test_resume_with_nothing_to_resume_is_409(client, session, active):
    response = client.post("/api/v1/subscription/resume", headers=auth("acct_1"))
    assert response.status_code == 409
    assert response.json["error"] == "invalid_state"


def test_actions_without_a_subscription_are_404(client):
    for path in ("pause", "cancel", "resume", "payment-method"):
        response = client.post(
            f"/api/v1/subscription/{path}",
            json={} if path in ("pause", "cancel") else None,
            headers=auth("acct_x"),
        )
        assert response.status_code == 404, path
        assert response.json["error"] == "no_subscription"


def test_payment_method_update(client, session, active, paddle):
    paddle.get(
        f"{PADDLE_BASE}/subscriptions/{SUB}/update-payment-method-transaction",
        json=sample("api-subscription-update-payment-method-transaction.json"),
    )
    response = client.post("/api/v1/subscription/payment-method", headers=auth("acct_1"))
    transaction = sample("api-subscription-update-payment-method-transaction.json")["data"]
    assert response.json == {
        "transaction_id": transaction["id"],
        "checkout_url": transaction["checkout"]["url"],
    }


def test_change_plan_keeps_add_ons_and_stores_the_answer(client, session, active, paddle):
    make_plan(session, slug="team", price_id="pri_team", amount="9000")
    from billing_app.models import SubscriptionItem

    active.items = [
        SubscriptionItem(price_id=active.price_id, quantity=10, recurring=True),
        SubscriptionItem(price_id="pri_addon", quantity=1, recurring=True),
    ]
    session.commit()
    answer = paddle_subscription(updated_at="2024-02-12T00:00:00Z")
    answer["data"]["items"][0]["price"]["id"] = "pri_team"
    answer["data"]["items"][0]["quantity"] = 12
    paddle.patch(f"{PADDLE_BASE}/subscriptions/{SUB}", json=answer)
    response = client.post(
        "/api/v1/subscription/change", json={"plan": "team", "quantity": 12}, headers=auth("acct_1")
    )
    assert response.status_code == 200, response.json
    assert json.loads(paddle.calls[0].request.body) == {
        "items": [
            {"price_id": "pri_team", "quantity": 12},
            {"price_id": "pri_addon", "quantity": 1},
        ],
        "proration_billing_mode": "prorated_immediately",
    }
    assert (response.json["plan"], response.json["quantity"]) == ("team", 12)


def test_change_preview_returns_the_charge_and_changes_nothing(client, session, active, paddle):
    make_plan(session, slug="team", price_id="pri_team", amount="9000")
    paddle.patch(
        f"{PADDLE_BASE}/subscriptions/{SUB}/preview",
        json=sample("api-subscription-preview-update.json"),
    )
    response = client.post(
        "/api/v1/subscription/change/preview",
        json={"plan": "team", "proration_billing_mode": "full_next_billing_period"},
        headers=auth("acct_1"),
    )
    assert response.status_code == 200, response.json
    assert response.json["update_summary"]["result"] == {
        "action": "charge",
        "amount": "150782",
        "currency_code": "USD",
    }
    assert response.json["immediate_transaction"]["total"] == "194328"
    assert (
        json.loads(paddle.calls[0].request.body)["proration_billing_mode"]
        == "full_next_billing_period"
    )
    assert row(session).price_id == "pri_01gsz8x8sawmvhz1pv30nge1ke"


def test_changing_to_the_same_plan_is_409(client, session, active):
    response = client.post(
        "/api/v1/subscription/change", json={"plan": "starter"}, headers=auth("acct_1")
    )
    assert response.status_code == 409


def test_portal_session(client, session, active, paddle):
    paddle.post(
        f"{PADDLE_BASE}/customers/ctm_01hp462x4578nc20acj9g956yy/portal-sessions",
        json=sample("api-customer-portal-session-create.json"),
        status=201,
    )
    response = client.post("/api/v1/portal-session", headers=auth("acct_1"))
    assert response.json == {
        "url": sample("api-customer-portal-session-create.json")["data"]["urls"]["general"][
            "overview"
        ]
    }
    assert json.loads(paddle.calls[0].request.body) == {"subscription_ids": [SUB]}


def test_entitlements(client, session, active):
    assert client.get("/api/v1/entitlements", headers=auth("acct_1")).json == {
        "access": True,
        "plan": "starter",
        "status": "active",
        "features": ["projects", "exports"],
        "limits": {"projects": 3},
        "seats": 10,
        "meters": [],
        "grants": [],
        "recheck_at": None,
    }


ENDPOINTS = [
    ("get", "/api/v1/subscription", None),
    ("post", "/api/v1/subscription/pause", {}),
    ("post", "/api/v1/subscription/cancel", {}),
    ("post", "/api/v1/subscription/resume", None),
    ("post", "/api/v1/subscription/payment-method", None),
    ("post", "/api/v1/subscription/change", {"plan": "starter", "quantity": 2}),
    ("post", "/api/v1/subscription/change/preview", {"plan": "starter", "quantity": 2}),
    ("post", "/api/v1/portal-session", None),
    ("get", "/api/v1/entitlements", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_another_account_never_reaches_this_subscription(
    client, session, active, paddle, method, path, body
):
    kwargs = {"headers": auth("acct_2")}
    if body is not None:
        kwargs["json"] = body
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code in (200, 404), response.json
    assert str(active.id) not in response.get_data(as_text=True)
    assert SUB not in response.get_data(as_text=True)
    assert len(paddle.calls) == 0  # nothing was sent to Paddle about acct_1's subscription
    if response.status_code == 200:
        assert response.json.get("access") in (False, None)


def test_the_openapi_document_validates_and_lists_every_route(app, client):
    from openapi_spec_validator import validate

    document = client.get("/openapi.json").json
    validate(document)
    routes = {
        rule.rule.replace("<string:", "{").replace("<", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in {"static"}
        and not rule.rule.startswith(("/openapi", "/docs", "/static", "/favicon.ico"))
        and not rule.endpoint.startswith("api-docs")
    }
    assert routes <= set(document["paths"]), routes - set(document["paths"])
    checkout = document["paths"]["/api/v1/checkout"]["post"]
    assert {"201", "401", "409", "422", "502", "503"} <= set(checkout["responses"])
    assert "userToken" in document["components"]["securitySchemes"]
    assert SERVICE_TOKEN not in json.dumps(document)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/checkout", {"plan": "star\u0000ter"}),
        ("/api/v1/checkout", {"price_id": "pri_\u0000"}),
        ("/api/v1/subscription/change", {"plan": "a" * 300}),
        ("/api/v1/subscription/pause", {"resume_at": "0001-01-01T00:30:00+01:00"}),
        ("/api/v1/subscription/pause", {"resume_at": "2001-01-01T00:00:00+00:00"}),
    ],
    ids=["nul-plan", "nul-price", "long-plan", "year-1-resume", "past-resume"],
)
def test_odd_inputs_are_422_never_500(client, session, active, paddle, path, body):
    response = client.post(path, json=body, headers=auth("acct_1"))
    assert response.status_code == 422, response.json
    assert response.json["error"] == "validation_error"
    assert len(paddle.calls) == 0


def test_an_odd_account_id_in_the_path_is_422(client):
    for account_id in ("acct%00one", "a" * 200):
        response = client.get(
            f"/api/v1/accounts/{account_id}/entitlements",
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        )
        assert response.status_code == 422, response.json


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/subscription/resume", {"force": True}),
        ("/api/v1/subscription/payment-method", {"x": 1}),
        ("/api/v1/portal-session", {"return_url": "https://evil.example.com"}),
        ("/api/v1/checkout", {"plan": "starter", "quantity": "3"}),
        ("/api/v1/checkout", {"plan": "starter", "quantity": 2.5}),
    ],
    ids=["resume-field", "payment-method-field", "portal-field", "string-quantity", "float"],
)
def test_unknown_fields_and_loose_types_are_422(client, session, active, paddle, path, body):
    response = client.post(path, json=body, headers=auth("acct_1"))
    assert response.status_code == 422, response.json
    assert len(paddle.calls) == 0


def test_actions_without_options_take_an_empty_body(client, session, active, paddle):
    paddle.post(
        f"{PADDLE_BASE}/customers/ctm_01hp462x4578nc20acj9g956yy/portal-sessions",
        json=sample("api-customer-portal-session-create.json"),
        status=201,
    )
    assert client.post("/api/v1/portal-session", headers=auth("acct_1")).status_code == 200


def test_a_change_at_period_end_asks_paddle_nothing_until_it_is_due(client, session, active):
    make_plan(session, slug="team", price_id="pri_team", amount="9000")
    ends = datetime(2027, 3, 1, tzinfo=UTC)
    active.next_billed_at = ends
    session.commit()
    body = {"plan": "team", "quantity": 3, "effective_from": "next_billing_period"}
    response = client.post("/api/v1/subscription/change", json=body, headers=auth("acct_1"))
    assert response.status_code == 200, response.json
    assert (response.json["plan"], response.json["quantity"]) == ("starter", 10)
    assert response.json["scheduled_change"] == {
        "action": "change",
        "effective_at": "2027-03-01T00:00:00+00:00",
        "resume_at": None,
        "plan": "team",
        "quantity": 3,
    }
    again = client.post(
        "/api/v1/subscription/change",
        json={"quantity": 4, "effective_from": "next_billing_period"},
        headers=auth("acct_1"),
    )
    assert again.json["scheduled_change"]["plan"] == "starter"  # it replaced the first
    assert again.json["scheduled_change"]["quantity"] == 4


def test_a_change_at_period_end_is_refused_while_past_due_or_with_a_code(
    client, session, active, paddle
):
    make_plan(session, slug="team", price_id="pri_team", amount="9000")
    active.next_billed_at = datetime(2027, 3, 1, tzinfo=UTC)
    session.commit()
    coded = client.post(
        "/api/v1/subscription/change",
        json={"plan": "team", "effective_from": "next_billing_period", "discount_code": "X1"},
        headers=auth("acct_1"),
    )
    assert (coded.status_code, list(coded.json["errors"])) == (422, ["discount_code"])
    assert len(paddle.calls) == 0  # refused before the code is looked up
    active.status = "past_due"
    session.commit()
    refused = client.post(
        "/api/v1/subscription/change",
        json={"plan": "team", "effective_from": "next_billing_period"},
        headers=auth("acct_1"),
    )
    assert (refused.status_code, refused.json["error"]) == (409, "invalid_state")


def test_a_change_made_at_once_carries_a_recurring_code_judged_for_the_new_plan(
    client, session, active, paddle
):
    make_plan(session, slug="team", price_id="pri_team", amount="9000")

    def listed(code: str, **fields):
        discount = {"id": f"dsc_{code.lower()}", "code": code, "status": "active", "recur": True}
        paddle.get(
            f"{PADDLE_BASE}/discounts",
            json={
                "data": [{**discount, **fields}],
                "meta": {"request_id": "r", "pagination": {"has_more": False}},
            },
            match=[matchers.query_param_matcher({"code": code}, strict_match=False)],
        )

    listed("STARTERONLY", restrict_to=["pri_01gsz8x8sawmvhz1pv30nge1ke"])
    listed("LOYAL")
    refused = client.post(
        "/api/v1/subscription/change",
        json={"plan": "team", "discount_code": "starteronly"},
        headers=auth("acct_1"),
    )
    assert (refused.status_code, refused.json["error"]) == (422, "discount_invalid")
    assert [call.request.method for call in paddle.calls] == ["GET"]  # nothing sent

    answer = paddle_subscription(updated_at="2024-02-12T00:00:00Z")
    answer["data"]["items"][0]["price"]["id"] = "pri_team"
    answer["data"]["items"][0]["quantity"] = 10
    paddle.patch(f"{PADDLE_BASE}/subscriptions/{SUB}", json=answer)
    changed = client.post(
        "/api/v1/subscription/change",
        json={"plan": "team", "discount_code": "loyal"},
        headers=auth("acct_1"),
    )
    assert changed.status_code == 200, changed.json
    sent = json.loads(paddle.calls[-1].request.body)
    assert sent["discount"] == {"id": "dsc_loyal", "effective_from": "immediately"}
