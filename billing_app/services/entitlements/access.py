"""Who may use the product now: the one access rule, used by every read of it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol


class SubscriptionState(Protocol):
    """What the rule reads: a `Subscription` row, or a lighter row with the same fields."""

    status: str
    current_period_start: datetime | None
    scheduled_action: str | None
    scheduled_effective_at: datetime | None


class PlanGrant(Protocol):
    slug: str
    features: list[str]
    limits: dict[str, Any]


@dataclass(frozen=True)
class AccessPolicy:
    past_due_grace: timedelta = timedelta(days=7)

    @classmethod
    def of(cls, config) -> AccessPolicy:
        """The policy the configuration sets (PAST_DUE_GRACE_DAYS)."""
        return cls(past_due_grace=timedelta(days=config["PAST_DUE_GRACE_DAYS"]))


@dataclass(frozen=True)
class Verdict:
    """The rule's answer and why, in words an operator reads (the console shows both)."""

    granted: bool
    reason: str
    until: datetime | None = None  # when a granted access ends by the clock, if it is known


NO_SUBSCRIPTION_VERDICT = Verdict(False, "no subscription")
STOP_TOOK_EFFECT = Verdict(False, "a scheduled pause or cancellation has taken effect")
IN_GOOD_STANDING = {
    "active": Verdict(True, "active"),
    "trialing": Verdict(True, "trialing"),
}
PAST_DUE_IN_GRACE = Verdict(True, "past due, within the grace period")
PAST_DUE_GRACE_OVER = Verdict(False, "past due, the grace period is over")
NO_ACCESS_WHEN = {
    "pending": Verdict(False, "checkout not completed yet"),
    "paused": Verdict(False, "paused"),
    "canceled": Verdict(False, "canceled"),
}


def holds_what_was_paid_for(
    held_until: datetime | None, period_start: datetime | None, now: datetime
) -> bool:
    """A change at period end reached Paddle shortly before the renewal: until the new
    period begins (by the clock, or by Paddle's renewal arriving first), the account keeps
    the plan and seats it paid for, not the new ones Paddle already shows."""
    if held_until is None or now >= held_until:
        return False
    return period_start is None or period_start < held_until


def has_access(subscription: SubscriptionState | None, now: datetime, policy: AccessPolicy) -> bool:
    """Does this subscription entitle its account to the product at `now`?"""
    return judge_access(subscription, now, policy).granted


def judge_access(
    subscription: SubscriptionState | None, now: datetime, policy: AccessPolicy
) -> Verdict:
    """The access rule, and the reason for its answer:

    - active and trialing: yes, until a scheduled pause or cancellation takes effect (even
      if the webhook that says so is late);
    - past_due: yes, for a grace period from the start of the period being collected;
    - paused and canceled: no (Paddle sets these statuses only once they take effect; until
      then the subscription is active with a scheduled change, covered above);
    - pending (a checkout not paid yet) or no subscription: no.
    """
    if subscription is None:
        return NO_SUBSCRIPTION_VERDICT
    status = subscription.status
    if status in IN_GOOD_STANDING:
        if _scheduled_stop_passed(subscription, now):
            return STOP_TOOK_EFFECT
        return IN_GOOD_STANDING[status]
    if status == "past_due":
        started = subscription.current_period_start
        if started is None or now >= started + policy.past_due_grace:
            return PAST_DUE_GRACE_OVER
        if _scheduled_stop_passed(subscription, now):
            return STOP_TOOK_EFFECT
        return replace(PAST_DUE_IN_GRACE, until=started + policy.past_due_grace)
    return NO_ACCESS_WHEN.get(status, Verdict(False, status))


def clock_changes(
    subscription: SubscriptionState | None, now: datetime, policy: AccessPolicy
) -> list[datetime]:
    """The moments after `now` at which `judge_access` may answer otherwise with nothing
    else changed: a scheduled pause or cancellation taking effect, a grace period ending."""
    if subscription is None or subscription.status not in {*IN_GOOD_STANDING, "past_due"}:
        return []
    moments = []
    if subscription.scheduled_action in {"cancel", "pause"}:
        moments.append(subscription.scheduled_effective_at)
    if subscription.status == "past_due" and subscription.current_period_start is not None:
        moments.append(subscription.current_period_start + policy.past_due_grace)
    return [moment for moment in moments if moment is not None and moment > now]


def _scheduled_stop_passed(subscription: SubscriptionState, now: datetime) -> bool:
    return (
        subscription.scheduled_action in {"cancel", "pause"}
        and subscription.scheduled_effective_at is not None
        and subscription.scheduled_effective_at <= now
    )


@dataclass(frozen=True)
class Entitlements:
    access: bool
    plan: str | None
    status: str
    features: list[str] = field(default_factory=list)
    limits: dict[str, Any] = field(default_factory=dict)
    seats: int | None = None
    grants: list[dict[str, Any]] = field(default_factory=list)  # one-time purchases'
    # When this answer may next change by the clock alone, with no event: None, not by the
    # clock. A cache of it re-reads the account then.
    recheck_at: datetime | None = None


def plan_entitlements(
    subscription: SubscriptionState | None,
    plan: PlanGrant | None,
    now: datetime,
    policy: AccessPolicy,
    free: PlanGrant | None = None,
) -> Entitlements:
    """What the account may use: the plan's features and limits while it has access; else
    the free plan's, if there is one (`access` stays false: it says paid access)."""
    if subscription is None:
        if free is not None:
            return Entitlements(False, free.slug, "free", list(free.features), dict(free.limits))
        return Entitlements(access=False, plan=None, status="free")
    access = has_access(subscription, now, policy)
    if not access and free is not None:
        return Entitlements(
            False, free.slug, subscription.status, list(free.features), dict(free.limits)
        )
    return Entitlements(
        access=access,
        plan=plan.slug if plan else None,
        status=subscription.status,
        features=list(plan.features or []) if plan and access else [],
        limits=dict(plan.limits or {}) if plan and access else {},
        seats=getattr(subscription, "quantity", None) if access else None,
    )
