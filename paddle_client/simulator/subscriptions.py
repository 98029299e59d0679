"""Subscriptions: created by a paid checkout, changed, paused, resumed, canceled, charged,
renewed and dunned.

Mixed into `paddle_client.simulator.state.SimState`, whose tables, clock, ids and events
(`self.customers`, `self.now()`, `self.new_id`, `self.emit`, ...) these methods use.
"""

from __future__ import annotations

import copy
from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime, timedelta

from paddle_client.simulator.clock import stamp
from paddle_client.simulator.errors import SimError, invalid_field
from paddle_client.timestamps import add_interval, parse_timestamp

RENEWAL_LOCK = timedelta(minutes=30)


class Subscriptions:
    def subscription_with_next_transaction(self, subscription_id: str) -> dict:
        """`GET /subscriptions/{id}?include=next_transaction`: what the next renewal bills,
        its items and the one-time charges waiting for it."""
        with self.lock:
            subscription = copy.deepcopy(self.subscription(subscription_id))
            lines = [
                self._line(item["price"], item["quantity"]) for item in subscription["items"]
            ] + copy.deepcopy(self.next_period_charges.get(subscription_id, []))
            billed_at = parse_timestamp(subscription["next_billed_at"])
            discount = self.discount_in_effect(subscription, billed_at) if billed_at else None
            subscription["next_transaction"] = {
                "billing_period": subscription["current_billing_period"],
                "details": {
                    "totals": self._totals(lines, discount=discount),
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
        self,
        count: int,
        price_id: str,
        custom_data_prefix: str | None = None,
        custom_data_key: str = "app_account_id",
        with_customers: bool = False,
    ) -> list[str]:
        """Bulk-create active subscriptions without events (benchmarks, large tests); their
        custom_data names `{custom_data_key: prefix + n}`, and with `with_customers` each
        customer exists too (`seeded+n@example.com`), with the same custom_data."""
        with self.lock:
            price = self.price(price_id)
            now = self.now()
            ends = add_interval(now, price["billing_cycle"]["interval"])
            period = {"starts_at": stamp(now), "ends_at": stamp(ends)}
            created = []
            for index in range(count):
                customer_id = self.new_id("ctm")
                custom = (
                    {custom_data_key: f"{custom_data_prefix}{index}"}
                    if custom_data_prefix
                    else None
                )
                if with_customers:
                    self.customers[customer_id] = {
                        "id": customer_id,
                        "name": None,
                        "email": f"seeded+{index}@example.com",
                        "locale": "en",
                        "status": "active",
                        "custom_data": custom,
                        "marketing_consent": False,
                        "import_meta": None,
                        "created_at": stamp(now),
                        "updated_at": stamp(now),
                    }
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
            renewal = parse_timestamp(subscription["next_billed_at"])
            if items is not None and renewal and renewal - now < RENEWAL_LOCK:
                raise SimError(
                    409,
                    "subscription_locked_renewal",
                    "No changes within 30 minutes before a renewal.",
                )
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
            if "discount" in body:
                result["discount"] = self.apply_to_subscription(result, body["discount"])
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
        billed_at = parse_timestamp(subscription["next_billed_at"])
        discount = self.discount_in_effect(subscription, billed_at) if billed_at else None
        next_totals = self._totals(lines, discount=discount)
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
            discount=self.discount_in_effect(subscription, at),
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
