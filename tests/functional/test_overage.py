"""Overage billed through Paddle once per (subscription, meter, closed period), even when
Paddle's answer to the charge is lost. Paddle is faked at the HTTP edge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import select

from billing_app import jobs
from billing_app.models import UsageCharge, UsageCounter, UsageSubject
from tests.helpers.config import PADDLE_BASE
from tests.helpers.payloads import paddle_error_body, paddle_subscription
from tests.helpers.rows import SAMPLE_SUBSCRIPTION, closed_period_counter, make_plan

CHARGE = f"{PADDLE_BASE}/subscriptions/{SAMPLE_SUBSCRIPTION}/charge"
GET_WITH_NEXT = f"{PADDLE_BASE}/subscriptions/{SAMPLE_SUBSCRIPTION}"
OVERAGE_PRICE = "pri_01overage"


def closed_period_with(session, used: int, *, closed_ago=timedelta(hours=2)) -> UsageCounter:
    """A counter of the pro plan (100 included, 10 calls per charged unit) for a period
    that ended `closed_ago`."""
    plan = make_plan(
        session,
        slug="pro",
        price_id="pri_01pro",
        meters={
            "api_calls": {"included": 100, "overage_price_id": OVERAGE_PRICE, "overage_unit": 10}
        },
    )
    return closed_period_counter(
        session, used=used, plan_id=plan.id, ended=datetime.now(UTC) - closed_ago
    )


def charges(session) -> list[UsageCharge]:
    session.expire_all()
    rows = list(session.scalars(select(UsageCharge)))
    session.commit()
    return rows


def sent_charges(paddle) -> list[dict]:
    return [json.loads(call.request.body) for call in paddle.calls if call.request.url == CHARGE]


def with_next_transaction(*lines: tuple[str, int]) -> dict:
    answer = paddle_subscription(id=SAMPLE_SUBSCRIPTION)
    items = [{"price_id": price, "quantity": quantity} for price, quantity in lines]
    answer["data"]["next_transaction"] = {"details": {"line_items": items}}
    return answer


def test_a_closed_periods_overage_is_charged_once(app, session, paddle):
    closed_period_with(session, used=131)  # 31 over, 10 a unit: 4 units
    paddle.post(CHARGE, json=paddle_subscription(id=SAMPLE_SUBSCRIPTION), status=201)
    assert jobs.bill_overage(app) == {"opened": 1, "confirmed": 1}
    assert sent_charges(paddle) == [
        {
            "effective_from": "next_billing_period",
            "items": [{"price_id": OVERAGE_PRICE, "quantity": 4}],
        }
    ]
    assert jobs.bill_overage(app) == {"opened": 0}  # nothing new: no second request
    (charge,) = charges(session)
    assert (charge.status, charge.quantity, charge.attempts) == ("confirmed", 4, 1)


def test_nothing_is_charged_for_an_open_period_or_none_over(app, session, paddle):
    closed_period_with(
        session, used=500, closed_ago=timedelta(minutes=30)
    )  # still takes late usage
    assert jobs.bill_overage(app) == {"opened": 0}
    session.execute(
        UsageCounter.__table__.update().values(
            used=100, period_end=datetime.now(UTC) - timedelta(days=1)
        )
    )
    session.commit()
    assert jobs.bill_overage(app) == {"opened": 0}
    assert charges(session) == []


def test_a_lost_answer_is_looked_for_at_paddle_before_anything_is_sent_again(app, session, paddle):
    closed_period_with(session, used=101)
    paddle.post(CHARGE, body=requests.exceptions.ReadTimeout("no answer"))  # applied, unseen
    assert jobs.bill_overage(app) == {"opened": 1, "submitting": 1}
    assert "answer lost" in charges(session)[0].error
    paddle.get(GET_WITH_NEXT, json=with_next_transaction(("pri_01pro", 1), (OVERAGE_PRICE, 1)))
    assert jobs.bill_overage(app) == {"opened": 0, "confirmed": 1}
    assert len(sent_charges(paddle)) == 1  # never sent twice
    assert charges(session)[0].status == "confirmed"


def test_a_lost_answer_that_paddle_never_applied_is_sent_again(app, session, paddle):
    closed_period_with(session, used=101)
    paddle.post(CHARGE, body=requests.exceptions.ConnectionError("reset"))
    assert jobs.bill_overage(app)["submitting"] == 1
    paddle.get(GET_WITH_NEXT, json=with_next_transaction(("pri_01pro", 1)))
    paddle.post(CHARGE, json=paddle_subscription(id=SAMPLE_SUBSCRIPTION), status=201)
    assert jobs.bill_overage(app) == {"opened": 0, "confirmed": 1}
    assert len(sent_charges(paddle)) == 2
    assert charges(session)[0].attempts == 2


def test_a_refused_charge_waits_for_its_backoff_then_is_dead_after_the_maximum(
    app, session, paddle
):
    app.config["USAGE_CHARGE_MAX_ATTEMPTS"] = 2
    closed_period_with(session, used=101)
    refusal = paddle_error_body("subscription_locked_pending_changes", "locked")
    paddle.post(CHARGE, json=refusal, status=400)
    assert jobs.bill_overage(app) == {"opened": 1, "failed": 1}
    charge = charges(session)[0]
    assert charge.next_attempt_at > datetime.now(UTC) and "locked" in charge.error
    assert jobs.bill_overage(app) == {"opened": 0}  # its backoff has not passed
    session.execute(UsageCharge.__table__.update().values(next_attempt_at=datetime.now(UTC)))
    session.commit()
    assert jobs.bill_overage(app) == {"opened": 0, "dead": 1}


def test_the_usage_commands_bill_and_list(app, session, paddle):
    closed_period_with(session, used=111)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["billing", "usage", "bill", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output == "Dry run: 1 charge(s) would be opened; nothing sent.\n"
    assert charges(session) == []
    paddle.post(CHARGE, json=paddle_subscription(id=SAMPLE_SUBSCRIPTION), status=201)
    billed = runner.invoke(args=["billing", "usage", "bill"])
    assert billed.exit_code == 0, billed.output
    assert billed.output == "Overage billing: 1 charge(s) opened; sent to Paddle: confirmed 1.\n"
    listed = runner.invoke(args=["billing", "usage", "charges", "--status", "confirmed"])
    assert f"2 x {OVERAGE_PRICE} confirmed" in listed.output, listed.output


def test_billing_usage_without_paddle_says_so_and_fails(app, session, monkeypatch):
    closed_period_with(session, used=111)
    monkeypatch.setitem(app.config, "PADDLE_API_KEY", None)
    runner = app.test_cli_runner()
    billed = runner.invoke(args=["billing", "usage", "bill"])
    assert billed.exit_code == 1
    assert "Paddle is not configured (set PADDLE_API_KEY)" in billed.output
    assert charges(session) == []  # nothing opened that could not be sent
    assert runner.invoke(args=["billing", "usage", "bill", "--dry-run"]).exit_code == 0


def test_old_usage_events_go_once_their_period_is_billed(app, session):
    from billing_app.models import UsageEvent

    app.config["USAGE_RETENTION_DAYS"] = 30
    old_end = datetime.now(UTC) - timedelta(days=40)

    def event(key: str, period_end: datetime) -> UsageEvent:
        return UsageEvent(
            idempotency_key=key,
            account_id="acct_1",
            meter="api_calls",
            quantity=1,
            occurred_at=period_end - timedelta(days=1),
            period_start=period_end - timedelta(days=30),
            period_end=period_end,
        )

    session.add_all([event("billed", old_end), event("recent", datetime.now(UTC))])
    unbilled_end = old_end - timedelta(days=30)
    session.add(event("unbilled", unbilled_end))
    session.add(
        UsageCharge(
            account_id="acct_1",
            paddle_subscription_id=SAMPLE_SUBSCRIPTION,
            meter="api_calls",
            period_start=unbilled_end - timedelta(days=30),
            period_end=unbilled_end,
            used=200,
            price_id=OVERAGE_PRICE,
            quantity=10,
            effective_from="next_billing_period",
            status="failed",
        )
    )
    for subject, ends in (("old-user", unbilled_end), ("new-user", datetime.now(UTC))):
        session.add(
            UsageSubject(
                account_id="acct_1",
                meter="active_users",
                period_start=ends - timedelta(days=30),
                period_end=ends,
                subject=subject,
            )
        )
    session.commit()
    # One row on SQLite; on PostgreSQL whole months (with any empty ones earlier tests left)
    assert jobs.prune_usage_events(app) >= 1
    session.expire_all()
    kept = {row.idempotency_key for row in session.scalars(select(UsageEvent))}
    assert kept == {"recent", "unbilled"}  # the unbilled period's events wait for its charge
    subjects = {row.subject for row in session.scalars(select(UsageSubject))}
    assert subjects == {"new-user"}
