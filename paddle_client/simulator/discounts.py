"""Discounts: the catalogue's codes (created, listed, archived), what one takes off a line,
and the checks Paddle makes before a transaction or a subscription may carry one.

Mixed into `paddle_client.simulator.state.SimState`, whose tables, clock, ids and events
(`self.discounts`, `self.now()`, `self.new_id`, `self.emit`, ...) these methods use.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from paddle_client.simulator.clock import stamp
from paddle_client.simulator.errors import SimError, invalid_field, not_found
from paddle_client.timestamps import add_interval, parse_timestamp

CODE = re.compile(r"^[a-zA-Z0-9]{1,32}$")
TYPES = ("flat", "flat_per_seat", "percentage")
WRITABLE = (
    "description",
    "enabled_for_checkout",
    "code",
    "type",
    "amount",
    "currency_code",
    "recur",
    "maximum_recurring_intervals",
    "usage_limit",
    "restrict_to",
    "expires_at",
    "custom_data",
    "status",
)


def whole(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


class Discounts:
    # The catalogue

    def create_discount(self, body: dict) -> dict:
        with self.lock:
            now = stamp(self.now())
            discount = {
                "id": self.new_id("dsc"),
                "status": "active",
                "description": None,
                "enabled_for_checkout": True,
                "code": None,
                "type": None,
                "mode": "standard",
                "amount": None,
                "currency_code": None,
                "recur": False,
                "maximum_recurring_intervals": None,
                "usage_limit": None,
                "restrict_to": None,
                "expires_at": None,
                "times_used": 0,
                "custom_data": None,
                "import_meta": None,
                "created_at": now,
                "updated_at": now,
            }
            self._write_discount(discount, {"status": "active", **body}, creating=True)
            self.discounts[discount["id"]] = discount
            self.emit("discount.created", self._public_discount(discount, webhook=True))
            return self._public_discount(discount)

    def update_discount(self, discount_id: str, body: dict) -> dict:
        with self.lock:
            discount = self._discount(discount_id)
            self._write_discount(discount, body, creating=False)
            discount["updated_at"] = stamp(self.now())
            self.emit("discount.updated", self._public_discount(discount, webhook=True))
            return self._public_discount(discount)

    def _write_discount(self, discount: dict, body: dict, *, creating: bool) -> None:
        fields = {key: body[key] for key in WRITABLE if key in body}
        if creating:
            for required in ("description", "type", "amount"):
                if not fields.get(required):
                    raise invalid_field(required, "is required")
        merged = {**discount, **fields}
        if merged["type"] not in TYPES:
            raise invalid_field("type", f"one of {', '.join(TYPES)}")
        if merged["status"] not in ("active", "archived"):
            raise invalid_field("status", "active or archived")
        amount = str(merged["amount"])
        if merged["type"] == "percentage":
            if not (Decimal("0.01") <= Decimal(amount) <= Decimal(100)):
                raise invalid_field("amount", "a percentage from 0.01 to 100")
        elif not amount.isdigit() or not merged["currency_code"]:
            raise invalid_field("amount", "flat discounts are minor units with a currency_code")
        if merged["enabled_for_checkout"] and not merged["code"]:
            merged["code"] = self.new_id("code")[-10:].upper()
        code = merged["code"]
        if code is not None:
            if not CODE.match(code):
                raise invalid_field("code", "1 to 32 letters and digits")
            for other in self.discounts.values():
                if other["id"] != discount["id"] and (other["code"] or "").lower() == code.lower():
                    raise SimError(409, "discount_code_conflict", f"code {code} is already used")
        if merged["maximum_recurring_intervals"] is not None and not merged["recur"]:
            raise invalid_field("maximum_recurring_intervals", "needs recur: true")
        if merged["expires_at"] is not None and parse_timestamp(merged["expires_at"]) is None:
            raise invalid_field("expires_at", "an RFC 3339 timestamp")
        merged["amount"] = amount
        discount.update(merged)

    def _discount(self, discount_id: str) -> dict:
        discount = self.discounts.get(discount_id)
        if discount is None:
            raise not_found("discount", discount_id)
        self._age_discount(discount)
        return discount

    def _age_discount(self, discount: dict) -> None:
        """Paddle sets `expired` once `expires_at` passes, and `used` at the usage limit."""
        if discount["status"] != "active":
            return
        expires = parse_timestamp(discount["expires_at"])
        if expires is not None and expires <= self.now():
            discount["status"] = "expired"
        elif discount["usage_limit"] is not None and (
            discount["times_used"] >= discount["usage_limit"]
        ):
            discount["status"] = "used"

    def discount(self, discount_id: str) -> dict:
        with self.lock:
            return self._public_discount(self._discount(discount_id))

    def list_discounts(self, codes: list[str] | None, ids: list[str] | None, statuses) -> list:
        with self.lock:
            found = []
            for discount in self.discounts.values():
                self._age_discount(discount)
                if codes and (discount["code"] or "").lower() not in {c.lower() for c in codes}:
                    continue
                if ids and discount["id"] not in ids:
                    continue
                if discount["status"] not in statuses:
                    continue
                found.append(self._public_discount(discount))
            return found

    @staticmethod
    def _public_discount(discount: dict, *, webhook: bool = False) -> dict:
        public = copy.deepcopy(discount)
        if webhook:
            public.pop("times_used")  # absent from discount.* payloads, as Paddle's
        return public

    # Applying one

    def usable_discount(self, discount_id: str | None, price_ids: list[str]) -> dict | None:
        """The discount a new transaction may carry, or Paddle's refusal."""
        if not discount_id:
            return None
        discount = self.discounts.get(discount_id)
        if discount is not None:
            self._age_discount(discount)
        if discount is None or discount["status"] in ("archived", "expired"):
            raise SimError(
                400, "transaction_discount_not_found", "Cannot find provided discount code/id"
            )
        if discount["status"] == "used":
            raise SimError(
                400, "discount_usage_limit_exceeded", "Discount usage limit has been exceeded"
            )
        if not any(self._discount_covers(discount, price_id) for price_id in price_ids):
            raise SimError(
                400,
                "transaction_discount_not_eligible",
                "The discount is not eligible for any of the items.",
            )
        return discount

    def _discount_covers(self, discount: dict, price_id: str) -> bool:
        allowed = discount["restrict_to"]
        if not allowed:
            return True
        price = self.prices.get(price_id) or {}
        return price_id in allowed or price.get("product_id") in allowed

    def discount_off(self, discount: dict | None, price_id: str, gross: int, quantity: int) -> int:
        """What `discount` takes off a line of `quantity` units costing `gross` in all."""
        if discount is None or not self._discount_covers(discount, price_id):
            return 0
        amount = Decimal(discount["amount"])
        if discount["type"] == "percentage":
            off = whole(Decimal(gross) * amount / 100)
        elif discount["type"] == "flat_per_seat":
            off = int(amount) * quantity
        else:
            off = int(amount)
        return min(off, gross)

    def redeem_discount(self, discount_id: str | None) -> None:
        """A completed checkout counts as one use (renewals do not)."""
        discount = self.discounts.get(discount_id or "")
        if discount is not None:
            discount["times_used"] += 1
            self._age_discount(discount)

    def subscription_discount(
        self, discount: dict | None, starts: datetime, cycle: dict
    ) -> dict | None:
        """The `discount` a subscription carries from `starts`: only a recurring one lasts
        beyond the first transaction; `ends_at` closes its last discounted period."""
        if discount is None or not discount["recur"]:
            return None
        intervals = discount["maximum_recurring_intervals"]
        ends = (
            add_interval(starts, cycle["interval"], cycle["frequency"] * intervals)
            if intervals
            else None
        )
        return {
            "id": discount["id"],
            "starts_at": stamp(starts),
            "ends_at": stamp(ends) if ends else None,
        }

    def discount_in_effect(self, subscription: dict, at: datetime) -> dict | None:
        """The discount a bill of the subscription made at `at` carries, if any."""
        applied = subscription.get("discount")
        if not applied:
            return None
        starts, ends = parse_timestamp(applied["starts_at"]), parse_timestamp(applied["ends_at"])
        if (starts and at < starts) or (ends and at >= ends):
            return None
        return self.discounts.get(applied["id"])

    def apply_to_subscription(self, subscription: dict, body: dict | None) -> dict | None:
        """`PATCH /subscriptions/{id}` with `discount`: `{id, effective_from}` or null."""
        if body is None:
            return None
        if not isinstance(body, dict) or not body.get("id") or "effective_from" not in body:
            raise invalid_field("discount", "{id, effective_from} or null")
        discount = self.discounts.get(body["id"])
        if discount is None:
            raise not_found("discount", body["id"])
        self._age_discount(discount)
        if discount["status"] == "archived":
            raise SimError(
                400,
                "subscription_archived_discount_application_attempt",
                "An archived discount cannot be applied.",
            )
        if not discount["recur"]:
            raise SimError(
                400,
                "subscription_one_off_discount_not_valid",
                "Only recurring discounts can be added to a subscription",
            )
        effective = body["effective_from"]
        if effective not in ("immediately", "next_billing_period"):
            raise invalid_field("discount.effective_from", "immediately or next_billing_period")
        if subscription["status"] == "trialing" and effective == "immediately":
            raise SimError(
                400,
                "subscription_trialing_discount_update_invalid_options",
                "A trialing subscription takes a discount from its next billing period.",
            )
        starts = (
            self.now()
            if effective == "immediately"
            else parse_timestamp(subscription["next_billed_at"]) or self.now()
        )
        return self.subscription_discount(discount, starts, subscription["billing_cycle"])
