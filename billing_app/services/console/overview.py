"""The figures on the console's front page, each one aggregate query (the page must stay
fast with hundreds of thousands of subscriptions)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from sqlalchemy import and_, case, func, select, text
from sqlalchemy.orm import Session

from billing_app.models import (
    Adjustment,
    Plan,
    ReconcileRun,
    Subscription,
    Transaction,
    WebhookEvent,
)
from billing_app.services.entitlements.access import AccessPolicy, has_access
from billing_app.services.webhooks import inbox

GROUPING_WORK_MEM = "32MB"
MONTHS_PER_INTERVAL = {
    "day": Fraction(12, 365),
    "week": Fraction(12, 52),
    "month": Fraction(1),
    "year": Fraction(12),
}


@dataclass(frozen=True)
class Overview:
    subscriptions_by_status: dict[str, int]
    accounts_with_access: int
    mrr_by_currency: dict[str, int]  # minor units a month
    webhook_backlog: int
    oldest_unapplied_seconds: float | None
    dead_letters: int
    last_reconciliation: ReconcileRun | None
    chargebacks: list[tuple[Adjustment, str | None]]  # with the account, when known


def overview(session: Session, now: datetime, policy: AccessPolicy) -> Overview:
    backlog, oldest = inbox.backlog(session)
    buckets = standing_buckets(session, now, policy)
    return Overview(
        subscriptions_by_status=subscriptions_by_status(buckets),
        accounts_with_access=with_access(buckets, now, policy),
        mrr_by_currency=monthly_recurring_revenue(session, buckets),
        webhook_backlog=backlog,
        oldest_unapplied_seconds=oldest,
        dead_letters=session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "dead")
        ),
        last_reconciliation=session.scalars(
            select(ReconcileRun).order_by(ReconcileRun.started_at.desc()).limit(1)
        ).first(),
        chargebacks=recent_chargebacks(session),
    )


def recent_chargebacks(session: Session, limit: int = 10) -> list[tuple[Adjustment, str | None]]:
    """The newest chargebacks, whatever they were against: money taken back by a bank
    needs an operator even where access follows by itself."""
    rows = session.execute(
        select(Adjustment, Transaction.account_id)
        .outerjoin(
            Transaction, Transaction.paddle_transaction_id == Adjustment.paddle_transaction_id
        )
        .where(Adjustment.action == "chargeback")
        .order_by(Adjustment.created_at.desc())
        .limit(limit)
    )
    return [(adjustment, account_id) for adjustment, account_id in rows]


@dataclass(frozen=True)
class _Standing:
    """A stand-in for every subscription of one bucket: the access rule reads only these
    fields, and only how they compare with now, so one member answers for all of them."""

    status: str
    current_period_start: datetime | None
    scheduled_action: str | None
    scheduled_effective_at: datetime | None


@dataclass(frozen=True)
class Bucket:
    member: _Standing
    linked: bool  # owned by an account (an unlinked one gives no one access)
    plan_id: int | None
    count: int
    seats: int


def standing_buckets(session: Session, now: datetime, policy: AccessPolicy) -> list[Bucket]:
    """Every subscription, counted (and its seats summed) in one scan by its plan and by
    what the access rule reads of it: its status and scheduled action, whether that
    action's time has passed, and where its period began against the grace period."""
    grace_began = now - policy.past_due_grace
    stop_passed = case(
        (
            and_(
                Subscription.scheduled_effective_at.is_not(None),
                Subscription.scheduled_effective_at <= now,
            ),
            1,
        ),
        else_=0,
    )
    period = case(
        (Subscription.current_period_start.is_(None), 0),
        (Subscription.current_period_start > grace_began, 1),
        else_=2,
    )
    linked = case((Subscription.account_id.is_(None), 0), else_=1)
    keys = (
        Subscription.status,
        Subscription.scheduled_action,
        stop_passed,
        period,
        linked,
        Subscription.plan_id,
    )
    if session.get_bind().dialect.name == "postgresql":
        # PostgreSQL cannot tell that these expressions make a few dozen groups, and sorts
        # every row to disk to group them; with room for a hash table it scans once (about
        # half the time at 100,000 rows). For this transaction only.
        session.execute(text(f"SET LOCAL work_mem = '{GROUPING_WORK_MEM}'"))
    rows = session.execute(
        select(*keys, func.count(), func.sum(Subscription.quantity)).group_by(*keys)
    ).all()
    starts = {0: None, 1: now, 2: grace_began}
    return [
        Bucket(
            _Standing(status, starts[began], action, now if passed else None),
            bool(owned),
            plan_id,
            count,
            seats,
        )
        for status, action, passed, began, owned, plan_id, count, seats in rows
    ]


def subscriptions_by_status(buckets: list[Bucket]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for bucket in buckets:
        counts[bucket.member.status] += bucket.count
    return dict(sorted(counts.items()))


def with_access(buckets: list[Bucket], now: datetime, policy: AccessPolicy) -> int:
    """Accounts the access rule lets in now: the rule itself (`has_access`), asked once
    per bucket rather than once per row."""
    return sum(
        bucket.count
        for bucket in buckets
        if bucket.linked and has_access(bucket.member, now, policy)
    )


def monthly_recurring_revenue(session: Session, buckets: list[Bucket]) -> dict[str, int]:
    """Per currency, what active subscriptions bring in a month: each plan's amount times
    the seats on it, its interval turned into months (minor units, rounded once at the end)."""
    seats: dict[int, int] = defaultdict(int)
    for bucket in buckets:
        if bucket.member.status == "active" and bucket.plan_id is not None:
            seats[bucket.plan_id] += bucket.seats
    if not seats:
        return {}
    plans = session.scalars(select(Plan).where(Plan.id.in_(list(seats)))).all()
    totals: dict[str, Fraction] = defaultdict(Fraction)
    for plan in plans:
        if plan.amount is None or plan.interval not in MONTHS_PER_INTERVAL or not plan.currency:
            continue
        months = MONTHS_PER_INTERVAL[plan.interval] * (plan.interval_count or 1)
        totals[plan.currency] += Fraction(int(plan.amount)) * seats[plan.id] / months
    return {currency: round(total) for currency, total in sorted(totals.items())}
