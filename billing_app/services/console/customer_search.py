"""Finding a customer the way support hears of one: by account id, email, Paddle customer
id, subscription id or transaction id, exactly or by its first characters (at least
three), or by an email's domain ("example.com" or "@example.com"). Exact matches come first.
Every lookup is indexed (prefixes on PostgreSQL through migration 0026's pattern indexes)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from billing_app.models import Account, Subscription, Transaction, WebhookEvent

MAX_MATCHES = 50


@dataclass(frozen=True)
class Match:
    """An account that matched, or a subscription no account owns yet."""

    account_id: str | None
    email: str | None
    matched_on: str
    paddle_subscription_id: str | None = None


MIN_PREFIX = 3


def find_customers(session: Session, query: str) -> list[Match]:
    query = query.strip()
    if not query:
        return []
    matches: dict[tuple, Match] = {}

    def add(match: Match) -> None:
        if len(matches) < MAX_MATCHES:
            matches.setdefault((match.account_id, match.paddle_subscription_id), match)

    _exactly(session, query, add)
    domain = query.removeprefix("@").lower()
    if "@" not in domain and "." in domain:
        for account in session.scalars(
            select(Account)
            .where(Account.email_domain == domain)
            .order_by(Account.id)
            .limit(MAX_MATCHES)
        ):
            add(Match(account.id, account.email, "email domain"))
    if len(query) >= MIN_PREFIX:
        _by_prefix(session, query, add)
    return list(matches.values())


def _exactly(session: Session, query: str, add) -> None:
    accounts = session.scalars(
        select(Account)
        .where(
            or_(
                Account.id == query,
                func.lower(Account.email) == query.lower(),
                Account.paddle_customer_id == query,
            )
        )
        .limit(MAX_MATCHES)
    )
    for account in accounts:
        add(Match(account.id, account.email, _matched_on(account, query)))
    subscriptions = session.execute(
        select(Subscription.account_id, Subscription.paddle_subscription_id, Account.email)
        .outerjoin(Account, Account.id == Subscription.account_id)
        .where(
            or_(
                Subscription.paddle_subscription_id == query,
                Subscription.paddle_customer_id == query,
                Subscription.paddle_transaction_id == query,
            )
        )
        .limit(MAX_MATCHES)
    )
    _add_subscriptions(subscriptions, "subscription", add)
    transactions = session.execute(
        select(Transaction.account_id, Account.email)
        .join(Account, Account.id == Transaction.account_id)
        .where(Transaction.paddle_transaction_id == query)
    )
    for account_id, email in transactions:
        add(Match(account_id, email, "transaction"))


def _by_prefix(session: Session, query: str, add) -> None:
    """Each kind of id, and the email, starting with `query` (LIKE, its wildcards escaped)."""
    by_account = (
        (func.lower(Account.email), query.lower(), "email starts so"),
        (Account.id, query, "account id starts so"),
        (Account.paddle_customer_id, query, "Paddle customer id starts so"),
    )
    for column, prefix, label in by_account:
        for account in session.scalars(
            select(Account)
            .where(column.startswith(prefix, autoescape=True))
            .order_by(column)
            .limit(MAX_MATCHES)
        ):
            add(Match(account.id, account.email, label))
    subscriptions = session.execute(
        select(Subscription.account_id, Subscription.paddle_subscription_id, Account.email)
        .outerjoin(Account, Account.id == Subscription.account_id)
        .where(Subscription.paddle_subscription_id.startswith(query, autoescape=True))
        .order_by(Subscription.paddle_subscription_id)
        .limit(MAX_MATCHES)
    )
    _add_subscriptions(subscriptions, "subscription id starts so", add)
    transactions = session.execute(
        select(Transaction.account_id, Account.email)
        .join(Account, Account.id == Transaction.account_id)
        .where(Transaction.paddle_transaction_id.startswith(query, autoescape=True))
        .order_by(Transaction.paddle_transaction_id)
        .limit(MAX_MATCHES)
    )
    for account_id, email in transactions:
        add(Match(account_id, email, "transaction id starts so"))


def _add_subscriptions(rows, label: str, add) -> None:
    for account_id, subscription_id, email in rows:
        if account_id:
            add(Match(account_id, email, label))
        else:
            add(Match(None, None, "unlinked subscription", subscription_id))


def _matched_on(account: Account, query: str) -> str:
    if account.id == query:
        return "account id"
    if account.paddle_customer_id == query:
        return "Paddle customer id"
    return "email"


def customer_emails(session: Session, customer_ids: list[str | None]) -> dict[str, str]:
    """What Paddle last said each customer's email was: from the account when one holds the
    customer, else from the newest `customer.*` notification in the ledger (a subscription
    nobody owns yet has no account to hold it)."""
    wanted = sorted({value for value in customer_ids if value})
    if not wanted:
        return {}
    emails = dict(
        session.execute(
            select(Account.paddle_customer_id, Account.email).where(
                Account.paddle_customer_id.in_(wanted), Account.email.is_not(None)
            )
        ).all()
    )
    for customer_id in (value for value in wanted if value not in emails):
        payload = session.scalar(
            select(WebhookEvent.payload)
            .where(
                WebhookEvent.entity_id == customer_id,
                WebhookEvent.event_type.like("customer.%"),
            )
            .order_by(WebhookEvent.occurred_at.desc())
            .limit(1)
        )
        email = _email_in(payload)
        if email:
            emails[customer_id] = email
    return emails


def _email_in(payload: str | None) -> str | None:
    try:
        data = json.loads(payload or "{}").get("data") or {}
    except ValueError:
        return None
    email = data.get("email") if isinstance(data, dict) else None
    return email if isinstance(email, str) else None
