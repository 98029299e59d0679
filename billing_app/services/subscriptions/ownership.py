"""Who owns a subscription or a transaction Paddle tells us about.

1. **What our checkout made is its account's.** A subscription created by a checkout
   transaction this service created for an account (the account's pending row holds that
   transaction's id, or the subscription's `custom_data` names that pending row, an id only
   that account's checkout was given), and the transaction itself (the ledger keeps
   `checkout_account_id`), belong to that account whichever Paddle customer paid. A buyer
   may type any email into Paddle's checkout, and Paddle reuses a customer by email: the
   customer says who paid, not whose it is.
2. **A `custom_data` claim is believed only when it can take nothing.** Anyone who runs
   Paddle.js can name any account. The named account must exist, must pay as no other
   customer, and the customer must be no other account's. Without a claim, the customer's
   account, unless the customer pays for several accounts. Believing a claim links the one
   subscription or transaction; it never changes the account (`accounts`).
3. **Anything else is kept unlinked** for an operator, who links it (`link_subscription`).

A Paddle customer that holds subscriptions or transactions of more than one account is
*shared*: the customer portal, which shows and cancels every subscription of a customer,
opens for none of those accounts (`refuse_shared_customer`), and operators see the customer
listed (`shared_customers`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_, union
from sqlalchemy.orm import Session

from billing_app.errors import CustomerShared
from billing_app.models import LIVE_STATUSES, Account, Subscription, Transaction
from billing_app.services.events import outbox
from billing_app.services.subscriptions.accounts import (
    account_for_customer,
    attach_customer,
    ensure_account,
    live_subscription,
)

log = logging.getLogger(__name__)


def app_ids(custom_data: Any) -> tuple[str | None, uuid.UUID | None]:
    """`{app_account_id, app_subscription_id}` as our checkout put them in `custom_data`."""
    if not isinstance(custom_data, dict):
        return None, None
    account_id = custom_data.get("app_account_id")
    account_id = str(account_id) if account_id else None
    try:
        subscription_id = uuid.UUID(str(custom_data.get("app_subscription_id")))
    except ValueError:
        subscription_id = None
    return account_id, subscription_id


# 1. What our checkout made


_WAITING_CHECKOUT = (
    select(Subscription)
    .where(Subscription.account_id.is_not(None))
    .with_for_update()
    .execution_options(populate_existing=True)
)


def checkout_row(
    session: Session,
    paddle_subscription_id: str | None,
    *,
    transaction_id: str | None,
    custom_data: Any,
) -> Subscription | None:
    """The row our checkout made for the account that is buying, locked, if the Paddle
    subscription (or the paid transaction) comes from that checkout and the row is not
    another subscription's already."""
    candidates = []
    if transaction_id:
        candidates.append(Subscription.paddle_transaction_id == transaction_id)
    account_id, app_subscription_id = app_ids(custom_data)
    if app_subscription_id is not None and account_id:
        candidates.append(
            (Subscription.id == app_subscription_id) & (Subscription.account_id == account_id)
        )
    for candidate in candidates:
        row = session.scalars(_WAITING_CHECKOUT.where(candidate)).first()
        if row is not None and row.paddle_subscription_id in (None, paddle_subscription_id):
            return row
    return None


def customer_paid_for_checkout(
    session: Session, account_id: str, paddle_customer_id: str | None
) -> None:
    """The customer an account's own checkout was paid as becomes the account's customer,
    if it has none yet and no other account has that customer."""
    account = session.get(Account, account_id)
    if account is not None:
        attach_customer(session, account, paddle_customer_id)


# 2. Claims, and the customer's account


def judge_claim(
    session: Session, account_id: str | None, customer_id: str | None
) -> tuple[Account | None, str | None]:
    """Whose a subscription or transaction that no checkout of ours made is: the account
    its `custom_data` names, if that claim can take nothing; without a claim, its
    customer's account, unless the customer pays for several. (owner, None), or (None,
    why it stays unlinked). Changes nothing, logs nothing."""
    owner_of_customer = account_for_customer(session, customer_id)
    if not account_id:
        if owner_of_customer is None:
            return None, (
                f"names no account in its custom_data, and no account pays as customer"
                f" {customer_id or '(none)'}"
            )
        if others_paying_as(session, customer_id, owner_of_customer.id):
            return None, f"pays as customer {customer_id}, who pays for several accounts"
        return owner_of_customer, None
    account = session.get(Account, account_id)
    if account is None:
        return None, f"names account {account_id}, which we do not know"
    if account.paddle_customer_id not in (None, customer_id):
        return None, (
            f"names account {account_id}, which pays as customer {account.paddle_customer_id}"
        )
    if owner_of_customer is not None and owner_of_customer.id != account_id:
        return None, (
            f"names account {account_id}, but customer {customer_id} is {owner_of_customer.id}'s"
        )
    return account, None


def claimed_owner(
    session: Session, account_id: str | None, customer_id: str | None, paddle_id: str | None
) -> Account | None:
    """`judge_claim`'s owner; a refused claim is logged for operators."""
    owner, refusal = judge_claim(session, account_id, customer_id)
    if account_id and refusal:
        log.warning("paddle %s %s; kept unlinked for an operator", paddle_id, refusal)
    return owner


def can_hold(session: Session, account_id: str, subscription: Subscription) -> bool:
    """May `subscription` be linked to the account without giving it two live subscriptions?"""
    if subscription.status not in LIVE_STATUSES:
        return True
    current = live_subscription(session, account_id)
    return current is None or current.id == subscription.id


def link_to_customers_account(session: Session, subscription: Subscription) -> bool:
    """An unlinked subscription whose customer's account is known now is linked to it
    (unless the customer pays for several accounts: then whose it is, is not known)."""
    if subscription.account_id is not None:
        return False
    account = account_for_customer(session, subscription.paddle_customer_id)
    if account is None or not can_hold(session, account.id, subscription):
        return False
    if others_paying_as(session, subscription.paddle_customer_id, account.id):
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


# 3. Operators


def why_unlinked(session: Session, subscription: Subscription) -> str:
    """Why no account holds `subscription`, by the rules the linker applies."""
    account_id, _ = app_ids(subscription.custom_data)
    owner, refusal = judge_claim(session, account_id, subscription.paddle_customer_id)
    if refusal:
        return f"It {refusal}."
    if not can_hold(session, owner.id, subscription):
        return f"Its account would be {owner.id}, which has a live subscription already."
    return f"Its account is {owner.id}: it links with the next event about it, or link it now."


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
    outbox.caused_by(session, "operator")
    subscription.account_id = account.id
    attach_customer(session, account, subscription.paddle_customer_id)
    session.flush()
    return subscription


# Shared customers


def _accounts_by_customer(customer_id: str | None = None):
    """(customer_id, account_id) for every account a Paddle customer pays for, or is the
    customer of; of one customer when given (each branch then reads an index)."""
    branches = []
    for customer, account in (
        (Account.paddle_customer_id, Account.id),
        (Subscription.paddle_customer_id, Subscription.account_id),
        (Transaction.paddle_customer_id, Transaction.account_id),
    ):
        branch = select(customer.label("customer_id"), account.label("account_id")).where(
            customer.is_not(None), account.is_not(None)
        )
        branches.append(branch if customer_id is None else branch.where(customer == customer_id))
    return union(*branches).subquery()


def others_paying_as(session: Session, customer_id: str | None, account_id: str) -> set[str]:
    """The accounts other than `account_id` that the Paddle customer pays for (or whose
    customer it is)."""
    if not customer_id:
        return set()
    paying = session.scalars(select(_accounts_by_customer(customer_id).c.account_id))
    return set(paying) - {account_id}


def refuse_shared_customer(session: Session, customer_id: str, account_id: str) -> None:
    """Raise 409 `customer_shared` when the customer pays for another account too."""
    others = others_paying_as(session, customer_id, account_id)
    if others:
        log.warning(
            "portal refused to account %s: paddle customer %s also pays for %d other account(s)",
            account_id,
            customer_id,
            len(others),
        )
        raise CustomerShared()


@dataclass(frozen=True)
class SharedCustomer:
    paddle_customer_id: str
    account_ids: list[str]


def shared_customers(session: Session, *, limit: int = 200) -> list[SharedCustomer]:
    """Paddle customers that pay for more than one account, for operators to resolve."""
    pairs = _accounts_by_customer()
    customer, account = pairs.c.customer_id, pairs.c.account_id
    shared = (
        select(customer)
        .group_by(customer)
        .having(func.count(account.distinct()) > 1)
        .order_by(customer)
        .limit(limit)
        .subquery()
    )
    rows = session.execute(
        select(customer, account)
        .where(customer.in_(select(shared.c.customer_id)))
        .order_by(customer, account)
    ).all()
    found: dict[str, list[str]] = {}
    for customer_id, account_id in rows:
        found.setdefault(customer_id, []).append(account_id)
    return [SharedCustomer(customer_id, accounts) for customer_id, accounts in found.items()]
