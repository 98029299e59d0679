"""Recording and reading usage through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from billing_app.models import UsageCounter, UsageEvent
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.rows import make_active_subscription, make_plan
from tests.helpers.tokens import auth

SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
API_CALLS = {
    "included": 100,
    "hard_limit": 150,
    "overage_price_id": "pri_01overage",
    "overage_unit": 10,
}


def metered_plans(session):
    """The pro plan (100 calls included, never more than 150) and a free tier of 10."""
    pro = make_plan(session, slug="pro", price_id="pri_01pro", meters={"api_calls": API_CALLS})
    make_plan(
        session,
        slug="free",
        name="Free",
        price_id=None,
        amount=None,
        currency=None,
        interval=None,
        free=True,
        features=["projects"],
        meters={"api_calls": {"included": 10, "hard_limit": 10}},
    )
    return pro


def subscribe(session, pro, account: str = "acct_1"):
    now = datetime.now(UTC)
    return make_active_subscription(
        session,
        account,
        plan_id=pro.id,
        price_id=pro.price_id,
        current_period_start=now - timedelta(days=3),
        current_period_end=now + timedelta(days=27),
    )


def report(client, quantity=1, key="key-1", account="acct_1", meter="api_calls", **extra):
    body = {"meter": meter, "quantity": quantity, "idempotency_key": key, **extra}
    return client.post(f"/api/v1/accounts/{account}/usage", json=body, headers=SERVICE)


def test_usage_counts_in_the_subscriptions_period_and_says_where_it_stands(client, session):
    subscription = subscribe(session, metered_plans(session))
    answer = report(client, 120, key="k1")
    assert answer.status_code == 200, answer.json
    assert answer.json == {
        "meter": "api_calls",
        "period_start": subscription.current_period_start.isoformat(),
        "period_end": subscription.current_period_end.isoformat(),
        "used": 120,
        "included": 100,
        "credits": 0,
        "hard_limit": 150,
        "remaining": 30,
        "overage": 20,
    }
    own = client.get("/api/v1/usage", headers=auth()).json["meters"]
    assert [(m["meter"], m["used"], m["remaining"]) for m in own] == [("api_calls", 120, 30)]
    assert client.get("/api/v1/accounts/acct_1/usage", headers=SERVICE).json["meters"] == own


def test_past_the_hard_limit_the_whole_report_is_refused_and_nothing_kept(client, session):
    subscribe(session, metered_plans(session))
    assert report(client, 140, key="k1").status_code == 200
    refused = report(client, 11, key="k2")
    assert (refused.status_code, refused.json["error"]) == (402, "quota_exceeded")
    assert "nothing was recorded" in refused.json["message"]
    assert report(client, 10, key="k3").json["used"] == 150  # exactly to the limit
    assert session.scalar(select(func.count()).select_from(UsageEvent)) == 2
    assert report(client, 151, key="k4").status_code == 402  # more than the limit at once


def test_a_repeated_key_gets_the_first_answer_and_counts_once(client, session):
    subscribe(session, metered_plans(session))
    first = report(client, 5, key="same")
    report(client, 7, key="other")
    again = report(client, 5, key="same")
    assert again.status_code == 200
    assert again.json == first.json  # used 5, as the first time: not 12, not 17
    assert session.scalar(select(UsageCounter.used)) == 12
    conflict = report(client, 6, key="same")
    assert (conflict.status_code, conflict.json["error"]) == (409, "idempotency_key_conflict")
    elsewhere = report(client, 5, key="same", account="acct_2")
    assert elsewhere.status_code == 409


@pytest.mark.parametrize("path", ["single", "batch"])
def test_a_key_repeated_after_its_period_ended_answers_as_the_first_time(client, session, path):
    """A report sent just before its period's end and retried after it, with `occurred_at`
    left to default to now, falls in the next period: its key is found there too."""
    pro = metered_plans(session)
    now = datetime.now(UTC)
    make_active_subscription(
        session,
        "acct_1",
        plan_id=pro.id,
        price_id=pro.price_id,
        current_period_start=now - timedelta(minutes=30),  # the last one ended 30 min ago
        current_period_end=now + timedelta(days=30),
    )
    sent = {"meter": "api_calls", "quantity": 5, "idempotency_key": "edge"}
    before_the_end = (now - timedelta(minutes=40)).isoformat()

    def send(**extra):
        if path == "single":
            answer = client.post(
                "/api/v1/accounts/acct_1/usage", json={**sent, **extra}, headers=SERVICE
            )
            return answer.status_code, answer.json
        body = {"reports": [{"account_id": "acct_1", **sent, **extra}]}
        answer = client.post("/api/v1/usage/batch", json=body, headers=SERVICE)
        result = answer.json["results"][0]
        return result["status"], {**result["usage"], "duplicate": result["duplicate"]}

    first = send(occurred_at=before_the_end)
    again = send()  # now: the next period
    assert first[0] == again[0] == 200, (first, again)
    if path == "batch":  # a batch's results say which were repeats
        assert (first[1].pop("duplicate"), again[1].pop("duplicate")) == (False, True)
    assert again[1] == first[1]
    assert first[1]["period_end"] == (now - timedelta(minutes=30)).isoformat()
    counters = dict(session.execute(select(UsageCounter.period_start, UsageCounter.used)).all())
    assert counters.pop(datetime.fromisoformat(first[1]["period_start"])) == 5
    assert set(counters.values()) <= {0}  # counted once, in the first one's period
    assert session.scalar(select(func.count(UsageEvent.id))) == 1


def test_an_unknown_meter_a_closed_period_and_the_future_are_refused(client, session):
    subscribe(session, metered_plans(session))
    assert report(client, meter="storage_gb").status_code == 422
    long_ago = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    closed = report(client, key="old", occurred_at=long_ago)
    assert (closed.status_code, closed.json["error"]) == (409, "period_closed")
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert report(client, key="ahead", occurred_at=ahead).status_code == 422
    naive = datetime.now(UTC).replace(tzinfo=None).isoformat()
    assert report(client, key="naive", occurred_at=naive).status_code == 422


def test_reporting_needs_the_service_token_before_anything(client, session):
    body = {"meter": "api_calls", "quantity": 1, "idempotency_key": "k"}
    assert client.post("/api/v1/accounts/acct_1/usage", json=body).status_code == 401
    user = client.post("/api/v1/accounts/acct_1/usage", json={"bad": 1}, headers=auth())
    assert user.status_code == 401
    assert client.get("/api/v1/accounts/acct_1/usage", headers=auth()).status_code == 401


def test_an_account_without_a_subscription_counts_against_the_free_plan_by_month(client, session):
    metered_plans(session)
    answer = report(client, 4, account="acct_free").json
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert (answer["period_start"], answer["included"], answer["hard_limit"]) == (
        month.isoformat(),
        10,
        10,
    )
    assert report(client, 7, key="k2", account="acct_free").status_code == 402


@pytest.mark.postgres
@pytest.mark.parametrize("duplicated", [False, True])
def test_concurrent_reports_admit_exactly_what_fits(client, session, served, duplicated):
    import requests

    subscribe(session, metered_plans(session))
    assert report(client, 50, key="before").status_code == 200
    keys = [f"c{n % 100 if duplicated else n}" for n in range(200)]

    def send(key: str) -> int:
        body = {"meter": "api_calls", "quantity": 1, "idempotency_key": key}
        return requests.post(
            f"{served}/api/v1/accounts/acct_1/usage", json=body, headers=SERVICE, timeout=30
        ).status_code

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(send, keys))
    session.expire_all()
    counted = session.scalar(select(UsageCounter.used))
    events = session.scalar(select(func.count()).select_from(UsageEvent))
    if duplicated:  # 100 keys, each twice: each counted once, all of them fit
        assert (statuses.count(200), counted, events) == (200, 150, 101)
    else:
        assert (statuses.count(200), statuses.count(402), counted, events) == (100, 100, 150, 101)


def entitlements(client, account="acct_1") -> dict:
    response = client.get("/api/v1/entitlements", headers=auth(account))
    assert response.status_code == 200, response.json
    return response.json


def test_the_free_plan_then_the_paid_one_then_the_free_one_again(client, session):
    from sqlalchemy import update

    from billing_app.extensions import db
    from billing_app.models import Subscription

    pro = metered_plans(session)
    free = entitlements(client)
    assert (free["access"], free["plan"], free["status"], free["features"]) == (
        False,
        "free",
        "free",
        ["projects"],
    )
    assert [(m["meter"], m["included"], m["used"]) for m in free["meters"]] == [
        ("api_calls", 10, 0)
    ]
    assert client.get("/api/v1/subscription", headers=auth()).json["plan"] == "free"

    subscribe(session, pro)  # checked out
    report(client, 120, key="paid")
    paid = entitlements(client)
    assert (paid["access"], paid["plan"], paid["seats"], paid["features"]) == (
        True,
        "pro",
        10,
        ["projects", "exports"],
    )
    assert [(m["used"], m["remaining"], m["overage"]) for m in paid["meters"]] == [(120, 30, 20)]

    with db.engine.begin() as connection:  # the cancellation took effect
        connection.execute(update(Subscription).values(status="canceled"))
    after = entitlements(client)
    assert (after["access"], after["plan"], after["status"], after["seats"]) == (
        False,
        "free",
        "canceled",
        None,
    )
    assert [(m["included"], m["used"]) for m in after["meters"]] == [(10, 0)]  # a new month's
    assert report(client, 3, key="free-again").json["period_start"].endswith("T00:00:00+00:00")
