"""Transactions: checkouts, their totals, payment (completing or declining a checkout), invoices.

Mixed into `paddle_client.simulator.state.SimState`, whose tables, clock, ids and events
(`self.customers`, `self.now()`, `self.new_id`, `self.emit`, ...) these methods use.
"""

from __future__ import annotations

import copy
from datetime import datetime

from paddle_client.simulator.clock import stamp
from paddle_client.simulator.errors import SimError, invalid_field
from paddle_client.timestamps import add_interval, parse_timestamp


class Transactions:
    def _line(self, price: dict, quantity: int) -> dict:
        return {"price": copy.deepcopy(price), "quantity": quantity, "proration": None}

    def _sums(self, item: dict, *, discount: dict | None = None, trial_free=False) -> dict:
        """An item's sums in this transaction: nothing for a trial's checkout."""
        price = item["price"]
        free = trial_free and bool(price.get("trial_period") and price["billing_cycle"])
        return self.line_sums(price, item["quantity"], discount=discount, free=free)["totals"]

    def _line_items(self, items: list[dict], *, discount=None, trial_free=False) -> list[dict]:
        lines = []
        for item in items:
            sums = self._sums(item, discount=discount, trial_free=trial_free)
            lines.append(
                {
                    "id": self.new_id("txnitm"),
                    "price_id": item["price"]["id"],
                    "quantity": item["quantity"],
                    "totals": {key: str(value) for key, value in sums.items()},
                }
            )
        return lines

    def _totals(self, items: list[dict], currency="USD", *, discount=None, trial_free=False):
        sums = [self._sums(item, discount=discount, trial_free=trial_free) for item in items]
        subtotal, off, tax, total = (
            sum(line[key] for line in sums) for key in ("subtotal", "discount", "tax", "total")
        )
        return {
            "subtotal": str(subtotal),
            "discount": str(off),
            "tax": str(tax),
            "total": str(total),
            "credit": "0",
            "credit_to_balance": "0",
            "balance": str(total),
            "grand_total": str(total),
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
        discount=None,
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
            "discount_id": discount["id"] if discount else None,
            "created_at": now,
            "updated_at": now,
            "billed_at": None,
            "revised_at": None,
            "items": items,
            "details": {
                "totals": self._totals(items, discount=discount, trial_free=checkout),
                "line_items": self._line_items(items, discount=discount, trial_free=checkout),
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
            discount = self.usable_discount(
                body.get("discount_id"), [item["price"]["id"] for item in items]
            )
            transaction = self._new_transaction(
                items,
                origin="api",
                customer_id=customer_id,
                custom_data=body.get("custom_data"),
                checkout_url=(body.get("checkout") or {}).get("url"),
                discount=discount,
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
            self.redeem_discount(transaction["discount_id"])
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
                subscription["discount"] = self.subscription_discount(
                    self.discounts.get(transaction["discount_id"] or ""),
                    parse_timestamp(period["starts_at"]),
                    subscription["billing_cycle"],
                )
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
