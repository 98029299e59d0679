"""Bringing a team's existing Paddle subscribers over (`billing import paddle`).

Before this service, another integration sold through Paddle; its customers and
subscriptions name its own user ids in `custom_data`, under its own key. A claim in
`custom_data` is not trusted on its own (`subscriptions.ownership`); here the operator
vouches for a mapping by running the import: a `custom_data` key on the customer or the
subscription, or a CSV of `account_id,paddle_customer_id`.

The walk reads Paddle's list endpoints only, a page at a time, paced like reconciliation,
with no transaction open while Paddle answers; each page commits with the cursor of where
the walk has got to, so a stopped import goes on from there. It makes the accounts the
mapping names, gives them their customers (`customer_links.declare_with_customer`: never
moving one), stores the subscriptions as reconciliation would and links them (one live
subscription per account), and keeps the transactions of the last days. Whatever it cannot
decide (an account named by two customers, an account that already has another live
subscription, a customer or subscription the mapping does not name) is reported, never
guessed. Run again, it changes nothing and says so; a dry run writes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from billing_app.db import utcnow
from billing_app.errors import CustomerConflict
from billing_app.models import Account, ImportCursor, Transaction
from billing_app.services.billing_history.transactions import keep_transaction
from billing_app.services.customer_links import declare_with_customer
from billing_app.services.subscriptions.accounts import account_for_customer
from billing_app.services.subscriptions.ownership import can_hold
from billing_app.services.subscriptions.sync import (
    apply_snapshot,
    locate_subscription,
    lock_by_paddle_id,
)
from paddle_client import Client
from paddle_client.timestamps import parse_timestamp

log = logging.getLogger(__name__)

WALKS = ("customers", "subscriptions")


@dataclass
class ImportReport:
    counts: Counter[str] = field(default_factory=Counter)
    conflicts: list[str] = field(default_factory=list)
    resumed: dict[str, str] = field(default_factory=dict)  # walk -> the id it went on after

    @property
    def changed(self) -> bool:
        return any(
            self.counts[kind]
            for kind in (
                "accounts_made",
                "customers_linked",
                "subscriptions_stored",
                "subscriptions_linked",
                "transactions_kept",
            )
        )


class PaddleImport:
    def __init__(
        self,
        session: Session,
        paddle: Client,
        *,
        account_key: str | None = None,
        customer_accounts: dict[str, str] | None = None,
        dry_run: bool = False,
        transaction_days: int = 0,
    ) -> None:
        self.session = session
        self.paddle = paddle
        self.account_key = account_key
        self.customer_accounts = customer_accounts or {}
        self.dry_run = dry_run
        self.transaction_days = transaction_days
        self.report = ImportReport()
        self._customer_of_account: dict[str, str] = {}

    def run(self) -> ImportReport:
        self._walk("customers", self.paddle.customers.list_pages, self._customer)
        self._walk("subscriptions", self.paddle.subscriptions.list_pages, self._subscription)
        if self.transaction_days > 0:
            self._keep_transactions()
        if not self.dry_run:
            self.session.execute(delete(ImportCursor))  # done: the next import starts afresh
            self.session.commit()
        return self.report

    # Walking Paddle's lists

    def _walk(
        self,
        name: str,
        pages: Callable[..., Iterator[list[dict[str, Any]]]],
        handle: Callable[[dict[str, Any]], None],
    ) -> None:
        cursor = None if self.dry_run else self.session.get(ImportCursor, name)
        after = cursor.after if cursor is not None else None
        if after:
            self.report.resumed[name] = after
        self.session.rollback()  # nothing held while Paddle answers
        for page in pages(after=after):
            for entity in page:
                self.report.counts[f"{name}_seen"] += 1
                with self.session.begin_nested():
                    handle(entity)
            if self.dry_run:
                self.session.rollback()
            elif page:
                self._save_cursor(name, page[-1]["id"])
                self.session.commit()

    def _save_cursor(self, name: str, after: str) -> None:
        cursor = self.session.get(ImportCursor, name)
        if cursor is None:
            self.session.add(ImportCursor(name=name, after=after, started_at=utcnow()))
        else:
            cursor.after = after

    def _conflict(self, message: str) -> None:
        self.report.conflicts.append(message)
        log.warning("import: %s", message)

    def _named(self, entity: dict[str, Any]) -> str | None:
        custom = entity.get("custom_data")
        if not self.account_key or not isinstance(custom, dict):
            return None
        value = custom.get(self.account_key)
        return str(value) if value not in (None, "") else None

    # Customers

    def _customer(self, customer: dict[str, Any]) -> None:
        customer_id = customer["id"]
        account_id = self.customer_accounts.get(customer_id) or self._named(customer)
        if account_id is None:
            self.report.counts["customers_unmapped"] += 1
            return
        self._give_customer(account_id, customer_id, customer)

    def _give_customer(
        self, account_id: str, customer_id: str, customer: dict[str, Any] | None = None
    ) -> Account | None:
        """The account, made if new, paying as this customer; None if that would move one."""
        earlier = self._customer_of_account.get(account_id)
        if earlier not in (None, customer_id):
            self._conflict(
                f"account {account_id} is named by customers {earlier} and {customer_id}"
            )
            return None
        self._customer_of_account[account_id] = customer_id
        existing = self.session.get(Account, account_id)
        if existing is not None and existing.paddle_customer_id == customer_id:
            self.report.counts["customers_unchanged"] += 1
            return existing
        try:
            account = declare_with_customer(
                self.session,
                account_id,
                email=(customer or {}).get("email"),
                name=(customer or {}).get("name"),
                paddle_customer_id=customer_id,
            )
        except CustomerConflict as conflict:
            self._conflict(f"customer {customer_id} for account {account_id}: {conflict}")
            return None
        self.report.counts["accounts_made" if existing is None else "customers_linked"] += 1
        return account

    # Subscriptions

    def _subscription(self, entity: dict[str, Any]) -> None:
        paddle_id, customer_id = entity["id"], entity.get("customer_id")
        row = lock_by_paddle_id(self.session, paddle_id)
        if row is None:
            version = parse_timestamp(entity.get("updated_at")) or utcnow()
            row = locate_subscription(
                self.session,
                paddle_id,
                customer_id=customer_id,
                custom_data=entity.get("custom_data"),
                status=entity.get("status", "pending"),
                report_unlinked=False,
            )
            apply_snapshot(self.session, row, entity, occurred_at=version)
            self.report.counts["subscriptions_stored"] += 1
        if row.account_id is not None:
            self.report.counts["subscriptions_already_linked"] += 1
            return
        owner = account_for_customer(self.session, customer_id)
        account_id = owner.id if owner is not None else self._named(entity)
        if account_id is None:
            self._conflict(f"subscription {paddle_id}: the mapping names no account for it")
            return
        account = owner or self._give_customer(account_id, customer_id)
        if account is None:
            return
        if not can_hold(self.session, account.id, row):
            self._conflict(
                f"subscription {paddle_id}: account {account.id} already has a live subscription"
            )
            return
        row.account_id = account.id
        self.report.counts["subscriptions_linked"] += 1

    # Transactions

    def _keep_transactions(self) -> None:
        since: datetime = utcnow() - timedelta(days=self.transaction_days)
        self.session.rollback()
        for page in self.paddle.transactions.list_pages(updated_since=since):
            for entity in page:
                version = parse_timestamp(entity.get("updated_at")) or utcnow()
                held = self.session.scalar(
                    select(Transaction.paddle_updated_at).where(
                        Transaction.paddle_transaction_id == entity["id"]
                    )
                )
                if held is not None and held >= version:
                    continue  # the ledger has this version already
                keep_transaction(self.session, entity, occurred_at=version, event_id=None)
                self.report.counts["transactions_kept"] += 1
            if self.dry_run:
                self.session.rollback()
            else:
                self.session.commit()
