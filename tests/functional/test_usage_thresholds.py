"""Usage thresholds: the first crossing of each alert in a period is told once, as
`usage.threshold_reached`, however the reports arrive."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests

from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.events import events_of
from tests.helpers.rows import make_active_subscription, make_plan

SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
METER = {"included": 10, "hard_limit": 12, "alerts": [50, 100, "hard_limit"]}


def metered(session):
    plan = make_plan(session, slug="pro", price_id="pri_01pro", meters={"api_calls": METER})
    now = datetime.now(UTC)
    make_active_subscription(
        session,
        plan_id=plan.id,
        price_id=plan.price_id,
        current_period_start=now - timedelta(days=3),
        current_period_end=now + timedelta(days=27),
    )
    session.commit()


def report(client, quantity, key):
    body = {"meter": "api_calls", "quantity": quantity, "idempotency_key": key}
    return client.post("/api/v1/accounts/acct_1/usage", json=body, headers=SERVICE)


def thresholds(app):
    return [
        (event["data"]["threshold"], event["data"]["level"], event["data"]["used"])
        for event in events_of(app, "acct_1")
        if event["type"] == "usage.threshold_reached"
    ]


def test_each_alert_is_told_once_when_first_crossed(app, client, session):
    metered(session)
    assert report(client, 4, "a").status_code == 200
    assert thresholds(app) == []
    assert report(client, 2, "b").status_code == 200
    assert thresholds(app) == [(50, 5, 6)]
    assert report(client, 6, "c").status_code == 200  # past 100% and at the cap at once
    assert thresholds(app) == [(50, 5, 6), (100, 10, 12), ("hard_limit", 12, 12)]
    assert report(client, 6, "c").status_code == 200  # the same report again
    assert report(client, 1, "d").status_code == 402
    (event,) = [e for e in events_of(app, "acct_1") if e["data"].get("threshold") == 50]
    assert event["data"]["included"] == 10
    assert event["data"]["period"]["starts_at"] < event["data"]["period"]["ends_at"]
    assert len(thresholds(app)) == 3


def test_many_reports_crossing_at_once_give_one_event(app, session, served):
    metered(session)

    def send(n: int) -> int:
        body = {"meter": "api_calls", "quantity": 1, "idempotency_key": f"k{n}"}
        return requests.post(
            f"{served}/api/v1/accounts/acct_1/usage", json=body, headers=SERVICE, timeout=30
        ).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(send, range(20)))
    assert (statuses.count(200), statuses.count(402)) == (12, 8)
    assert sorted(thresholds(app), key=lambda t: t[1]) == [
        (50, 5, 5),
        (100, 10, 10),
        ("hard_limit", 12, 12),
    ]
