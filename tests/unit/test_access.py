"""The access rule: which subscriptions entitle their account to the product now."""

from datetime import UTC, datetime, timedelta

import pytest

from billing_app.models import Plan, Subscription
from billing_app.services.entitlements.access import (
    AccessPolicy,
    has_access,
    judge_access,
    plan_entitlements,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
POLICY = AccessPolicy(past_due_grace=timedelta(days=7))
HOUR = timedelta(hours=1)


def subscription(**fields):
    return Subscription(**{"status": "active", **fields})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "active"}, True),
        ({"status": "trialing"}, True),
        ({"status": "pending"}, False),
        (
            {
                "status": "active",
                "scheduled_action": "cancel",
                "scheduled_effective_at": NOW + HOUR,
            },
            True,
        ),
        (
            {
                "status": "active",
                "scheduled_action": "cancel",
                "scheduled_effective_at": NOW - HOUR,
            },
            False,
        ),
        ({"status": "active", "scheduled_action": "pause", "scheduled_effective_at": NOW}, False),
        (
            {
                "status": "active",
                "scheduled_action": "resume",
                "scheduled_effective_at": NOW - HOUR,
            },
            True,
        ),
        ({"status": "past_due", "current_period_start": NOW - timedelta(days=6)}, True),
        ({"status": "past_due", "current_period_start": NOW - timedelta(days=8)}, False),
        ({"status": "past_due"}, False),
        ({"status": "paused", "paused_at": NOW - HOUR}, False),
        ({"status": "paused", "paused_at": NOW + HOUR}, False),
        ({"status": "canceled", "canceled_at": NOW - HOUR}, False),
        ({"status": "canceled", "canceled_at": NOW + HOUR}, False),  # time-travelled clocks
        ({"status": "canceled"}, False),
    ],
)
def test_access_by_state(fields, expected):
    assert has_access(subscription(**fields), NOW, POLICY) is expected


def test_no_subscription_is_the_free_tier():
    entitlements = plan_entitlements(None, None, NOW, POLICY)
    assert (entitlements.access, entitlements.status, entitlements.plan) == (False, "free", None)


def test_entitlements_carry_the_plans_features_only_with_access():
    plan = Plan(slug="team", features=["sso"], limits={"seats": 5})
    live = plan_entitlements(subscription(), plan, NOW, POLICY)
    assert (live.access, live.plan, live.features, live.limits) == (
        True,
        "team",
        ["sso"],
        {"seats": 5},
    )
    over = plan_entitlements(subscription(status="canceled"), plan, NOW, POLICY)
    assert (over.access, over.plan, over.features, over.limits) == (False, "team", [], {})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"status": "active"}, "active"),
        ({"status": "trialing"}, "trialing"),
        ({"status": "pending"}, "checkout not completed yet"),
        (
            {"status": "active", "scheduled_action": "cancel", "scheduled_effective_at": NOW},
            "a scheduled pause or cancellation has taken effect",
        ),
        (
            {"status": "past_due", "current_period_start": NOW - timedelta(days=6)},
            "past due, within the grace period",
        ),
        (
            {"status": "past_due", "current_period_start": NOW - timedelta(days=8)},
            "past due, the grace period is over",
        ),
        ({"status": "paused"}, "paused"),
        ({"status": "canceled"}, "canceled"),
    ],
)
def test_each_answer_says_why(fields, reason):
    verdict = judge_access(subscription(**fields), NOW, POLICY)
    assert verdict.reason == reason
    assert verdict.granted is has_access(subscription(**fields), NOW, POLICY)
    assert judge_access(None, NOW, POLICY).reason == "no subscription"


def test_a_grace_period_says_until_when():
    started = NOW - timedelta(days=6)
    verdict = judge_access(
        subscription(status="past_due", current_period_start=started), NOW, POLICY
    )
    assert verdict.granted and verdict.until == started + timedelta(days=7)
    assert judge_access(subscription(status="active"), NOW, POLICY).until is None
