"""Discount codes: what a buyer types at checkout, on the pricing page or to discount their
subscription. Paddle takes a discount's id, never its code (API-NOTES 7.2), so a code is
looked up (`GET /discounts?code=`) and judged here first: an unknown, expired, used-up,
archived or checkout-disabled code, or one that covers none of the prices bought, is a 422
`discount_invalid` with the reason, and nothing is made at Paddle.

Lookups are remembered for `LOOKUP_SECONDS` per process, found or not: a pricing page shown
to thousands with one code asks Paddle once a minute. Paddle's own refusal at the write
(a code used up in that minute) is turned into the same 422 by `refusal_of`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_app.errors import DiscountInvalid
from paddle_client import ApiError, Client
from paddle_client.timestamps import parse_timestamp

LOOKUP_SECONDS = 60.0
CODE = re.compile(r"^[A-Za-z0-9]{1,32}$")
# Paddle's refusals of a discount on a transaction or subscription (API-NOTES 7.2).
PADDLE_REFUSALS = {
    "transaction_discount_not_found": "This discount code is unknown or no longer valid.",
    "transaction_discount_not_eligible": "This discount code is not valid for this purchase.",
    "discount_usage_limit_exceeded": "This discount code has been used up.",
    "transaction_invalid_discount_currency": "This discount is not valid in this currency.",
    "subscription_invalid_discount_currency": "This discount is not valid in this currency.",
    "subscription_archived_discount_application_attempt": "This discount code is archived.",
    "subscription_one_off_discount_not_valid": (
        "This discount applies to one payment only; a subscription needs a recurring one."
    ),
    "subscription_trialing_discount_update_invalid_options": (
        "A subscription on trial takes a discount from its next billing period."
    ),
}


def refusal_of(error: ApiError) -> DiscountInvalid | None:
    """Paddle's refusal of a discount as our 422, or None when it refused something else."""
    message = PADDLE_REFUSALS.get(error.code)
    return DiscountInvalid(message, extra={"paddle_error_code": error.code}) if message else None


def normalised(code: str) -> str:
    if not CODE.match(code or ""):
        raise DiscountInvalid("A discount code is 1 to 32 letters and digits.")
    return code.upper()  # Paddle's codes are not case-sensitive


class DiscountCodes:
    """Paddle's discounts by code, remembered for `ttl` seconds (found or not)."""

    def __init__(self, ttl: float = LOOKUP_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def find(self, paddle: Client, code: str) -> dict[str, Any] | None:
        key = normalised(code)
        with self._lock:
            remembered = self._known.get(key)
        if remembered is not None and remembered[0] > self._clock():
            return remembered[1]
        found = next(
            (d for d in paddle.discounts.list(code=key) if (d.get("code") or "").upper() == key),
            None,
        )
        with self._lock:
            if len(self._known) > 10_000:
                self._known.clear()  # codes typed at random must not grow this for ever
            self._known[key] = (self._clock() + self.ttl, found)
        return found

    def usable(self, paddle: Client, code: str, now: datetime) -> dict[str, Any]:
        """The discount a buyer may redeem with `code` now, or 422 `discount_invalid`."""
        discount = self.find(paddle, code)
        if discount is None:
            raise DiscountInvalid(
                f"Discount code {normalised(code)} is unknown or no longer valid."
            )
        problem = why_unusable(discount, now)
        if problem:
            raise DiscountInvalid(f"Discount code {normalised(code)} {problem}.")
        return discount

    def for_prices(
        self, paddle: Client, code: str, price_ids: Iterable[str], now: datetime
    ) -> dict[str, Any]:
        """As `usable`, and covering at least one of `price_ids`."""
        discount = self.usable(paddle, code, now)
        price_ids = list(price_ids)
        if not covers(paddle, discount, price_ids):
            raise DiscountInvalid(
                f"Discount code {normalised(code)} is not valid for this purchase."
            )
        return discount

    def for_subscription(
        self, paddle: Client, code: str, price_ids: Iterable[str], now: datetime
    ) -> dict[str, Any]:
        """As `for_prices`, and recurring: Paddle puts only those on a subscription."""
        discount = self.for_prices(paddle, code, price_ids, now)
        if not discount.get("recur"):
            raise DiscountInvalid(
                f"Discount code {normalised(code)} applies to one payment only;"
                " a subscription takes a recurring one.",
            )
        return discount


@dataclass(frozen=True)
class GivenCode:
    """A discount code a buyer gave with a request, and where codes are looked up: what a
    view hands a service, which judges it once it knows what is bought."""

    code: str
    codes: DiscountCodes

    def for_prices(self, paddle: Client, price_ids: Iterable[str], now: datetime) -> dict:
        return self.codes.for_prices(paddle, self.code, price_ids, now)

    def for_subscription(self, paddle: Client, price_ids: Iterable[str], now: datetime) -> dict:
        return self.codes.for_subscription(paddle, self.code, price_ids, now)


def why_unusable(discount: dict[str, Any], now: datetime) -> str | None:
    status = discount.get("status")
    if status == "archived":
        return "has been withdrawn"
    expires_at = parse_timestamp(discount.get("expires_at"))
    if status == "expired" or (expires_at is not None and expires_at <= now):
        return "has expired"
    limit, used = discount.get("usage_limit"), discount.get("times_used") or 0
    if status == "used" or (limit is not None and used >= limit):
        return "has been used up"
    if not discount.get("enabled_for_checkout", True):
        return "cannot be used at checkout"
    return None


def covers(paddle: Client, discount: dict[str, Any], price_ids: list[str]) -> bool:
    """Whether `restrict_to` (prices, or products covering all their prices) allows one of
    `price_ids`; a product restriction needs the price's product, read from Paddle."""
    allowed = set(discount.get("restrict_to") or [])
    if not allowed or allowed & set(price_ids):
        return True
    if not any(entry.startswith("pro_") for entry in allowed):
        return False
    return any(paddle.prices.get(price_id).get("product_id") in allowed for price_id in price_ids)


def summary(discount: dict[str, Any]) -> dict[str, Any]:
    """What a buyer is told about a discount: never its id or usage counts."""
    return {
        "code": discount.get("code"),
        "type": discount.get("type"),
        "amount": discount.get("amount"),
        "currency": discount.get("currency_code"),
        "recurring": bool(discount.get("recur")),
        "maximum_recurring_intervals": discount.get("maximum_recurring_intervals"),
        "expires_at": discount.get("expires_at"),
    }
