"""Accounts and the Paddle customers that pay for them."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing_app.models import LIVE_STATUSES, Account, Subscription
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


def claimed_owner(
    session: Session, account_id: str | None, customer_id: str | None, paddle_id: str | None
) -> Account | None:
    """The account a subscription (or transaction) Paddle tells us about belongs to.

    Its `custom_data` may name one, but anyone who runs Paddle.js can set that, and Paddle
    copies it onto the subscription: so the named account must exist already (our checkout
    makes it before anyone can pay), must not own a different Paddle customer, and the
    customer must not belong to another account. Without a name, the customer's account.
    Anything else is kept unlinked for an operator (None)."""
    owner_of_customer = account_for_customer(session, customer_id)
    if not account_id:
        return owner_of_customer
    account = session.get(Account, account_id)
    conflict = None
    if account is None:
        conflict = f"names account {account_id}, which we do not know"
    elif account.paddle_customer_id not in (None, customer_id):
        conflict = (
            f"names account {account_id}, which pays as customer {account.paddle_customer_id}"
        )
    elif owner_of_customer is not None and owner_of_customer.id != account_id:
        conflict = (
            f"names account {account_id}, but customer {customer_id} is {owner_of_customer.id}'s"
        )
    if conflict:
        log.warning("paddle %s %s; kept unlinked for an operator", paddle_id, conflict)
        return None
    attach_customer(session, account, customer_id)
    return account


def live_subscription(session: Session, account_id: str) -> Subscription | None:
    return session.scalars(
        # Every status but `canceled` is live; an equality avoids rebuilding an IN list.
        select(Subscription).where(
            Subscription.account_id == account_id, Subscription.status != "canceled"
        )
    ).first()


def can_hold(session: Session, account_id: str, subscription: Subscription) -> bool:
    """May `subscription` be linked to the account without giving it two live subscriptions?"""
    if subscription.status not in LIVE_STATUSES:
        return True
    current = live_subscription(session, account_id)
    return current is None or current.id == subscription.id


def serialise_on_customer(session: Session, paddle_customer_id: str | None) -> None:
    """Linking reads what the other side wrote: a new subscription looks for its customer's
    account, a customer's account looks for its waiting subscriptions. Arriving together,
    neither would see the other's uncommitted row; in turn, the second sees the first."""
    if paddle_customer_id:
        serialise_on(session, f"paddle-customer:{paddle_customer_id}")


def link_to_customers_account(session: Session, subscription: Subscription) -> bool:
    """An unlinked subscription whose customer's account is known now is linked to it."""
    if subscription.account_id is not None:
        return False
    account = account_for_customer(session, subscription.paddle_customer_id)
    if account is None or not can_hold(session, account.id, subscription):
        return False
    subscription.account_id = account.id
    log.info(
        "linked paddle subscription %s to account %s",
        subscription.paddle_subscription_id,
        account.id,
    )
    return True


def link_unlinked_subscriptions(session: Session, account: Account) -> list[Subscription]:
    """Give `account` the subscriptions of its Paddle customer that nobody could link yet."""
    if not account.paddle_customer_id:
        return []
    orphans = session.scalars(
        select(Subscription)
        .where(
            Subscription.account_id.is_(None),
            Subscription.paddle_customer_id == account.paddle_customer_id,
        )
        .with_for_update()
    ).all()
    linked = []
    for subscription in orphans:
        if can_hold(session, account.id, subscription):
            subscription.account_id = account.id
            session.flush()
            linked.append(subscription)
        else:
            log.warning(
                "unlinked subscription %s stays unlinked: account %s has a live one",
                subscription.paddle_subscription_id,
                account.id,
            )
    return linked


class LinkRefused(ValueError):
    """An operator's link that would break a rule (unknown subscription, second live one)."""


def unlinked_subscriptions(
    session: Session, *, after: tuple[datetime, uuid.UUID] | None = None, limit: int | None = None
) -> list[Subscription]:
    """Subscriptions Paddle told us about that no account owns yet, oldest first; `after`
    (a row's created_at and id) starts after that row."""
    query = (
        select(Subscription)
        .where(Subscription.account_id.is_(None))
        .order_by(Subscription.created_at, Subscription.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(Subscription.created_at, Subscription.id) > after)
    return list(session.scalars(query))


def subscription_known_as(
    session: Session, paddle_subscription_id: str, *, lock: bool = False
) -> Subscription | None:
    query = select(Subscription).where(
        Subscription.paddle_subscription_id == paddle_subscription_id
    )
    return session.scalars(query.with_for_update() if lock else query).first()


def link_subscription(
    session: Session, paddle_subscription_id: str, account_id: str
) -> Subscription:
    """An operator's decision: this Paddle subscription belongs to this account."""
    subscription = subscription_known_as(session, paddle_subscription_id, lock=True)
    if subscription is None:
        raise LinkRefused(f"No subscription {paddle_subscription_id} is known.")
    if subscription.account_id not in (None, account_id):
        raise LinkRefused(f"{paddle_subscription_id} already belongs to {subscription.account_id}.")
    account = ensure_account(session, account_id)
    if not can_hold(session, account.id, subscription):
        raise LinkRefused(f"Account {account_id} already has a live subscription.")
    subscription.account_id = account.id
    attach_customer(session, account, subscription.paddle_customer_id)
    session.flush()
    return subscription


def keep_customer_details(account: Account, customer: dict[str, Any]) -> None:
    """The account's email and name as its Paddle customer has them, unless what we hold
    came from a newer version of the customer."""
    version = parse_timestamp(customer.get("updated_at"))
    if version is None or (account.customer_updated_at and version < account.customer_updated_at):
        return
    account.email = customer.get("email") or account.email
    account.name = customer.get("name")
    account.customer_updated_at = version
