"""One account's history as support reads it: every Paddle event about its subscriptions,
its customer, its transactions and their adjustments, in the order Paddle says they
happened, with what the service did with each; beside them the operators' actions on it
and the drift reconciliation repaired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_app.models import (
    Account,
    Adjustment,
    AuditEntry,
    ReconcileDrift,
    ReconcileRun,
    Subscription,
    Transaction,
    WebhookEvent,
)

MAX_EVENTS = 500


@dataclass(frozen=True)
class Moment:
    at: datetime
    kind: str  # event | operator | reconcile
    title: str
    outcome: str
    detail: str | None = None
    event_id: str | None = None


def entity_ids(session: Session, account: Account) -> list[str]:
    """The Paddle ids whose events concern the account."""
    subscriptions = list(
        session.scalars(
            select(Subscription.paddle_subscription_id).where(
                Subscription.account_id == account.id,
                Subscription.paddle_subscription_id.is_not(None),
            )
        )
    )
    transactions = list(
        session.scalars(
            select(Transaction.paddle_transaction_id).where(Transaction.account_id == account.id)
        )
    )
    adjustments = (
        list(
            session.scalars(
                select(Adjustment.paddle_adjustment_id).where(
                    Adjustment.paddle_transaction_id.in_(transactions)
                )
            )
        )
        if transactions
        else []
    )
    customer = [account.paddle_customer_id] if account.paddle_customer_id else []
    return [*customer, *subscriptions, *transactions, *adjustments]


def account_timeline(session: Session, account: Account) -> list[Moment]:
    """Oldest first; the newest `MAX_EVENTS` ledger events."""
    ids = entity_ids(session, account)
    subscription_ids = [value for value in ids if value.startswith("sub_")]
    moments = [_event_moment(event) for event in _events_about(session, ids)]
    moments += [_operator_moment(entry) for entry in _operator_actions(session, account.id)]
    moments += [_drift_moment(drift, run) for drift, run in _drifts(session, subscription_ids)]
    return sorted(moments, key=lambda moment: moment.at)


def _events_about(session: Session, ids: list[str]) -> list[WebhookEvent]:
    if not ids:
        return []
    newest = session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.entity_id.in_(ids))
        .order_by(WebhookEvent.occurred_at.desc(), WebhookEvent.event_id.desc())
        .limit(MAX_EVENTS)
    )
    return list(newest)


def _operator_actions(session: Session, account_id: str) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.account_id == account_id)
            .order_by(AuditEntry.at.desc())
            .limit(MAX_EVENTS)
        )
    )


def _drifts(session: Session, subscription_ids: list[str]):
    if not subscription_ids:
        return []
    return session.execute(
        select(ReconcileDrift, ReconcileRun)
        .join(ReconcileRun, ReconcileRun.id == ReconcileDrift.run_id)
        .where(ReconcileDrift.paddle_subscription_id.in_(subscription_ids))
        .order_by(ReconcileDrift.id.desc())
        .limit(MAX_EVENTS)
    ).all()


def _event_moment(event: WebhookEvent) -> Moment:
    outcome = event.status
    if event.replays:
        outcome += f" (replayed {event.replays}x, last {event.last_replay_outcome})"
    return Moment(
        event.occurred_at,
        "event",
        f"{event.event_type} ({event.entity_id or '-'})",
        outcome,
        event.error,
        event.event_id,
    )


def _operator_moment(entry: AuditEntry) -> Moment:
    target = f" {entry.target}" if entry.target else ""
    return Moment(
        entry.at, "operator", f"{entry.actor}: {entry.action}{target}", entry.result, entry.detail
    )


def _drift_moment(drift: ReconcileDrift, run: ReconcileRun) -> Moment:
    verb = "found (dry run)" if run.dry_run else "repaired"
    return Moment(
        run.started_at,
        "reconcile",
        f"run #{run.id}: {drift.field} of {drift.paddle_subscription_id}",
        verb,
        f"ours {drift.old_value or '-'} → Paddle {drift.new_value or '-'}",
    )


def accounts_of_entities(session: Session, entity_ids: list[str]) -> dict[str, str]:
    """The account each Paddle id (subscription, customer, transaction) belongs to, where
    one is known: an operator's action on an event shows on that account's timeline."""
    lookups = (
        (Subscription.paddle_subscription_id, Subscription.account_id),
        (Account.paddle_customer_id, Account.id),
        (Transaction.paddle_transaction_id, Transaction.account_id),
    )
    owners: dict[str, str] = {}
    for key, owner in lookups:
        rows = session.execute(select(key, owner).where(key.in_(entity_ids), owner.is_not(None)))
        owners.update(dict(rows.all()))
    return owners


def accounts_of_events(session: Session, event_ids: list[str]) -> dict[str, str]:
    """By event id, the account its entity belongs to, where one is known."""
    entities = dict(
        session.execute(
            select(WebhookEvent.event_id, WebhookEvent.entity_id).where(
                WebhookEvent.event_id.in_(event_ids), WebhookEvent.entity_id.is_not(None)
            )
        ).all()
    )
    owners = accounts_of_entities(session, list(entities.values()))
    return {event: owners[entity] for event, entity in entities.items() if entity in owners}
