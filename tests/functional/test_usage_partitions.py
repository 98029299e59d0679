"""Usage events on PostgreSQL: a partition per month of their period's start, made ahead
by a job, dropped whole by retention once every period in it is billed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from billing_app import jobs
from billing_app.models import UsageCharge, UsageCounter, UsageEvent
from billing_app.services.usage.partitions import Month, partitions
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.rows import SAMPLE_SUBSCRIPTION, make_active_subscription, make_plan

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("no_months")]


@pytest.fixture
def no_months(app, session):
    """Only the default partition, whatever earlier tests' schedulers made."""
    for month in partitions(session):
        session.execute(text(f"DROP TABLE {month.name}"))
    session.commit()


def subscribe(session):
    """acct_1 on a plan metering api_calls, its period begun three days ago."""
    plan = make_plan(
        session, slug="pro", price_id="pri_01pro", meters={"api_calls": {"included": 100}}
    )
    now = datetime.now(UTC)
    return make_active_subscription(
        session,
        plan_id=plan.id,
        price_id=plan.price_id,
        current_period_start=now - timedelta(days=3),
        current_period_end=now + timedelta(days=27),
    )


def report(client, quantity: int, key: str):
    body = {"meter": "api_calls", "quantity": quantity, "idempotency_key": key}
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    return client.post("/api/v1/accounts/acct_1/usage", json=body, headers=headers)


def where_kept(session, key: str) -> str:
    """The partition an event's row is in."""
    return session.scalar(
        select(text("tableoid::regclass::text"))
        .select_from(UsageEvent)
        .where(UsageEvent.idempotency_key == key)
    )


def tables(session) -> set[str]:
    names = session.scalars(
        text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'usage_events_%'")
    )
    return set(names)


def test_reports_land_in_their_months_partition_once_the_job_made_it(app, client, session):
    subscription = subscribe(session)
    its_month = Month.of(subscription.current_period_start)
    this_month = Month.of(datetime.now(UTC))
    assert report(client, 3, key="before").status_code == 200
    assert (
        where_kept(session, "before") == "usage_events_default"
    )  # no month yet: kept all the same
    session.rollback()

    made = jobs.make_usage_partitions(app)
    ahead = [this_month, this_month.next(), this_month.next().next()]
    assert set(made) == {month.name for month in [its_month, *ahead]}
    assert where_kept(session, "before") == its_month.name  # moved into its month
    session.rollback()
    assert jobs.make_usage_partitions(app) == []  # made once

    assert report(client, 4, key="after").status_code == 200
    assert where_kept(session, "after") == its_month.name
    again = report(client, 3, key="before")
    assert (again.status_code, again.json["used"]) == (200, 3)  # still found, still once
    assert session.scalar(select(UsageCounter.used)) == 7


def old_period(session, key: str, start: datetime, *, open_charge: bool) -> None:
    """A 30-day period starting at `start`, with its counter, an event and (maybe) an
    overage charge still to reach Paddle."""
    end = start + timedelta(days=30)
    where = {"account_id": "acct_1", "meter": "api_calls", "period_start": start, "period_end": end}
    session.add(UsageCounter(**where, used=1))
    session.add(UsageEvent(**where, idempotency_key=key, quantity=1, occurred_at=start))
    if open_charge:
        session.add(
            UsageCharge(
                **where,
                paddle_subscription_id=SAMPLE_SUBSCRIPTION,
                used=200,
                price_id="pri_01overage",
                quantity=10,
                effective_from="next_billing_period",
                status="failed",
            )
        )


def test_retention_drops_a_billed_month_whole_and_keeps_one_with_a_charge_open(app, session):
    app.config["USAGE_RETENTION_DAYS"] = 30
    now = datetime.now(UTC)
    billed, unbilled = now - timedelta(days=100), now - timedelta(days=160)
    old_period(session, "billed", billed, open_charge=False)
    old_period(session, "unbilled", unbilled, open_charge=True)
    old_period(session, "recent", now - timedelta(days=10), open_charge=False)
    session.commit()
    jobs.make_usage_partitions(app)
    before = tables(session)
    session.rollback()

    assert jobs.prune_usage_events(app) == 1
    gone = before - tables(session)
    assert gone == {Month.of(billed).name}
    kept = set(session.scalars(select(UsageEvent.idempotency_key)))
    assert kept == {"unbilled", "recent"}
    assert session.scalar(select(func.count(UsageCounter.id))) == 3  # the figures stay


def test_the_command_makes_the_months_once(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["billing", "usage", "partitions"])
    assert first.exit_code == 0 and Month.of(datetime.now(UTC)).name in first.output
    again = runner.invoke(args=["billing", "usage", "partitions"])
    assert again.output.strip() == "No partition to make."
