"""The simulated Paddle account: its tables (catalogue, customers, transactions,
subscriptions), ids, events and time. The rules of each resource live in a module of their
own (`customers`, `transactions`, `subscriptions`), mixed into `SimState`.

Every change emits the events Paddle would, through the `emit` callback, in a realistic order.
Entities are plain dicts shaped like Paddle's (see ../../shared/paddle/API-NOTES.md).
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from paddle_client.simulator.clock import SimClock, stamp
from paddle_client.simulator.customers import Customers
from paddle_client.simulator.discounts import Discounts
from paddle_client.simulator.errors import encode_id, not_found
from paddle_client.simulator.pricing import LOCAL_PRICES, Pricing
from paddle_client.simulator.subscriptions import Subscriptions
from paddle_client.simulator.transactions import Transactions
from paddle_client.timestamps import parse_timestamp

Emit = Callable[[str, dict[str, Any], datetime], None]


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


class SimState(Customers, Transactions, Subscriptions, Discounts, Pricing):
    """The facade the simulator's HTTP face calls: the tables, the clock, ids and events,
    with each resource's rules mixed in from its own module."""

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
            self.discounts: dict[str, dict] = {}
            self.subscriptions: dict[str, dict] = {}
            self.subscription_order: list[str] = []  # ids, ascending (ids grow with time)
            self.fail_next_renewal: set[str] = set()
            # One-time charges billed with the subscription's next renewal, by subscription.
            self.next_period_charges: dict[str, list[dict]] = {}
            self._last_event_at: datetime | None = None
            self._load_catalog()

    def new_id(self, prefix: str) -> str:
        # 26 chars like Paddle's; they sort in creation order and differ between runs.
        return f"{prefix}_{encode_id((self._epoch << 40) + next(self._counter), 26)}"

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
                "unit_price_overrides": [
                    {
                        "country_codes": countries,
                        "unit_price": {"amount": local, "currency_code": currency},
                    }
                    for countries, local, currency in LOCAL_PRICES.get(price_id, [])
                ],
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

    # Time

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
