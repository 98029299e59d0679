"""When an account's Paddle customer becomes known (a `customer.*` event naming the account,
or the product declaring it), what that customer paid for and nobody could place yet joins
the account: its waiting subscriptions, transactions and purchases.

One rule for both paths; it lives beside the domains it joins (`subscriptions`,
`billing_history`), which may not import each other this way round.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from billing_app.models import Account, Subscription
from billing_app.services.billing_history.transactions import link_customers_history
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
