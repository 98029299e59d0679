"""Accounts and the Paddle customers that pay for them.

An account's Paddle customer (`paddle_customer_id`) is what its next checkout pays as. It is
set only by what the account itself did or what we made: the customer our checkout chose
for it, the customer its own checkout was paid as, a customer our API created naming it, or
an operator's link; never by a `custom_data` claim. Who owns a subscription or a
transaction is `ownership`'s rule.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing_app.errors import CustomerConflict
from billing_app.models import Account, Subscription
from billing_app.services.locks import serialise_on
from paddle_client.timestamps import parse_timestamp

log = logging.getLogger(__name__)


def ensure_account(session: Session, account_id: str, email: str | None = None) -> Account:
    """The account with this id, created on first sight (safe against a concurrent create)."""
    account = session.get(Account, account_id)
    if account is None:
        try:
            with session.begin_nested():
                account = Account(id=account_id, email=email)
                session.add(account)
        except IntegrityError:
            account = session.get(Account, account_id, populate_existing=True)
            if account is None:
                raise
    if email and account.email != email:
        account.email = email
    return account


def account_for_customer(session: Session, paddle_customer_id: str | None) -> Account | None:
    if not paddle_customer_id:
        return None
    return session.scalars(
        select(Account).where(Account.paddle_customer_id == paddle_customer_id)
    ).first()


def attach_customer(session: Session, account: Account, paddle_customer_id: str | None) -> None:
    """Remember which Paddle customer pays for `account`, unless another account has it."""
    if not paddle_customer_id or account.paddle_customer_id == paddle_customer_id:
        return
    owner = account_for_customer(session, paddle_customer_id)
    if owner is not None and owner.id != account.id:
        log.warning(
            "paddle customer %s already belongs to account %s; not moved to %s",
            paddle_customer_id,
            owner.id,
            account.id,
        )
        return
    if account.paddle_customer_id is None:
        account.paddle_customer_id = paddle_customer_id


def live_subscription(session: Session, account_id: str) -> Subscription | None:
    return session.scalars(
        # Every status but `canceled` is live; an equality avoids rebuilding an IN list.
        select(Subscription).where(
            Subscription.account_id == account_id, Subscription.status != "canceled"
        )
    ).first()


def serialise_on_customer(session: Session, paddle_customer_id: str | None) -> None:
    """Linking reads what the other side wrote: a new subscription looks for its customer's
    account, a customer's account looks for its waiting subscriptions. Arriving together,
    neither would see the other's uncommitted row; in turn, the second sees the first."""
    if paddle_customer_id:
        serialise_on(session, f"paddle-customer:{paddle_customer_id}")


def declare_account(
    session: Session,
    account_id: str,
    *,
    email: str | None = None,
    name: str | None = None,
    paddle_customer_id: str | None = None,
) -> Account:
    """The product makes an account known (before its first checkout), with the Paddle
    customer it already knows pays for it. Refused (409 `customer_conflict`) when another
    account has that customer, or this one pays as another: moving a customer between
    accounts is an operator's decision."""
    serialise_on_customer(session, paddle_customer_id)  # a customer event racing sees it
    account = ensure_account(session, account_id, email)
    if name is not None:
        account.name = name
    if paddle_customer_id and account.paddle_customer_id != paddle_customer_id:
        if account.paddle_customer_id is not None:
            raise CustomerConflict(
                f"Account {account_id} already pays as customer {account.paddle_customer_id}."
            )
        owner = account_for_customer(session, paddle_customer_id)
        if owner is not None:
            raise CustomerConflict(f"Customer {paddle_customer_id} is another account's.")
        account.paddle_customer_id = paddle_customer_id
    session.flush()
    return account


def keep_customer_details(account: Account, customer: dict[str, Any]) -> None:
    """The account's email and name as its Paddle customer has them, unless what we hold
    came from a newer version of the customer."""
    version = parse_timestamp(customer.get("updated_at"))
    if version is None or (account.customer_updated_at and version < account.customer_updated_at):
        return
    account.email = customer.get("email") or account.email
    account.name = customer.get("name")
    account.customer_updated_at = version
