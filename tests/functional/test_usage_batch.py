"""POST /api/v1/usage/batch: many reports in one body, each judged as a single report would
be; exact at a hard limit when batches and single reports race."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import func, select

from billing_app.models import UsageCounter, UsageEvent
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.rows import make_account, make_plan, make_subscription

SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
METER = {"included": 100, "hard_limit": 150}


def metered(session, *accounts):
    plan = make_plan(session, slug="pro", price_id="pri_01pro", meters={"api_calls": METER})
    now = datetime.now(UTC)
    for number, account in enumerate(accounts):
        make_account(session, account)
        make_subscription(
            session,
            account_id=account,
            status="active",
            plan_id=plan.id,
            price_id=plan.price_id,
            paddle_subscription_id=f"sub_batch{number}",
            current_period_start=now - timedelta(days=3),
            current_period_end=now + timedelta(days=27),
        )


def entry(account="acct_1", quantity=1, key="k", meter="api_calls", **extra):
    return {"account_id": account, "meter": meter, "quantity": quantity, "idempotency_key": key}


def batch(client, *reports):
    return client.post("/api/v1/usage/batch", json={"reports": list(reports)}, headers=SERVICE)


def counted(session) -> dict[str, int]:
    session.expire_all()
    rows = session.execute(select(UsageCounter.account_id, UsageCounter.used)).all()
    session.commit()
    return dict(rows)


def test_a_batch_mixing_every_outcome_answers_each_as_alone(client, session):
    metered(session, "acct_1", "acct_2")
    old = (datetime.now(UTC) - timedelta(days=90)).isoformat()
    answer = batch(
        client,
        entry(quantity=100, key="a"),
        entry("acct_2", quantity=5, key="b"),
        entry(quantity=100, key="a"),  # the same report again
        entry(quantity=60, key="c"),  # past the cap of 150
        entry(quantity=7, key="b"),  # acct_2's key b, for acct_1
        {**entry(key="d"), "occurred_at": old},  # a period long closed
        entry(meter="storage", key="e"),
        entry(quantity=43, key="f"),  # exactly to the cap (100 + 7 + 43)
    )
    assert answer.status_code == 200, answer.json
    results = answer.json["results"]
    # Applied by account: acct_1's reports first, so its use of key b is the first.
    assert [(r["status"], r["error"], r["duplicate"]) for r in results] == [
        (200, None, False),
        (409, "idempotency_key_conflict", False),
        (200, None, True),
        (402, "quota_exceeded", False),
        (200, None, False),
        (409, "period_closed", False),
        (422, "validation_error", False),
        (200, None, False),
    ]
    assert results[2]["usage"] == results[0]["usage"]
    assert results[7]["usage"]["used"] == 150
    assert results[6]["errors"] == {"meter": ["not a meter of the plan"]}
    assert answer.json["counts"] == {
        "recorded": 3,
        "duplicate": 1,
        "refused": 1,
        "conflict": 2,
        "invalid": 1,
    }
    assert counted(session) == {"acct_1": 150, "acct_2": 0}  # acct_2's count taken back
    again = batch(client, entry(quantity=100, key="a"), entry(quantity=7, key="b"))
    assert [r["duplicate"] for r in again.json["results"]] == [True, True]
    assert counted(session) == {"acct_1": 150, "acct_2": 0}


def test_a_malformed_batch_records_nothing(client, session):
    metered(session, "acct_1")
    answer = batch(client, entry(key="a"), {"account_id": "acct_1", "meter": "api_calls"})
    assert answer.status_code == 422
    assert batch(client).status_code == 422  # no reports
    too_many = batch(client, *[entry(key=f"k{n}") for n in range(1001)])
    assert too_many.status_code == 422
    assert counted(session) == {}
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(UsageEvent)) == 0


def test_a_batch_needs_the_service_token(client, session):
    answer = client.post("/api/v1/usage/batch", json={"reports": "nonsense"})
    assert answer.status_code == 401


def test_batches_racing_single_reports_admit_exactly_what_fits(session, served):
    metered(session, "acct_1")

    def send_batch(start: int) -> list[int]:
        reports = [entry(key=f"b{start + n}") for n in range(50)]
        answer = requests.post(
            f"{served}/api/v1/usage/batch", json={"reports": reports}, headers=SERVICE, timeout=60
        )
        return [result["status"] for result in answer.json()["results"]]

    def send_one(n: int) -> list[int]:
        body = {"meter": "api_calls", "quantity": 1, "idempotency_key": f"s{n}"}
        answer = requests.post(
            f"{served}/api/v1/accounts/acct_1/usage", json=body, headers=SERVICE, timeout=60
        )
        return [answer.status_code]

    with ThreadPoolExecutor(8) as pool:
        batches = [pool.submit(send_batch, start) for start in range(0, 200, 50)]
        singles = [pool.submit(send_one, n) for n in range(100)]
        statuses = [s for f in batches + singles for s in f.result()]
    assert (statuses.count(200), statuses.count(402)) == (150, 150)
    assert counted(session) == {"acct_1": 150}
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(UsageEvent)) == 150
