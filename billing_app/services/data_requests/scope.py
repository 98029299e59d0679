"""What the service holds about one account: the rows of each kind, found once, for the
export and the erasure alike.

An account's rows are those that name it (`account_id`) and, through its Paddle ids, what
Paddle sent about them: its subscriptions' and transactions' ledger events, its own Paddle
customer's, and the addresses and businesses of that customer. A Paddle customer shared
with another account (one email paying for two accounts) is that other account's too: its
customer events are left out, and kept whole by an erasure.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from billing_app.models import (
    Account,
    Adjustment,
    AuditEntry,
    EventAccount,
    OutboundEvent,
    Purchase,
    Subscription,
    SubscriptionChange,
    SubscriptionItem,
    Transaction,
    UsageCharge,
    UsageCounter,
    UsageEvent,
    UsageSubject,
    WebhookEvent,
)


@dataclass(frozen=True)
class Scope:
    account_id: str
    customer_ids: tuple[str, ...]  # the Paddle customers only this account pays as
    subscription_ids: tuple[str, ...]  # Paddle's
    transaction_ids: tuple[str, ...]
    adjustment_ids: tuple[str, ...]

    @classmethod
    def of(cls, session: Session, account_id: str) -> Scope:
        subscriptions = session.execute(
            select(Subscription.paddle_subscription_id, Subscription.paddle_customer_id).where(
                Subscription.account_id == account_id
            )
        ).all()
        subscription_ids = tuple(sorted(sid for sid, _ in subscriptions if sid))
        transaction_ids = tuple(
            sorted(
                session.scalars(
                    select(Transaction.paddle_transaction_id).where(
                        _transactions_of(account_id, subscription_ids)
                    )
                )
            )
        )
        adjustment_ids = tuple(
            sorted(
                session.scalars(
                    select(Adjustment.paddle_adjustment_id).where(
                        Adjustment.paddle_transaction_id.in_(transaction_ids)
                    )
                )
            )
        )
        account_customer = session.scalar(
            select(Account.paddle_customer_id).where(Account.id == account_id)
        )
        candidates = {account_customer, *(customer for _, customer in subscriptions)} - {None}
        return cls(
            account_id,
            tuple(sorted(c for c in candidates if not _shared(session, c, account_id))),
            subscription_ids,
            transaction_ids,
            adjustment_ids,
        )

    def rows(self) -> dict[str, Select]:
        """Per kind, the statement that reads this account's rows, oldest first."""
        account_id = self.account_id
        return {
            "account": select(Account).where(Account.id == account_id),
            "subscriptions": select(Subscription)
            .where(Subscription.account_id == account_id)
            .order_by(Subscription.created_at),
            "subscription_items": select(SubscriptionItem)
            .join(Subscription)
            .where(Subscription.account_id == account_id)
            .order_by(SubscriptionItem.id),
            "subscription_changes": select(SubscriptionChange)
            .join(Subscription)
            .where(Subscription.account_id == account_id)
            .order_by(SubscriptionChange.id),
            "transactions": select(Transaction)
            .where(_transactions_of(account_id, self.subscription_ids))
            .order_by(Transaction.paddle_created_at, Transaction.id),
            "adjustments": select(Adjustment)
            .where(Adjustment.paddle_transaction_id.in_(self.transaction_ids))
            .order_by(Adjustment.id),
            "purchases": select(Purchase)
            .where(Purchase.account_id == account_id)
            .order_by(Purchase.id),
            "usage_counters": select(UsageCounter)
            .where(UsageCounter.account_id == account_id)
            .order_by(UsageCounter.period_start, UsageCounter.meter),
            "usage_charges": select(UsageCharge)
            .where(UsageCharge.account_id == account_id)
            .order_by(UsageCharge.id),
            "usage_subjects": select(UsageSubject)
            .where(UsageSubject.account_id == account_id)
            .order_by(UsageSubject.id),
            "usage_events": select(UsageEvent)
            .where(UsageEvent.account_id == account_id)
            .order_by(UsageEvent.id),
            "webhook_events": select(WebhookEvent)
            .where(self.ledger_rows())
            .order_by(WebhookEvent.occurred_at, WebhookEvent.id),
            "events": select(OutboundEvent)
            .where(OutboundEvent.account_id == account_id)
            .order_by(OutboundEvent.sequence),
            "event_account": select(EventAccount).where(EventAccount.account_id == account_id),
            "audit": select(AuditEntry)
            .where(AuditEntry.account_id == account_id)
            .order_by(AuditEntry.at, AuditEntry.id),
        }

    def ledger_rows(self):
        """The ledger events about the account: its subscriptions, transactions and
        adjustments, its own customers, and those customers' addresses and businesses."""
        about = [*self.subscription_ids, *self.transaction_ids, *self.adjustment_ids]
        about += self.customer_ids
        belonging = [
            and_(
                or_(
                    WebhookEvent.event_type.like("address.%"),
                    WebhookEvent.event_type.like("business.%"),
                ),
                WebhookEvent.payload.contains(f'"{customer_id}"', autoescape=True),
            )
            for customer_id in self.customer_ids
        ]
        return or_(WebhookEvent.entity_id.in_(about), *belonging)


def _transactions_of(account_id: str, subscription_ids: tuple[str, ...]):
    return or_(
        Transaction.account_id == account_id,
        and_(
            Transaction.account_id.is_(None),
            Transaction.paddle_subscription_id.in_(subscription_ids),
        ),
    )


def _shared(session: Session, customer_id: str, account_id: str) -> bool:
    """Whether another account pays as this customer too."""
    others = or_(
        select(Account.id)
        .where(Account.paddle_customer_id == customer_id, Account.id != account_id)
        .exists(),
        select(Subscription.id)
        .where(
            Subscription.paddle_customer_id == customer_id,
            Subscription.account_id != account_id,
        )
        .exists(),
    )
    return bool(session.scalar(select(others)))
