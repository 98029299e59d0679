"""When an account's Paddle customer becomes known (a `customer.*` event naming the account,
the product declaring it, or an import), what that customer paid for and nobody could place
yet joins the account: its waiting subscriptions, transactions and purchases.

One rule for both paths; it lives beside the domains it joins (`subscriptions`,
`billing_history`), which may not import each other this way round.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from billing_app.models import Account, Subscription
from billing_app.services.billing_history.transactions import link_customers_history
from billing_app.services.subscriptions.accounts import declare_account
from billing_app.services.subscriptions.ownership import link_unlinked_subscriptions

log = logging.getLogger(__name__)


def customer_now_known(session: Session, account: Account) -> list[Subscription]:
    """Give `account` what its Paddle customer holds unlinked; the subscriptions linked."""
    if not account.paddle_customer_id:
        return []
    linked = link_unlinked_subscriptions(session, account)
    if linked:
        log.info("linked %d subscription(s) to account %s", len(linked), account.id)
    link_customers_history(session, account.id, account.paddle_customer_id)
    return linked


def declare_with_customer(
    session: Session,
    account_id: str,
    *,
    email: str | None = None,
    name: str | None = None,
    paddle_customer_id: str | None = None,
) -> Account:
    """An account the product (or an import) makes known with the Paddle customer that pays
    for it (`accounts.declare_account`: never moving a customer), and what that customer
    held unlinked joined to it."""
    account = declare_account(
        session, account_id, email=email, name=name, paddle_customer_id=paddle_customer_id
    )
    customer_now_known(session, account)
    return account
