"""Starting a checkout: a Paddle transaction to pay for a plan, and our pending subscription;
or for a one-time product, bought as often as wanted.

Three steps, so that no transaction of ours is open while Paddle answers:

1. read what the account has (a live subscription is a 409; a pending checkout is reused);
2. ask Paddle, holding nothing: reuse the pending checkout's open transaction, else the
   account's open checkout transaction Paddle already holds (the answer to an earlier
   create may have been lost), else create one; a create whose answer was lost is looked
   for again before anything else is tried;
3. write the pending subscription and its transaction id.

When Paddle fails, our tables are left as they were.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing_app.auth import Caller
from billing_app.db import utcnow
from billing_app.errors import PlanNotFound, ProductNotFound, SubscriptionExists
from billing_app.models import Account, Plan, Product, Subscription, Transaction
from billing_app.services.billing_history.transactions import record_transaction
from billing_app.services.selling.discount_codes import GivenCode, refusal_of
from billing_app.services.subscriptions.accounts import (
    account_for_customer,
    attach_customer,
    ensure_account,
    live_subscription,
    serialise_on_customer,
)
from billing_app.services.subscriptions.ownership import app_ids
from billing_app.services.subscriptions.sync import lock_by_id
from paddle_client import ApiError, Client, Unavailable
from paddle_client.timestamps import parse_timestamp

OPEN_TRANSACTION_STATUSES = ("draft", "ready")
# How far back a checkout with no Paddle customer looks for a transaction it made whose
# answer was lost (a click much later makes a new one: an open transaction costs nothing).
LOST_CHECKOUT_LOOKBACK = timedelta(hours=1)


@dataclass(frozen=True)
class CheckoutStarted:
    subscription_id: str | None  # None for a one-time product
    transaction_id: str
    checkout_url: str | None


def find_plan(session: Session, *, slug: str | None = None, price_id: str | None = None) -> Plan:
    """An active plan on sale, by slug or Paddle price id (the free plan is not on sale)."""
    query = select(Plan).where(Plan.active.is_(True), Plan.free.is_(False))
    query = query.where(Plan.slug == slug) if slug else query.where(Plan.price_id == price_id)
    plan = session.scalars(query).first()
    if plan is None:
        raise PlanNotFound(f"No active plan {slug or price_id!r}.")
    return plan


@dataclass(frozen=True)
class Order:
    """What the account is buying, and what it already has, as read in step 1."""

    account_id: str
    email: str | None
    email_verified: bool
    customer_id: str | None
    plan_id: int | None  # None: a one-time product
    price_id: str
    currency: str | None
    quantity: int
    pending_id: uuid.UUID | None = None  # the account's pending checkout, if any
    pending_transaction_id: str | None = None
    pending_items: tuple[str | None, int] | None = None
    discount_id: str | None = None  # a code the buyer gave, judged usable (`discount_codes`)

    @property
    def items(self) -> list[dict[str, Any]]:
        return [{"price_id": self.price_id, "quantity": self.quantity}]


def _buyer(caller: Caller, account: Account | None) -> dict[str, Any]:
    """Who is buying, as an `Order` names them: the caller, and the account we know."""
    return {
        "account_id": caller.account_id,
        "email": caller.email or (account.email if account else None),
        "email_verified": caller.email_verified and bool(caller.email),
        "customer_id": account.paddle_customer_id if account else None,
    }


def _read_order(session: Session, caller: Caller, plan: Plan, quantity: int) -> Order:
    account_id = caller.account_id
    account = session.get(Account, account_id)
    current = live_subscription(session, account_id)
    if current is not None and current.status != "pending":
        status = current.status
        session.rollback()
        raise SubscriptionExists(
            f"This account already has {_article(status)} {status} subscription; change it instead."
        )
    order = Order(
        **_buyer(caller, account),
        plan_id=plan.id,
        price_id=plan.price_id,
        currency=plan.currency,
        quantity=quantity,
    )
    if current is not None:
        order = replace(
            order,
            pending_id=current.id,
            pending_transaction_id=current.paddle_transaction_id,
            pending_items=(current.price_id, current.quantity),
        )
    session.rollback()
    return order


def _with_discount(paddle: Client, order: Order, discount: GivenCode | None) -> Order:
    """The order with the discount its code names, judged usable for what it buys (422
    `discount_invalid` otherwise), before anything is made at Paddle."""
    if discount is None:
        return order
    found = discount.for_prices(paddle, [order.price_id], utcnow())
    return replace(order, discount_id=found["id"])


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _is_open(transaction: dict[str, Any]) -> bool:
    return transaction.get("status") in OPEN_TRANSACTION_STATUSES


def _buys(transaction: dict[str, Any], order: Order) -> bool:
    """Whether `transaction` is this order: its item and quantity, and its discount."""
    bought = {
        ((item.get("price") or {}).get("id") or item.get("price_id"), item.get("quantity"))
        for item in transaction.get("items") or []
    }
    return bought == {(order.price_id, order.quantity)} and _discounted_as(transaction, order)


def _discounted_as(transaction: dict[str, Any], order: Order) -> bool:
    """Whether `transaction` carries the discount the order's code names (without a code,
    whatever discount the buyer entered in Paddle's checkout stays theirs)."""
    return order.discount_id in (None, transaction.get("discount_id"))


def _open_checkout(paddle: Client, order: Order, customer_id: str | None) -> dict | None:
    """An open transaction Paddle holds for this account's checkout of this order: among
    its customer's, or, with no customer yet, among the open ones lately updated."""
    if customer_id:
        candidates: Iterable[dict] = paddle.transactions.list(
            customer_id=customer_id, status=OPEN_TRANSACTION_STATUSES
        )
    else:
        candidates = paddle.transactions.list(
            status=OPEN_TRANSACTION_STATUSES, updated_since=utcnow() - LOST_CHECKOUT_LOOKBACK
        )
    for transaction in candidates:
        account_id, subscription_id = app_ids(transaction.get("custom_data"))
        if account_id != order.account_id or not _buys(transaction, order):
            continue
        if order.pending_id is None or subscription_id == order.pending_id:
            return transaction
    return None


def _transaction_for(
    paddle: Client,
    order: Order,
    customer_id: str | None,
    checkout_url: str | None,
    custom_data: dict[str, str],
) -> dict[str, Any]:
    if order.pending_transaction_id and order.pending_items == (order.price_id, order.quantity):
        transaction = paddle.transactions.get(order.pending_transaction_id)
        if _is_open(transaction) and _discounted_as(transaction, order):
            return transaction
    found = _open_checkout(paddle, order, customer_id)
    if found is not None:
        return found
    try:
        return paddle.transactions.create(
            order.items,
            customer_id=customer_id,
            custom_data=custom_data,
            checkout_url=checkout_url,
            discount_id=order.discount_id,
        )
    except ApiError as error:
        raise refusal_of(error) or error from None
    except Unavailable as error:
        # Never create blindly twice: the lost answer may be a transaction Paddle made.
        found = _open_checkout(paddle, order, customer_id) if error.may_have_applied else None
        if found is None:
            raise
        return found


def _customer_for(session: Session, paddle: Client, order: Order) -> str | None:
    """The Paddle customer this checkout pays as: the account's own, else the customer
    Paddle has (or makes) for the caller's email, if that email may be trusted with it.

    An account owns its customer; an email never hands it another account's. The email is
    used only when the identity provider verified it (or the deployment trusts its
    provider), and a customer found by it is taken only if no other account of ours owns
    it and its custom_data names no other account. Otherwise the transaction has no
    customer and Paddle's checkout asks the buyer for their details."""
    if order.customer_id or not order.email or not order.email_verified:
        return order.customer_id
    customer = paddle.customers.get_or_create(
        order.email, custom_data={"app_account_id": order.account_id}
    )
    named, _ = app_ids(customer.get("custom_data"))
    owner = account_for_customer(session, customer["id"])
    session.rollback()  # a one-statement read; nothing held while Paddle answers
    if named not in (None, order.account_id) or (owner and owner.id != order.account_id):
        return None
    return customer["id"]


def _pending_row(session: Session, order: Order, wanted_id: uuid.UUID) -> Subscription:
    """The account's pending checkout, locked; created (with the id the transaction names)
    if there is none. A live one that appeared meanwhile is a 409."""
    current = live_subscription(session, order.account_id)
    if current is None:
        try:
            with session.begin_nested():
                current = Subscription(id=wanted_id, account_id=order.account_id, status="pending")
                session.add(current)
            return current
        except IntegrityError:
            current = live_subscription(session, order.account_id)  # a second click won
    if current is None or current.status != "pending":
        raise SubscriptionExists()
    return lock_by_id(session, current.id) or current


def _keep_checkout_transaction(
    session: Session, transaction: dict[str, Any], account_id: str
) -> None:
    """The ledger keeps the transaction as Paddle answered, and that our checkout made it
    for this account: whichever Paddle customer pays it, it and what it buys are the
    account's (`ownership`)."""
    answered_at = parse_timestamp(transaction.get("updated_at")) or utcnow()
    record_transaction(
        session, transaction, occurred_at=answered_at, event_id=None, checkout_account_id=account_id
    )


def start_checkout(
    session: Session,
    paddle: Client,
    caller: Caller,
    plan: Plan,
    *,
    quantity: int = 1,
    checkout_url: str | None = None,
    discount: GivenCode | None = None,
) -> CheckoutStarted:
    order = _with_discount(paddle, _read_order(session, caller, plan, quantity), discount)

    subscription_id = order.pending_id or uuid.uuid4()  # named in the transaction's custom_data
    customer_id = _customer_for(session, paddle, order)
    custom_data = {"app_account_id": order.account_id, "app_subscription_id": str(subscription_id)}
    transaction = _transaction_for(paddle, order, customer_id, checkout_url, custom_data)

    account = ensure_account(session, order.account_id, order.email)
    attach_customer(session, account, customer_id)
    _, named_id = app_ids(transaction.get("custom_data"))  # a reused one names its own
    subscription = _pending_row(session, order, named_id or subscription_id)
    subscription.plan_id = order.plan_id
    subscription.price_id = order.price_id
    subscription.quantity = order.quantity
    subscription.currency = order.currency
    subscription.paddle_transaction_id = transaction["id"]
    _keep_checkout_transaction(session, transaction, order.account_id)
    session.flush()
    return CheckoutStarted(
        subscription_id=str(subscription.id),
        transaction_id=transaction["id"],
        checkout_url=(transaction.get("checkout") or {}).get("url"),
    )


# One-time products: bought again and again, so no "already has one" check, and no
# subscription row; the transaction is kept in the ledger at once, which is where the next
# click finds it to reuse while it is still open.


def find_product(session: Session, slug: str) -> Product:
    product = session.scalars(
        select(Product).where(Product.slug == slug, Product.active.is_(True))
    ).first()
    if product is None:
        raise ProductNotFound(f"No active product {slug!r}.")
    return product


def _read_product_order(session: Session, caller: Caller, product: Product, quantity: int):
    account = session.get(Account, caller.account_id)
    pending = session.scalars(
        select(Transaction)
        .where(
            Transaction.account_id == caller.account_id,
            Transaction.status.in_(OPEN_TRANSACTION_STATUSES),
        )
        .order_by(Transaction.id.desc())
    ).all()
    reusable = next(
        (
            row.paddle_transaction_id
            for row in pending
            if [(item["price_id"], item["quantity"]) for item in row.items]
            == [(product.price_id, quantity)]
        ),
        None,
    )
    order = Order(
        **_buyer(caller, account),
        plan_id=None,
        price_id=product.price_id,
        currency=product.currency,
        quantity=quantity,
        pending_transaction_id=reusable,
        pending_items=(product.price_id, quantity) if reusable else None,
    )
    session.rollback()
    return order


def start_purchase(
    session: Session,
    paddle: Client,
    caller: Caller,
    product: Product,
    *,
    quantity: int = 1,
    checkout_url: str | None = None,
    discount: GivenCode | None = None,
) -> CheckoutStarted:
    """A Paddle transaction for one-time `product`, with our custom_data; an open one for
    the same product, quantity and discount is reused. The purchase is recorded when
    Paddle reports the transaction completed."""
    slug = product.slug  # read now: the order's read ends its transaction, expiring `product`
    order = _read_product_order(session, caller, product, quantity)
    order = _with_discount(paddle, order, discount)
    customer_id = _customer_for(session, paddle, order)
    custom_data = {"app_account_id": order.account_id, "app_product": slug}
    transaction = _transaction_for(paddle, order, customer_id, checkout_url, custom_data)

    # The customer's lock first, as the `customer.*` handler takes it before the account
    # (the ledger's write takes it too): the other order deadlocks with that handler.
    serialise_on_customer(session, customer_id)
    account = ensure_account(session, order.account_id, order.email)
    attach_customer(session, account, customer_id)
    _keep_checkout_transaction(session, transaction, order.account_id)
    session.flush()
    return CheckoutStarted(
        subscription_id=None,
        transaction_id=transaction["id"],
        checkout_url=(transaction.get("checkout") or {}).get("url"),
    )
