"""POST /api/v1/usage/batch: many reports in one body, each judged as a single report would
be; exact at a hard limit when batches and single reports race."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import func, select

from billing_app.models import UsageCounter, UsageEvent
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.events import events_of
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
    """Each account's counters, added up."""
    session.expire_all()
    rows = session.execute(select(UsageCounter.account_id, UsageCounter.used)).all()
    session.commit()
    totals: dict[str, int] = {}
    for account, used in rows:
        totals[account] = totals.get(account, 0) + used
    return totals


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


def test_uncapped_reports_are_counted_together_and_answered_as_if_alone(app, client, session):
    plan = make_plan(
        session,
        slug="flow",
        price_id="pri_01flow",
        meters={
            "events": {"included": 10, "alerts": [100]},
            "runs": {"aggregation": "count", "included": 5},
        },
    )
    now = datetime.now(UTC)
    make_account(session, "acct_1")
    make_subscription(
        session,
        account_id="acct_1",
        status="active",
        plan_id=plan.id,
        price_id=plan.price_id,
        paddle_subscription_id="sub_flow",
        current_period_start=now - timedelta(days=3),
        current_period_end=now + timedelta(days=27),
    )
    assert batch(client, entry(meter="events", quantity=4, key="x0")).status_code == 200
    answer = batch(
        client,
        entry(meter="events", quantity=3, key="x1"),
        entry(meter="runs", quantity=50, key="x2"),
        entry(meter="events", quantity=5, key="x3"),
        entry(meter="events", quantity=4, key="x0"),  # recorded before
        entry(meter="events", quantity=3, key="x1"),  # twice in this batch
        entry(meter="nothing", key="x4"),
    )
    results = answer.json["results"]
    assert [(r["status"], r["duplicate"], (r["usage"] or {}).get("used")) for r in results] == [
        (200, False, 7),
        (200, False, 1),
        (200, False, 12),
        (200, True, 4),
        (200, True, 7),
        (422, False, None),
    ]
    assert counted(session) == {"acct_1": 13}  # events 12 + runs 1, summed by account here
    reached = [
        event["data"]
        for event in events_of(app, "acct_1")
        if event["type"] == "usage.threshold_reached"
    ]
    assert [(data["meter"], data["used"]) for data in reached] == [("events", 12)]
    again = batch(client, entry(meter="events", quantity=5, key="x3"))
    assert again.json["results"][0]["usage"]["used"] == 12


def test_the_answer_is_written_as_the_documented_schema_writes_it(client, session):
    from billing_app.api.schemas import UsageBatchSchema

    metered(session, "acct_1")
    moment = datetime.now(UTC).isoformat()
    answer = batch(
        client,
        {**entry(quantity=3, key="a"), "occurred_at": moment, "subject": "user-1"},
        entry(quantity=4, key="a"),
        entry(meter="storage", key="e"),
        entry(quantity=500, key="f"),
    )
    assert answer.status_code == 200
    schema = UsageBatchSchema()
    assert schema.dump(schema.load(answer.json)) == answer.json
    assert [r["status"] for r in answer.json["results"]] == [200, 409, 422, 402]
    refused = batch(client, {**entry(key="g"), "quantity": True})  # the schema judges it
    assert refused.status_code == 422
    assert refused.json["errors"] == {"reports": {"0": {"quantity": ["Not a valid integer."]}}}
