"""The console's front-page figures against the table they count: accounts with access
agree with the access rule asked row by row, and MRR turns every interval into months."""

from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from billing_app.db import utcnow
from billing_app.models import Account, Subscription
from billing_app.services.console.overview import (
    monthly_recurring_revenue,
    standing_buckets,
    subscriptions_by_status,
    with_access,
)
from billing_app.services.entitlements.access import AccessPolicy, has_access
from tests.helpers.rows import make_account, make_plan, make_subscription

POLICY = AccessPolicy(past_due_grace=timedelta(days=7))
states = st.fixed_dictionaries(
    {
        "status": st.sampled_from(
            ["pending", "trialing", "active", "past_due", "paused", "canceled"]
        ),
        "scheduled_action": st.sampled_from([None, "cancel", "pause", "resume"]),
        "effective_days": st.one_of(st.none(), st.integers(-3, 3)),
        "period_days": st.one_of(st.none(), st.integers(-10, 3)),
        "linked": st.booleans(),
    }
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(states, max_size=12))
def test_the_grouped_counts_agree_with_the_rule_row_by_row(session, rows):
    session.execute(delete(Subscription))
    session.execute(delete(Account))
    now = utcnow()
    for number, state in enumerate(rows):
        account_id = f"acct_{number}" if state["linked"] else None
        if account_id:
            session.add(Account(id=account_id))
        session.add(
            Subscription(
                account_id=account_id,  # an unlinked one gives no account access
                status=state["status"],
                scheduled_action=state["scheduled_action"],
                scheduled_effective_at=(
                    now + timedelta(days=state["effective_days"])
                    if state["effective_days"] is not None
                    else None
                ),
                current_period_start=(
                    now + timedelta(days=state["period_days"])
                    if state["period_days"] is not None
                    else None
                ),
            )
        )
    session.commit()
    stored = session.scalars(select(Subscription)).all()
    expected = sum(1 for row in stored if row.account_id and has_access(row, now, POLICY))
    buckets = standing_buckets(session, now, POLICY)
    assert with_access(buckets, now, POLICY) == expected
    assert subscriptions_by_status(buckets) == dict(
        sorted(Counter(r.status for r in stored).items())
    )
    session.commit()


def test_mrr_turns_every_interval_into_months_per_currency(session):
    monthly = make_plan(session, slug="monthly", price_id="pri_m", amount="1000")
    yearly = make_plan(session, slug="yearly", price_id="pri_y", amount="12000", interval="year")
    quarterly = make_plan(
        session, slug="quarterly", price_id="pri_q", amount="2999", interval_count=3
    )
    euros = make_plan(session, slug="euros", price_id="pri_e", amount="500", currency="EUR")
    for number, (plan, quantity, status) in enumerate(
        [
            (monthly, 2, "active"),
            (yearly, 1, "active"),
            (quarterly, 1, "active"),
            (euros, 3, "active"),
            (monthly, 5, "trialing"),  # not paying yet
            (monthly, 7, "canceled"),
        ]
    ):
        make_account(session, f"acct_{number}")
        make_subscription(
            session, account_id=f"acct_{number}", plan_id=plan.id, quantity=quantity, status=status
        )
    # 2 x 10.00 + 120.00 / 12 + 29.99 / 3 = 20.00 + 10.00 + 9.9967 -> 3999.67 cents -> 4000
    buckets = standing_buckets(session, utcnow(), POLICY)
    assert monthly_recurring_revenue(session, buckets) == {"EUR": 1500, "USD": 4000}
