"""Changes by the clock alone (no webhook, no row written) are announced by the sweep, once:
a scheduled cancellation taking effect, a grace period ending, a grant running out, and a
trial's notice before it ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from billing_app import jobs
from billing_app.db import single_statement, utcnow
from billing_app.extensions import db
from billing_app.models import EventClock, Purchase, Subscription
from billing_app.services.entitlements.access import AccessPolicy
from billing_app.services.events import clock
from tests.helpers.events import entitlement_changes, events_of
from tests.helpers.rows import make_account, make_plan, make_purchase, make_subscription

NOTICE = timedelta(hours=72)


@pytest.fixture
def plan(session):
    plan = make_plan(session)
    make_account(session, "acct_1")
    return plan


def the_clock_passes(**values):
    """The moment a subscription's row names passes, as time would (no event, no write the
    outbox sees)."""
    with single_statement(db.engine) as connection:
        connection.execute(update(Subscription).values(**values))


def sweep(session, since=None):
    if since is not None:
        session.merge(EventClock(name=clock.CLOCK, swept_until=since))
        session.commit()
    return clock.sweep(session, utcnow(), AccessPolicy(), trial_notice=NOTICE)


def test_a_scheduled_cancellation_taking_effect_is_announced_once(app, session, plan):
    later = utcnow() + timedelta(days=3)
    make_subscription(
        session,
        account_id="acct_1",
        status="active",
        plan_id=plan.id,
        scheduled_action="cancel",
        scheduled_effective_at=later,
    )
    assert entitlement_changes(app, "acct_1")[-1]["after"]["access"] is True
    started = utcnow()
    the_clock_passes(scheduled_effective_at=started)
    assert sweep(session, since=started - timedelta(seconds=30))["accounts"] == 1
    change = entitlement_changes(app, "acct_1")[-1]
    assert (change["before"]["access"], change["after"]["access"]) == (True, False)
    assert change["cause"] == "clock"
    assert sweep(session)["accounts"] == 0  # the next sweep looks after this one
    count = len(events_of(app, "acct_1"))
    sweep(session, since=started - timedelta(seconds=30))  # even looking again: once
    assert len(events_of(app, "acct_1")) == count


def test_a_grace_period_ending_is_announced(app, session, plan):
    now = utcnow()
    make_subscription(
        session,
        account_id="acct_1",
        status="past_due",
        plan_id=plan.id,
        current_period_start=now - timedelta(days=1),
    )
    assert entitlement_changes(app, "acct_1")[-1]["after"]["access"] is True  # in grace
    the_clock_passes(current_period_start=now - timedelta(days=7, seconds=1))
    sweep(session, since=now - timedelta(seconds=30))
    assert entitlement_changes(app, "acct_1")[-1]["after"]["access"] is False


def test_a_grant_running_out_is_announced(app, session, plan):
    now = utcnow()
    make_purchase(
        session,
        "acct_1",
        "week-pass",
        ["priority"],
        completed_at=now - timedelta(days=6),
        granted_until=now + timedelta(days=1),
    )
    assert "priority" in entitlement_changes(app, "acct_1")[-1]["after"]["features"]
    with single_statement(db.engine) as connection:
        connection.execute(update(Purchase).values(granted_until=now))
    sweep(session, since=now - timedelta(seconds=30))
    assert entitlement_changes(app, "acct_1")[-1]["after"]["features"] == []


def test_a_trial_gets_its_notice_once(app, session, plan):
    ends = utcnow() + timedelta(days=2)
    make_subscription(
        session, account_id="acct_1", status="trialing", plan_id=plan.id, trial_ends_at=ends
    )
    assert sweep(session)["trial_notices"] == 1
    assert sweep(session)["trial_notices"] == 0
    notices = [e for e in events_of(app, "acct_1") if e["type"] == "subscription.trial_ending"]
    assert len(notices) == 1
    assert notices[0]["data"]["subscription"]["status"] == "trialing"


def test_the_scheduled_job_sweeps_under_its_lease(app, session, plan):
    assert jobs.sweep_event_clock(app) == {"accounts": 0, "trial_notices": 0}
    assert session.get(EventClock, clock.CLOCK) is not None
