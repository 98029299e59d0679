"""Erasing an account's personal data on request, keeping what the books need.

What goes: the account's email and name (and its link to the Paddle customer, so that a
new checkout starts clean), the personal fields of every stored webhook payload and
outbound event about it (`personal.scrubbed`), other `custom_data` than our own ids, the
free text of refunds, its usage subjects (each replaced by a pseudonym that keeps distinct
subjects distinct), and its email and name wherever an operator's audit entry wrote them.
What stays: ids, amounts, currency, tax, invoice numbers, dates and statuses, under the
account id, which is the pseudonym.

Its Paddle customers are remembered as erased (`erased_customers`): a later webhook about
one is stored with the same fields removed, and its email and name are never kept again.
Erasing twice changes nothing the second time. An account whose subscription still gives
access is refused: cancel it first, or the service would bill someone it cannot name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billing_app.errors import AccountInUse, AccountNotFound
from billing_app.models import (
    Account,
    Adjustment,
    AuditEntry,
    ErasedCustomer,
    Erasure,
    OutboundEvent,
    Subscription,
    UsageEvent,
    UsageSubject,
    WebhookEvent,
)
from billing_app.services.data_requests.personal import ours_only, scrubbed, without
from billing_app.services.data_requests.scope import Scope

GIVES_ACCESS = ("trialing", "active", "past_due", "paused")
PSEUDONYM = "erased-"


@dataclass(frozen=True)
class ErasureReport:
    account_id: str
    changed: dict[str, int]  # rows changed (or that would change) by kind
    dry_run: bool

    @property
    def total(self) -> int:
        return sum(self.changed.values())


def erase(
    session: Session, account_id: str, *, erased_by: str, now: datetime, dry_run: bool = False
) -> ErasureReport:
    """Erase the account's personal data (see the module); the caller commits, or rolls
    back for a dry run, which reports what would change."""
    account = session.get(Account, account_id)
    scope = Scope.of(session, account_id)
    if account is None and not (scope.subscription_ids or scope.transaction_ids):
        raise AccountNotFound()
    in_use = session.scalar(
        select(Subscription.paddle_subscription_id).where(
            Subscription.account_id == account_id, Subscription.status.in_(GIVES_ACCESS)
        )
    )
    if in_use:
        raise AccountInUse(f"Subscription {in_use} still gives access: cancel it first.")

    known = _personal_values(session, account, scope)
    changed: Counter[str] = Counter()
    if account is not None and (account.email or account.name or account.paddle_customer_id):
        account.email = account.name = account.paddle_customer_id = None
        changed["account"] += 1
    for customer_id in scope.customer_ids:
        if session.get(ErasedCustomer, customer_id) is None:
            session.add(
                ErasedCustomer(paddle_customer_id=customer_id, account_id=account_id, erased_at=now)
            )
            changed["erased_customers"] += 1
    for subscription in session.scalars(
        select(Subscription).where(Subscription.account_id == account_id)
    ):
        ours = ours_only(subscription.custom_data)
        if ours != subscription.custom_data:
            subscription.custom_data = ours
            changed["subscriptions"] += 1
    changed["webhook_events"] += _scrub_ledger(session, scope, known)
    changed["events"] += _scrub_events(session, account_id)
    for adjustment in session.scalars(
        select(Adjustment).where(
            Adjustment.paddle_transaction_id.in_(scope.transaction_ids),
            Adjustment.reason.is_not(None),
        )
    ):
        adjustment.reason = None
        changed["adjustments"] += 1
    changed["usage_subjects"] += _pseudonymise_subjects(session, account_id)
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.account_id == account_id)):
        detail, target = without(entry.detail, known), without(entry.target, known)
        if (detail, target) != (entry.detail, entry.target):
            entry.detail, entry.target = detail, target
            changed["audit"] += 1
    report = ErasureReport(
        account_id, {kind: n for kind, n in sorted(changed.items()) if n}, dry_run
    )
    if not dry_run and report.total:
        _record(session, report, erased_by, now)
    session.flush()
    return report


def _personal_values(session: Session, account: Account | None, scope: Scope) -> list[str]:
    """The account's emails and names as we hold them and as Paddle sent them: what free
    text (an audit entry, an error) may repeat."""
    values = {account.email, account.name} if account else set()
    for (payload,) in session.execute(
        select(WebhookEvent.payload).where(WebhookEvent.entity_id.in_(scope.customer_ids))
    ):
        data = _loaded(payload).get("data") or {}
        values.update((data.get("email"), data.get("name")))
    return sorted((value for value in values if value), key=len, reverse=True)


def _scrub_ledger(session: Session, scope: Scope, known: list[str]) -> int:
    changed = 0
    rows = session.execute(
        select(WebhookEvent.id, WebhookEvent.payload, WebhookEvent.error).where(scope.ledger_rows())
    ).all()
    for row_id, payload, error in rows:
        clean, clean_error = _scrubbed_text(payload), without(error, known)
        if (clean, clean_error) != (payload, error):
            _rewrite(session, row_id, payload=clean, error=clean_error)
            changed += 1
    return changed


def _scrub_events(session: Session, account_id: str) -> int:
    changed = 0
    rows = session.execute(
        select(OutboundEvent.position, OutboundEvent.body).where(
            OutboundEvent.account_id == account_id
        )
    ).all()
    for position, body in rows:
        clean = _scrubbed_text(body)
        if clean != body:
            session.execute(
                update(OutboundEvent).where(OutboundEvent.position == position).values(body=clean)
            )
            changed += 1
    return changed


def _pseudonymise_subjects(session: Session, account_id: str) -> int:
    """Each subject becomes `erased-` and a keyed hash whose key is thrown away: the same
    subject gets the same pseudonym in this erasure (distinct subjects stay distinct), and
    no one can tell which subject it was."""
    key = secrets.token_bytes(32)

    def pseudonym(subject: str) -> str:
        return PSEUDONYM + hmac.new(key, subject.encode(), hashlib.sha256).hexdigest()[:24]

    changed = 0
    for model in (UsageSubject, UsageEvent):
        subjects = session.scalars(
            select(model.subject)
            .where(
                model.account_id == account_id,
                model.subject.is_not(None),
                model.subject.not_like(f"{PSEUDONYM}%"),
            )
            .distinct()
        ).all()
        for subject in subjects:
            result = session.execute(
                update(model)
                .where(model.account_id == account_id, model.subject == subject)
                .values(subject=pseudonym(subject))
            )
            changed += result.rowcount
    return changed


def _record(session: Session, report: ErasureReport, erased_by: str, now: datetime) -> None:
    earlier = session.get(Erasure, report.account_id)
    if earlier is None:
        session.add(
            Erasure(
                account_id=report.account_id,
                erased_at=now,
                erased_by=erased_by,
                changed=report.changed,
            )
        )
    session.add(
        AuditEntry(
            at=now,
            actor=erased_by,
            action="erase_account",
            target=report.account_id,
            account_id=report.account_id,
            result="ok",
            detail=json.dumps(report.changed, sort_keys=True),
        )
    )


def scrub_ledger_before(session: Session, cutoff: datetime) -> int:
    """Past the ledger's retention the rows kept (failed and dead ones, for operators) keep
    their ids, type, status and error, not the personal fields of their payload; the caller
    commits. The rows changed."""
    changed = 0
    rows = session.execute(
        select(WebhookEvent.id, WebhookEvent.payload).where(WebhookEvent.received_at < cutoff)
    ).all()
    for row_id, payload in rows:
        clean = _scrubbed_text(payload)
        if clean != payload:
            _rewrite(session, row_id, payload=clean)
            changed += 1
    return changed


def keep_erased_out(session: Session, entry_id: int, payload: str, data: dict[str, Any]) -> bool:
    """After a webhook is applied: if it is about an erased customer, store its payload
    without the personal fields. Whether it was."""
    customer_id = data.get("customer_id")
    if customer_id is None and str(data.get("id", "")).startswith("ctm_"):
        customer_id = data["id"]
    if not customer_id or not is_erased(session, customer_id):
        return False
    _rewrite(session, entry_id, payload=_scrubbed_text(payload))
    return True


def _rewrite(session: Session, row_id: int, **values: str | None) -> None:
    session.execute(update(WebhookEvent).where(WebhookEvent.id == row_id).values(**values))


def is_erased(session: Session, customer_id: str | None) -> bool:
    if not customer_id:
        return False
    return session.get(ErasedCustomer, customer_id) is not None


def _loaded(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _scrubbed_text(text: str | None) -> str | None:
    """A JSON text without its personal fields; text that is not JSON as it is."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    clean = scrubbed(value)
    return text if clean == value else json.dumps(clean, separators=(",", ":"))
