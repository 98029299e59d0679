"""The simulated Paddle account: catalogue, customers, transactions, subscriptions, and the
billing rules that move them (checkout, renewals, pauses, cancellations, dunning).

Every change emits the events Paddle would, through the `emit` callback, in a realistic order.
Entities are plain dicts shaped like Paddle's (see ../../shared/paddle/API-NOTES.md).
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from paddle_client.simulator.clock import SimClock, stamp
from paddle_client.timestamps import add_interval, parse_timestamp

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
Emit = Callable[[str, dict[str, Any], datetime], None]


class SimError(Exception):
    """An answer in Paddle's error envelope."""

    def __init__(self, status: int, code: str, detail: str, errors: list[dict] | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors or []


def not_found(kind: str, entity_id: str) -> SimError:
    return SimError(404, "not_found", f"Entity {entity_id} not found ({kind})")


def invalid_field(field: str, message: str) -> SimError:
    return SimError(
        400, "invalid_field", "Invalid request.", [{"field": field, "message": message}]
    )


def _encode(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 32)
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))


CATALOG = [
    # product id, product name, price id, description, amount, interval (None: one-time),
    # and optionally the days of a trial
    (
        "pro_01hsim0starter00000000000",
        "Starter",
        "pri_01hsim0startermonth000000",
        "Monthly",
        "1900",
        "month",
    ),
    (
        "pro_01hsim0team0000000000000",
        "Team",
        "pri_01hsim0teammonth000000000",
        "Monthly per seat",
        "4900",
        "month",
    ),
    (
        "pro_01hsim0team0000000000000",
        "Team",
        "pri_01hsim0teamyear0000000000",
        "Yearly per seat",
        "49000",
        "year",
    ),
    (
        "pro_01hsim0storage00000000000",
        "Extra storage",
        "pri_01hsim0storagemonth00000",
        "Monthly add-on",
        "500",
        "month",
    ),
    (
        "pro_01hsim0onboarding00000000",
        "Onboarding",
        "pri_01hsim0onboarding0000000",
        "One-time",
        "9900",
        None,
    ),
    (
        "pro_01hsim0pro00000000000000",
        "Pro",
        "pri_01hsim0protrial000000000",
        "Monthly, 14-day trial",
        "2900",
        "month",
        14,
    ),
]


class SimState:
    def __init__(self, clock: SimClock, emit: Emit, public_url: str = "http://127.0.0.1:8090"):
        self.clock = clock
        self._emit = emit
        self.public_url = public_url.rstrip("/")
        self.lock = threading.RLock()
        self.reset()

    # Bookkeeping

    def reset(self) -> None:
        with self.lock:
            self._counter = itertools.count(1)
            self._epoch = time.time_ns() // 1_000_000  # ms: ids of a restarted simulator differ
            self.customers: dict[str, dict] = {}
            self.products: dict[str, dict] = {}
            self.prices: dict[str, dict] = {}
            self.transactions: dict[str, dict] = {}
            self.subscriptions: dict[str, dict] = {}
            self.subscription_order: list[str] = []  # ids, ascending (ids grow with time)
            self.fail_next_renewal: set[str] = set()
            # One-time charges billed with the subscription's next renewal, by subscription.
            self.next_period_charges: dict[str, list[dict]] = {}
            self._last_event_at: datetime | None = None
            self._load_catalog()

    def new_id(self, prefix: str) -> str:
        # 26 chars like Paddle's; they sort in creation order and differ between runs.
        return f"{prefix}_{_encode((self._epoch << 40) + next(self._counter), 26)}"

    def now(self) -> datetime:
        return self.clock.now()

    def emit(self, event_type: str, entity: dict[str, Any], at: datetime | None = None) -> None:
        moment = at or self.now()
        if self._last_event_at is not None and moment <= self._last_event_at:
            moment = self._last_event_at + timedelta(microseconds=1)
        self._last_event_at = moment
        data = copy.deepcopy(entity)
        data.pop("management_urls", None)
        self._emit(event_type, data, moment)

    def _load_catalog(self) -> None:
        created = stamp(self.now())
        for product_id, name, price_id, description, amount, interval, *trial in CATALOG:
            self.products.setdefault(
                product_id,
                {
                    "id": product_id,
                    "name": name,
                    "description": None,
                    "type": "standard",
                    "tax_category": "standard",
                    "image_url": None,
                    "custom_data": None,
                    "status": "active",
                    "import_meta": None,
                    "created_at": created,
                    "updated_at": created,
                },
            )
            self.prices[price_id] = {
                "id": price_id,
                "product_id": product_id,
                "description": description,
                "name": description,
                "type": "standard",
                "billing_cycle": {"interval": interval, "frequency": 1} if interval else None,
                "trial_period": {"interval": "day", "frequency": trial[0]} if trial else None,
                "tax_mode": "account_setting",
                "unit_price": {"amount": amount, "currency_code": "USD"},
                "unit_price_overrides": [],
                "quantity": {"minimum": 1, "maximum": 999},
                "status": "active",
                "custom_data": None,
                "import_meta": None,
                "created_at": created,
                "updated_at": created,
            }

    # Lookups

    @staticmethod
    def _get(table: dict[str, dict], kind: str, entity_id: str) -> dict:
        entity = table.get(entity_id)
        if entity is None:
            raise not_found(kind, entity_id)
        return entity

    def price(self, price_id: str) -> dict:
        return self._get(self.prices, "price", price_id)

    def customer(self, customer_id: str) -> dict:
        return self._get(self.customers, "customer", customer_id)

    def transaction(self, transaction_id: str) -> dict:
        return self._get(self.transactions, "transaction", transaction_id)

    def subscription(self, subscription_id: str) -> dict:
        return self._get(self.subscriptions, "subscription", subscription_id)

    def subscription_with_next_transaction(self, subscription_id: str) -> dict:
        """`GET /subscriptions/{id}?include=next_transaction`: what the next renewal bills,
        its items and the one-time charges waiting for it."""
        with self.lock:
            subscription = copy.deepcopy(self.subscription(subscription_id))
            lines = [
                self._line(item["price"], item["quantity"]) for item in subscription["items"]
            ] + copy.deepcopy(self.next_period_charges.get(subscription_id, []))
            subscription["next_transaction"] = {
                "billing_period": subscription["current_billing_period"],
                "details": {
                    "totals": self._totals(lines),
                    "line_items": [
                        {"price_id": line["price"]["id"], "quantity": line["quantity"]}
                        for line in lines
                    ],
                },
            }
            return subscription

    def subscriptions_after(self, after: str | None, descending: bool = False) -> Iterable[dict]:
        order = self.subscription_order
        if descending:
            ids = reversed(order if after is None else order[: order.index(after)])
        else:
            ids = order[bisect_right(order, after) :] if after else order
        return (self.subscriptions[sub_id] for sub_id in ids)

    # Customers

    def create_customer(self, email: str, name=None, locale=None, custom_data=None) -> dict:
        if not email or "@" not in email:
            raise invalid_field("email", "must be a valid email address")
        with self.lock:
            for existing in self.customers.values():
                if existing["email"].lower() == email.lower():
                    raise SimError(
                        409,
                        "customer_already_exists",
                        f"customer email conflicts with customer of id {existing['id']}",
                    )
            now = stamp(self.now())
            customer = {
                "id": self.new_id("ctm"),
                "name": name,
                "email": email,
                "locale": locale or "en",
                "status": "active",
                "custom_data": custom_data,
                "marketing_consent": False,
                "import_meta": None,
                "created_at": now,
                "updated_at": now,
            }
            self.customers[customer["id"]] = customer
            self.emit("customer.created", customer)
            return customer

    def portal_session(self, customer_id: str, subscription_ids: list[str]) -> dict:
        with self.lock:
            self.customer(customer_id)
            token = self.new_id("tok")
            return {
                "id": self.new_id("cpls"),
                "customer_id": customer_id,
                "urls": {
                    "general": {
                        "overview": f"{self.public_url}/portal/{customer_id}?token={token}"
                    },
                    "subscriptions": [
                        {
                            "id": sub_id,
                            "cancel_subscription": (
                                f"{self.public_url}/portal/{sub_id}/cancel?token={token}"
                            ),
                            "update_subscription_payment_method": (
                                f"{self.public_url}/portal/{sub_id}/payment?token={token}"
                            ),
                        }
                        for sub_id in subscription_ids
                    ],
                },
                "created_at": stamp(self.now()),
            }

    # Transactions

    def _line(self, price: dict, quantity: int) -> dict:
        return {"price": copy.deepcopy(price), "quantity": quantity, "proration": None}

    @staticmethod
    def _amount(item: dict, *, trial_free: bool = False) -> int:
        """What an item costs in this transaction: nothing for a trial's checkout."""
        if trial_free and item["price"].get("trial_period") and item["price"]["billing_cycle"]:
            return 0
        return int(item["price"]["unit_price"]["amount"]) * item["quantity"]

    def _line_items(self, items: list[dict], *, trial_free: bool = False) -> list[dict]:
        lines = []
        for item in items:
            amount = str(self._amount(item, trial_free=trial_free))
            lines.append(
                {
                    "id": self.new_id("txnitm"),
                    "price_id": item["price"]["id"],
                    "quantity": item["quantity"],
                    "totals": {"subtotal": amount, "discount": "0", "tax": "0", "total": amount},
                }
            )
        return lines

    def _totals(self, items: list[dict], currency: str = "USD", *, trial_free=False) -> dict:
        subtotal = sum(self._amount(item, trial_free=trial_free) for item in items)
        return {
            "subtotal": str(subtotal),
            "discount": "0",
            "tax": "0",
            "total": str(subtotal),
            "credit": "0",
            "credit_to_balance": "0",
            "balance": str(subtotal),
            "grand_total": str(subtotal),
            "fee": None,
            "earnings": None,
            "currency_code": currency,
        }

    def _new_transaction(
        self,
        items,
        *,
        origin,
        customer_id=None,
        custom_data=None,
        subscription_id=None,
        checkout_url=None,
        status=None,
    ) -> dict:
        now = stamp(self.now())
        transaction_id = self.new_id("txn")
        base = checkout_url or f"{self.public_url}/checkout"
        checkout = origin in ("api", "web")  # a trial's first transaction charges nothing
        transaction = {
            "id": transaction_id,
            "status": status or ("ready" if customer_id else "draft"),
            "customer_id": customer_id,
            "address_id": None,
            "business_id": None,
            "custom_data": custom_data,
            "origin": origin,
            "collection_mode": "automatic",
            "subscription_id": subscription_id,
            "invoice_id": None,
            "invoice_number": None,
            "billing_details": None,
            "billing_period": None,
            "currency_code": "USD",
            "discount_id": None,
            "created_at": now,
            "updated_at": now,
            "billed_at": None,
            "revised_at": None,
            "items": items,
            "details": {
                "totals": self._totals(items, trial_free=checkout),
                "line_items": self._line_items(items, trial_free=checkout),
            },
            "payments": [],
            "checkout": {"url": f"{base}?_ptxn={transaction_id}"},
        }
        self.transactions[transaction_id] = transaction
        return transaction

    def create_transaction(self, body: dict) -> dict:
        items_in = body.get("items")
        if not isinstance(items_in, list) or not items_in:
            raise invalid_field("items", "at least one item is required")
        with self.lock:
            items = []
            for index, item in enumerate(items_in):
                price = self.price(str(item.get("price_id")))
                quantity = int(item.get("quantity", 1))
                if quantity < 1:
                    raise invalid_field(f"items[{index}].quantity", "must be at least 1")
                items.append(self._line(price, quantity))
            customer_id = body.get("customer_id")
            if customer_id:
                self.customer(customer_id)
            transaction = self._new_transaction(
                items,
                origin="api",
                customer_id=customer_id,
                custom_data=body.get("custom_data"),
                checkout_url=(body.get("checkout") or {}).get("url"),
            )
            self.emit("transaction.created", transaction)
            if transaction["status"] == "ready":
                self.emit("transaction.ready", transaction)
            return transaction

    def invoice_url(self, transaction_id: str) -> str:
        """Paddle's rule: completed transactions (or billed manually collected ones) have an
        invoice PDF, zero-value ones never."""
        transaction = self.transaction(transaction_id)
        invoiced = transaction["status"] == "completed" or (
            transaction["status"] == "billed" and transaction["collection_mode"] == "manual"
        )
        if not invoiced:
            raise SimError(400, "transaction_not_billed", "The transaction has no invoice yet.")
        if transaction["details"]["totals"]["grand_total"] == "0":
            raise SimError(
                400, "transaction_invoice_unavailable", "A zero-value transaction has no invoice."
            )
        return f"{self.public_url}/invoices/{transaction_id}.pdf?token={self.new_id('tok')}"

    def _pay(self, transaction: dict, at: datetime, status: str = "captured") -> None:
        transaction["payments"].insert(
            0,
            {
                "payment_attempt_id": self.new_id("pay"),
                "amount": transaction["details"]["totals"]["grand_total"],
                "status": status,
                "error_code": None if status == "captured" else "declined",
                "method_details": {"type": "card", "card": {"type": "visa", "last4": "4242"}},
                "created_at": stamp(at),
                "captured_at": stamp(at) if status == "captured" else None,
            },
        )

    def _payable(self, transaction_id: str) -> dict:
        transaction = self.transaction(transaction_id)
        if transaction["status"] not in {"draft", "ready", "past_due"}:
            raise SimError(
                400, "transaction_not_payable", f"transaction is {transaction['status']}"
            )
        return transaction

    def complete_checkout(self, transaction_id: str, email: str | None = None) -> dict:
        """The buyer pressed Pay on the hosted checkout."""
        with self.lock:
            transaction = self._payable(transaction_id)
            now = self.now()
            if transaction["origin"] == "subscription_recurring":
                return self._recover_past_due(transaction, now)
            if not transaction["customer_id"]:
                buyer = email or f"buyer+{next(self._counter)}@example.com"
                existing = next((c for c in self.customers.values() if c["email"] == buyer), None)
                transaction["customer_id"] = (existing or self.create_customer(buyer))["id"]
            self._pay(transaction, now)
            transaction["status"] = "paid"
            transaction["billed_at"] = transaction["updated_at"] = stamp(now)
            self.emit("transaction.paid", transaction)
            if transaction["origin"] == "subscription_payment_method_change":
                self._finish_transaction(transaction, now)
                return transaction
            recurring = [item for item in transaction["items"] if item["price"]["billing_cycle"]]
            if recurring:
                cycle = recurring[0]["price"]["billing_cycle"]
                period = {
                    "starts_at": stamp(now),
                    "ends_at": stamp(add_interval(now, cycle["interval"], cycle["frequency"])),
                }
                trial = recurring[0]["price"].get("trial_period")
                if trial:
                    ends = add_interval(now, trial["interval"], trial["frequency"])
                    period = {"starts_at": stamp(now), "ends_at": stamp(ends)}
                transaction["billing_period"] = period
                subscription = self._new_subscription(transaction, recurring, now, period)
                if trial:
                    subscription["status"] = "trialing"
                    for item in subscription["items"]:
                        item["trial_dates"] = dict(period)
                transaction["subscription_id"] = subscription["id"]
                created = copy.deepcopy(subscription)
                created["transaction_id"] = transaction["id"]
                self.emit("subscription.created", created)
                self.emit(
                    "subscription.trialing" if trial else "subscription.activated", subscription
                )
            self._finish_transaction(transaction, now)
            return transaction

    def _finish_transaction(self, transaction: dict, at: datetime) -> None:
        transaction["status"] = "completed"
        transaction["invoice_id"] = self.new_id("inv")
        transaction["invoice_number"] = f"SIM-{next(self._counter)}"
        transaction["updated_at"] = stamp(at)
        self.emit("transaction.updated", transaction)
        self.emit("transaction.completed", transaction)

    def decline_checkout(self, transaction_id: str) -> dict:
        with self.lock:
            transaction = self._payable(transaction_id)
            now = self.now()
            self._pay(transaction, now, status="error")
            transaction["updated_at"] = stamp(now)
            self.emit("transaction.payment_failed", transaction)
            return transaction

    # Subscriptions

    def _subscription_item(
        self, price: dict, quantity: int, now: datetime, next_billed: datetime | None
    ) -> dict:
        product = self.products[price["product_id"]]
        return {
            "status": "active",
            "quantity": quantity,
            "recurring": True,
            "created_at": stamp(now),
            "updated_at": stamp(now),
            "previously_billed_at": stamp(now),
            "next_billed_at": stamp(next_billed),
            "trial_dates": None,
            "price": copy.deepcopy(price),
            "product": copy.deepcopy(product),
        }

    def _new_subscription(
        self, transaction: dict, items: list[dict], now: datetime, period: dict
    ) -> dict:
        ends = parse_timestamp(period["ends_at"])
        subscription_id = self.new_id("sub")
        subscription = {
            "id": subscription_id,
            "status": "active",
            "customer_id": transaction["customer_id"],
            "address_id": None,
            "business_id": None,
            "currency_code": transaction["currency_code"],
            "created_at": stamp(now),
            "updated_at": stamp(now),
            "started_at": stamp(now),
            "first_billed_at": stamp(now),
            "next_billed_at": period["ends_at"],
            "paused_at": None,
            "canceled_at": None,
            "collection_mode": "automatic",
            "billing_details": None,
            "current_billing_period": dict(period),
            "billing_cycle": dict(items[0]["price"]["billing_cycle"]),
            "scheduled_change": None,
            "items": [
                self._subscription_item(item["price"], item["quantity"], now, ends)
                for item in items
            ],
            "custom_data": copy.deepcopy(transaction["custom_data"]),
            "management_urls": {
                "update_payment_method": f"{self.public_url}/portal/{subscription_id}/payment",
                "cancel": f"{self.public_url}/portal/{subscription_id}/cancel",
            },
            "discount": None,
            "import_meta": None,
        }
        self.subscriptions[subscription_id] = subscription
        self.subscription_order.append(subscription_id)
        return subscription

    def seed_subscriptions(
        self, count: int, price_id: str, custom_data_prefix: str | None = None
    ) -> list[str]:
        """Bulk-create active subscriptions without events (benchmarks, large tests)."""
        with self.lock:
            price = self.price(price_id)
            now = self.now()
            ends = add_interval(now, price["billing_cycle"]["interval"])
            period = {"starts_at": stamp(now), "ends_at": stamp(ends)}
            created = []
            for index in range(count):
                customer_id = self.new_id("ctm")
                custom = (
                    {"app_account_id": f"{custom_data_prefix}{index}"}
                    if custom_data_prefix
                    else None
                )
                transaction = {
                    "customer_id": customer_id,
                    "currency_code": "USD",
                    "custom_data": custom,
                }
                subscription = self._new_subscription(
                    transaction, [self._line(price, 1)], now, period
                )
                created.append(subscription["id"])
            return created

    def _touch(self, subscription: dict, at: datetime) -> None:
        subscription["updated_at"] = stamp(at)

    def _require_not_canceled(self, subscription: dict) -> None:
        if subscription["status"] == "canceled":
            raise SimError(
                400, "subscription_is_canceled_action_invalid", "The subscription is canceled."
            )

    def pause(self, subscription_id: str, body: dict) -> dict:
        with self.lock:
            subscription = self.subscription(subscription_id)
            self._require_not_canceled(subscription)
            if subscription["status"] == "paused":
                raise SimError(
                    400, "subscription_is_already_paused", "The subscription is already paused."
                )
            now = self.now()
            resume_at = body.get("resume_at")
            if body.get("effective_from", "next_billing_period") == "immediately":
                self._apply_pause(subscription, now, resume_at)
                return subscription
            if subscription["scheduled_change"]:
                raise SimError(
                    400, "subscription_locked_pending_changes", "A scheduled change is pending."
                )
            return self._schedule_at_period_end(subscription, "pause", now, resume_at)

    def _schedule_at_period_end(
        self, subscription: dict, action: str, now: datetime, resume_at: str | None = None
    ) -> dict:
        subscription["scheduled_change"] = {
            "action": action,
            "effective_at": subscription["current_billing_period"]["ends_at"],
            "resume_at": resume_at,
        }
        self._touch(subscription, now)
        self.emit("subscription.updated", subscription)
        return subscription

    def _apply_pause(self, subscription: dict, at: datetime, resume_at: str | None) -> None:
        subscription["status"] = "paused"
        subscription["paused_at"] = stamp(at)
        subscription["current_billing_period"] = None
        subscription["next_billed_at"] = None
        subscription["scheduled_change"] = (
            {"action": "resume", "effective_at": resume_at, "resume_at": None}
            if resume_at
            else None
        )
        self._touch(subscription, at)
        self.emit("subscription.paused", subscription, at)

    def resume(self, subscription_id: str, body: dict) -> dict:
        with self.lock:
            subscription = self.subscription(subscription_id)
            self._require_not_canceled(subscription)
            now = self.now()
            change = subscription["scheduled_change"] or {}
            if subscription["status"] == "active" and change.get("action") == "pause":
                effective = body.get("effective_from", "immediately")
                change["resume_at"] = stamp(now) if effective == "immediately" else effective
                self._touch(subscription, now)
                self.emit("subscription.updated", subscription)
                return subscription
            if subscription["status"] != "paused":
                raise SimError(
                    400, "subscription_is_not_paused", "Only a paused subscription can resume."
                )
            effective = body.get("effective_from", "immediately")
            if effective != "immediately":
                subscription["scheduled_change"] = {
                    "action": "resume",
                    "effective_at": effective,
                    "resume_at": None,
                }
                self._touch(subscription, now)
                self.emit("subscription.updated", subscription)
                return subscription
            self._apply_resume(subscription, now)
            return subscription

    def _apply_resume(self, subscription: dict, at: datetime) -> None:
        cycle = subscription["billing_cycle"]
        ends = add_interval(at, cycle["interval"], cycle["frequency"])
        subscription.update(
            status="active",
            paused_at=None,
            scheduled_change=None,
            current_billing_period={"starts_at": stamp(at), "ends_at": stamp(ends)},
            next_billed_at=stamp(ends),
        )
        self._touch(subscription, at)
        self.emit("subscription.resumed", subscription, at)
        self._bill(subscription, at, origin="subscription_recurring")

    def cancel(self, subscription_id: str, body: dict) -> dict:
        with self.lock:
            subscription = self.subscription(subscription_id)
            self._require_not_canceled(subscription)
            now = self.now()
            default = "immediately" if subscription["status"] == "paused" else "next_billing_period"
            if body.get("effective_from", default) == "immediately":
                self._apply_cancel(subscription, now)
                return subscription
            return self._schedule_at_period_end(subscription, "cancel", now)

    def _apply_cancel(self, subscription: dict, at: datetime) -> None:
        subscription.update(
            status="canceled",
            canceled_at=stamp(at),
            scheduled_change=None,
            current_billing_period=None,
            next_billed_at=None,
        )
        self._touch(subscription, at)
        self.emit("subscription.canceled", subscription, at)

    def _proposed_items(self, subscription: dict, body: dict, now: datetime) -> list[dict] | None:
        if "items" not in body:
            return None
        if not body.get("proration_billing_mode"):
            raise invalid_field("proration_billing_mode", "required when items change")
        current = {item["price"]["id"]: item for item in subscription["items"]}
        ends = (
            parse_timestamp(subscription["next_billed_at"])
            if subscription["next_billed_at"]
            else None
        )
        items = []
        for index, item in enumerate(body["items"]):
            price = self.price(str(item.get("price_id")))
            if not price["billing_cycle"]:
                raise invalid_field(
                    f"items[{index}].price_id", "only recurring prices can be added"
                )
            quantity = int(
                item.get("quantity") or current.get(price["id"], {}).get("quantity") or 1
            )
            items.append(self._subscription_item(price, quantity, now, ends))
        return items

    def update(self, subscription_id: str, body: dict, *, preview: bool = False) -> dict:
        with self.lock:
            subscription = self.subscription(subscription_id)
            if subscription["status"] == "canceled":
                raise SimError(
                    400, "subscription_update_when_canceled", "The subscription is canceled."
                )
            now = self.now()
            items = self._proposed_items(subscription, body, now)
            if (
                items is not None
                and subscription["scheduled_change"]
                and "scheduled_change" not in body
            ):
                raise SimError(
                    400, "subscription_locked_pending_changes", "Remove the scheduled change first."
                )
            result = copy.deepcopy(subscription) if preview else subscription
            if "scheduled_change" in body:
                if body["scheduled_change"] is not None:
                    raise invalid_field("scheduled_change", "only null is accepted")
                result["scheduled_change"] = None
            if "custom_data" in body:
                result["custom_data"] = body["custom_data"]
            immediate = None
            if items is not None:
                old_total = sum(
                    int(i["price"]["unit_price"]["amount"]) * i["quantity"] for i in result["items"]
                )
                result["items"] = items
                new_total = sum(
                    int(i["price"]["unit_price"]["amount"]) * i["quantity"] for i in items
                )
                difference = new_total - old_total
                if body["proration_billing_mode"].endswith("_immediately") and difference > 0:
                    immediate = {"amount": difference}
            if preview:
                return self._preview(result, immediate)
            self._touch(subscription, now)
            self.emit("subscription.updated", subscription)
            if immediate:
                self._bill(
                    subscription, now, origin="subscription_update", amount=immediate["amount"]
                )
            return subscription

    def _preview(self, subscription: dict, immediate: dict | None) -> dict:
        lines = [{"price": i["price"], "quantity": i["quantity"]} for i in subscription["items"]]
        next_totals = self._totals(lines)
        amount = str(immediate["amount"]) if immediate else "0"
        preview = copy.deepcopy(subscription)
        preview.pop("id", None)
        preview["immediate_transaction"] = (
            {
                "billing_period": subscription["current_billing_period"],
                "details": {
                    "totals": {
                        **next_totals,
                        "subtotal": amount,
                        "total": amount,
                        "grand_total": amount,
                    }
                },
            }
            if immediate
            else None
        )
        preview["next_transaction"] = {
            "billing_period": subscription["current_billing_period"],
            "details": {"totals": next_totals},
        }
        preview["update_summary"] = {
            "credit": {"amount": "0", "currency_code": "USD"},
            "charge": {"amount": amount, "currency_code": "USD"},
            "result": {"action": "charge", "amount": amount, "currency_code": "USD"},
        }
        return preview

    def activate(self, subscription_id: str) -> dict:
        with self.lock:
            subscription = self.subscription(subscription_id)
            if subscription["status"] != "trialing":
                raise SimError(
                    400,
                    "subscription_not_trialing",
                    "Only a trialing subscription can be activated.",
                )
            self._renew(subscription, self.now())  # the trial ends now, and it is billed
            return subscription

    def payment_method_transaction(self, subscription_id: str) -> dict:
        with self.lock:
            subscription = self.subscription(subscription_id)
            self._require_not_canceled(subscription)
            if subscription["status"] == "past_due":
                for transaction in reversed(list(self.transactions.values())):
                    if (
                        transaction["subscription_id"] == subscription_id
                        and transaction["status"] == "past_due"
                    ):
                        return transaction
            transaction = self._new_transaction(
                [],
                origin="subscription_payment_method_change",
                customer_id=subscription["customer_id"],
                subscription_id=subscription_id,
                status="ready",
            )
            self.emit("transaction.created", transaction)
            return transaction

    def charge(self, subscription_id: str, body: dict) -> dict:
        with self.lock:
            subscription = self.subscription(subscription_id)
            self._require_not_canceled(subscription)
            if body.get("effective_from") not in {"immediately", "next_billing_period"}:
                raise invalid_field("effective_from", "immediately or next_billing_period")
            lines = []
            for index, item in enumerate(body.get("items") or []):
                price = self.price(str(item.get("price_id")))
                if price["billing_cycle"]:
                    raise invalid_field(
                        f"items[{index}].price_id", "only one-time prices can be charged"
                    )
                lines.append(self._line(price, int(item.get("quantity", 1))))
            if not lines:
                raise invalid_field("items", "at least one item is required")
            if body["effective_from"] == "next_billing_period":
                self.next_period_charges.setdefault(subscription_id, []).extend(lines)
            else:
                transaction = self._new_transaction(
                    lines,
                    origin="subscription_charge",
                    customer_id=subscription["customer_id"],
                    subscription_id=subscription_id,
                    status="ready",
                )
                self.emit("transaction.created", transaction)
                self._pay(transaction, self.now())
                self._finish_transaction(transaction, self.now())
            return subscription

    # Time

    def _open_bill(self, subscription: dict, at: datetime, origin: str) -> dict:
        """A transaction for the subscription's items and current period, announced."""
        lines = [
            {"price": copy.deepcopy(item["price"]), "quantity": item["quantity"], "proration": None}
            for item in subscription["items"]
        ]
        if origin == "subscription_recurring":  # a renewal bills the charges waiting for it
            lines += self.next_period_charges.pop(subscription["id"], [])
        transaction = self._new_transaction(
            lines,
            origin=origin,
            customer_id=subscription["customer_id"],
            custom_data=subscription["custom_data"],
            subscription_id=subscription["id"],
            status="ready",
        )
        transaction["billing_period"] = subscription["current_billing_period"]
        transaction["created_at"] = transaction["updated_at"] = stamp(at)
        self.emit("transaction.created", transaction, at)
        return transaction

    def _bill(
        self, subscription: dict, at: datetime, *, origin: str, amount: int | None = None
    ) -> dict:
        transaction = self._open_bill(subscription, at, origin)
        if amount is not None:
            transaction["details"]["totals"] = {
                **transaction["details"]["totals"],
                "subtotal": str(amount),
                "total": str(amount),
                "grand_total": str(amount),
                "balance": str(amount),
            }
        self._pay(transaction, at)
        transaction["status"] = "paid"
        self.emit("transaction.paid", transaction, at)
        self._finish_transaction(transaction, at)
        return transaction

    def _renew(self, subscription: dict, at: datetime) -> None:
        cycle = subscription["billing_cycle"]
        ends = add_interval(at, cycle["interval"], cycle["frequency"])
        subscription["current_billing_period"] = {"starts_at": stamp(at), "ends_at": stamp(ends)}
        subscription["next_billed_at"] = stamp(ends)
        for item in subscription["items"]:
            item["previously_billed_at"], item["next_billed_at"] = stamp(at), stamp(ends)
        self._touch(subscription, at)
        if subscription["id"] in self.fail_next_renewal:
            self.fail_next_renewal.discard(subscription["id"])
            transaction = self._open_bill(subscription, at, "subscription_recurring")
            self._pay(transaction, at, status="error")
            self.emit("transaction.payment_failed", transaction, at)
            transaction["status"] = "past_due"
            self.emit("transaction.past_due", transaction, at)
            subscription["status"] = "past_due"
            self.emit("subscription.past_due", subscription, at)
            return
        if subscription["status"] == "trialing":
            subscription["status"] = "active"
            self.emit("subscription.activated", subscription, at)
        else:
            self.emit("subscription.updated", subscription, at)
        self._bill(subscription, at, origin="subscription_recurring")

    def _recover_past_due(self, transaction: dict, at: datetime) -> dict:
        self._pay(transaction, at)
        transaction["status"] = "paid"
        self.emit("transaction.paid", transaction, at)
        self._finish_transaction(transaction, at)
        subscription = self.subscriptions[transaction["subscription_id"]]
        if subscription["status"] == "past_due":
            subscription["status"] = "active"
            self._touch(subscription, at)
            self.emit("subscription.updated", subscription, at)
        return transaction

    def _next_due(self, until: datetime) -> tuple[datetime, dict, str] | None:
        best = None
        for subscription in self.subscriptions.values():
            change = subscription["scheduled_change"]
            candidates = []
            if change and change.get("effective_at"):
                candidates.append((parse_timestamp(change["effective_at"]), change["action"]))
            if subscription["status"] in {"active", "trialing"} and subscription["next_billed_at"]:
                candidates.append((parse_timestamp(subscription["next_billed_at"]), "renew"))
            for moment, action in candidates:
                if moment <= until and (best is None or moment < best[0]):
                    best = (moment, subscription, action)
        return best

    def advance(self, seconds: float) -> datetime:
        """Move the clock and run what falls due, in time order, as Paddle would have."""
        with self.lock:
            until = self.clock.advance(seconds)
            while (due := self._next_due(until)) is not None:
                moment, subscription, action = due
                if action == "cancel":
                    self._apply_cancel(subscription, moment)
                elif action == "pause":
                    resume_at = subscription["scheduled_change"].get("resume_at")
                    self._apply_pause(subscription, moment, resume_at)
                elif action == "resume":
                    self._apply_resume(subscription, moment)
                else:
                    self._renew(subscription, moment)
            return until
