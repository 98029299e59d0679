"""Meters that aggregate more than sums: count, max, latest and unique_count, each with its
limits, exact under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import select

from billing_app.models import UsageCounter
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.rows import make_active_subscription, make_plan

SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
METERS = {
    "jobs": {"aggregation": "count", "included": 2, "hard_limit": 3},
    "seats": {"aggregation": "max", "included": 5, "hard_limit": 10},
    "storage_gb": {"aggregation": "latest", "included": 5, "hard_limit": 10},
    "active_users": {"aggregation": "unique_count", "included": 2, "hard_limit": 3},
}
NOW = datetime.now(UTC)


def metered(session):
    plan = make_plan(session, slug="pro", price_id="pri_01pro", meters=METERS)
    make_active_subscription(
        session,
        plan_id=plan.id,
        price_id=plan.price_id,
        current_period_start=NOW - timedelta(days=3),
        current_period_end=NOW + timedelta(days=27),
    )
    session.commit()


def report(client, meter, quantity=1, key=None, **extra):
    body = {"meter": meter, "quantity": quantity, "idempotency_key": key or f"{meter}-{quantity}"}
    return client.post("/api/v1/accounts/acct_1/usage", json={**body, **extra}, headers=SERVICE)


def used(session, meter) -> int:
    session.expire_all()
    value = session.scalar(select(UsageCounter.used).where(UsageCounter.meter == meter))
    session.commit()
    return value


def test_count_counts_reports_whatever_their_quantity(client, session):
    metered(session)
    assert report(client, "jobs", 40, key="j1").json["used"] == 1
    assert report(client, "jobs", 40, key="j2").json["used"] == 2
    third = report(client, "jobs", 1, key="j3").json
    assert (third["used"], third["overage"]) == (3, 1)
    refused = report(client, "jobs", 1, key="j4")
    assert (refused.status_code, refused.json["error"]) == (402, "quota_exceeded")
    assert used(session, "jobs") == 3


def test_max_keeps_the_peak_and_refuses_a_value_above_the_cap(client, session):
    metered(session)
    for key, value in (("s1", 3), ("s2", 7), ("s3", 5)):
        assert report(client, "seats", value, key=key).status_code == 200
    figures = report(client, "seats", 6, key="s4").json
    assert (figures["used"], figures["overage"]) == (7, 2)
    refused = report(client, "seats", 11, key="s5")
    assert refused.status_code == 402 and "is above the hard limit" in refused.json["message"]
    assert report(client, "seats", 7, key="s2").json["used"] == 7  # a repeat: the first answer
    assert used(session, "seats") == 7


def test_latest_keeps_the_last_value_reported_by_when_it_happened(client, session):
    metered(session)
    at = lambda hours: (NOW - timedelta(hours=hours)).isoformat()  # noqa: E731
    assert report(client, "storage_gb", 4, key="g1", occurred_at=at(3)).json["used"] == 4
    assert report(client, "storage_gb", 9, key="g2", occurred_at=at(1)).json["used"] == 9
    late = report(client, "storage_gb", 6, key="g3", occurred_at=at(2)).json
    assert late["used"] == 9  # older than the 9: it does not replace it
    assert report(client, "storage_gb", 2, key="g4", occurred_at=at(0)).json["used"] == 2
    assert report(client, "storage_gb", 12, key="g5").status_code == 402
    assert used(session, "storage_gb") == 2


def test_unique_count_counts_each_subject_once_and_a_known_one_past_the_cap(client, session):
    metered(session)
    for key, user in (("u1", "ana"), ("u2", "bo"), ("u3", "ana"), ("u4", "cy")):
        assert report(client, "active_users", key=key, subject=user).status_code == 200
    assert used(session, "active_users") == 3
    new = report(client, "active_users", key="u5", subject="dee")
    assert (new.status_code, new.json["error"]) == (402, "quota_exceeded")
    known = report(client, "active_users", key="u6", subject="bo")
    assert (known.status_code, known.json["used"]) == (200, 3)
    missing = report(client, "active_users", key="u7")
    assert (missing.status_code, list(missing.json["errors"])) == (422, ["subject"])
    other = report(client, "active_users", key="u1", subject="zed")  # u1 was ana's
    assert (other.status_code, other.json["error"]) == (409, "idempotency_key_conflict")
    assert used(session, "active_users") == 3


def test_new_subjects_racing_at_the_cap_admit_exactly_what_fits(session, served):
    metered(session)

    def send(n: int) -> tuple[str, int]:
        user = f"user{n % 12}"
        body = {"meter": "active_users", "quantity": 1, "idempotency_key": f"r{n}", "subject": user}
        answer = requests.post(
            f"{served}/api/v1/accounts/acct_1/usage", json=body, headers=SERVICE, timeout=30
        )
        return user, answer.status_code

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(send, range(48)))
    admitted = {user for user, status in outcomes if status == 200}
    refused = {user for user, status in outcomes if status == 402}
    assert len(admitted) == 3 and not admitted & refused
    assert used(session, "active_users") == 3


def test_a_batch_takes_every_aggregation(client, session):
    metered(session)
    reports = [
        {"account_id": "acct_1", "meter": "seats", "quantity": 4, "idempotency_key": "b1"},
        {"account_id": "acct_1", "meter": "seats", "quantity": 2, "idempotency_key": "b2"},
        {"account_id": "acct_1", "meter": "jobs", "quantity": 9, "idempotency_key": "b3"},
        {
            "account_id": "acct_1",
            "meter": "active_users",
            "quantity": 1,
            "idempotency_key": "b4",
            "subject": "ana",
        },
        {"account_id": "acct_1", "meter": "seats", "quantity": 4, "idempotency_key": "b1"},
    ]
    answer = client.post("/api/v1/usage/batch", json={"reports": reports}, headers=SERVICE)
    results = answer.json["results"]
    assert [(r["usage"]["meter"], r["usage"]["used"]) for r in results] == [
        ("seats", 4),
        ("seats", 4),
        ("jobs", 1),
        ("active_users", 1),
        ("seats", 4),
    ]
    assert results[4]["duplicate"] is True
    assert answer.json["counts"]["recorded"] == 4
