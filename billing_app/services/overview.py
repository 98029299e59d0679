"""The figures on the console's front page, each one aggregate query (the page must stay
fast with hundreds of thousands of subscriptions)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from billing_app.models import (
    Adjustment,
    Plan,
    ReconcileRun,
    Subscription,
    Transaction,
    WebhookEvent,
)
from billing_app.services import inbox
from billing_app.services.access import AccessPolicy, has_access

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
    return Overview(
        subscriptions_by_status=subscriptions_by_status(session),
        accounts_with_access=accounts_with_access(session, now, policy),
        mrr_by_currency=monthly_recurring_revenue(session),
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


def subscriptions_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Subscription.status, func.count()).group_by(Subscription.status)
    ).all()
    return dict(sorted(rows))


@dataclass(frozen=True)
class _Standing:
    """A stand-in for every subscription of one bucket: the access rule reads only these
    fields, and only how they compare with now, so one member answers for all of them."""

    status: str
    current_period_start: datetime | None
    scheduled_action: str | None
    scheduled_effective_at: datetime | None


def accounts_with_access(session: Session, now: datetime, policy: AccessPolicy) -> int:
    """Accounts the access rule lets in now. The rule itself (`has_access`) is asked once per
    bucket of subscriptions that compare alike with now, not once per row."""
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
    buckets = session.execute(
        select(
            Subscription.status, Subscription.scheduled_action, stop_passed, period, func.count()
        )
        .where(Subscription.account_id.is_not(None), Subscription.status != "canceled")
        .group_by(Subscription.status, Subscription.scheduled_action, stop_passed, period)
    ).all()
    starts = {0: None, 1: now, 2: grace_began}
    total = 0
    for status, action, passed, started, count in buckets:
        member = _Standing(status, starts[started], action, now if passed else None)
        if has_access(member, now, policy):
            total += count
    return total


def monthly_recurring_revenue(session: Session) -> dict[str, int]:
    """Per currency, what active subscriptions bring in a month: each plan's amount times
    the seats on it, its interval turned into months (minor units, rounded once at the end)."""
    rows = session.execute(
        select(
            Plan.amount,
            Plan.currency,
            Plan.interval,
            Plan.interval_count,
            func.sum(Subscription.quantity),
        )
        .join(Plan, Plan.id == Subscription.plan_id)
        .where(Subscription.status == "active", Plan.amount.is_not(None))
        .group_by(Plan.id, Plan.amount, Plan.currency, Plan.interval, Plan.interval_count)
    ).all()
    totals: dict[str, Fraction] = defaultdict(Fraction)
    for amount, currency, interval, count, seats in rows:
        if interval not in MONTHS_PER_INTERVAL or not currency:
            continue
        months = MONTHS_PER_INTERVAL[interval] * (count or 1)
        totals[currency] += Fraction(int(amount)) * seats / months
    return {currency: round(total) for currency, total in sorted(totals.items())}
