"""The pricing page: every plan, add-on and one-time product on sale, priced for one
visitor by Paddle's `POST /pricing-preview` (their currency, their tax, their discount).

A visitor is located by `country` (and `postal_code`), else by their address, which Paddle
geolocates. Answers are remembered per key (location, currency, code) for the cache's time:
however many visitors ask at once, one call per key is in flight in this process and the
others wait for it. When Paddle cannot answer, the last good answer for the key is served
marked `stale`; with none, the caller gets 503.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_app.errors import PaddleBusy, PaddleUnavailable
from billing_app.models import Addon, Plan, Product
from billing_app.services.selling.discount_codes import DiscountCodes, summary
from paddle_client import Client, Unavailable

PREVIEW_MAX_ITEMS = 100  # Paddle's limit per pricing preview
TOTALS = ("subtotal", "discount", "tax", "total")


@dataclass(frozen=True)
class Visitor:
    country: str | None = None
    postal_code: str | None = None
    ip_address: str | None = None  # used only without a country
    currency: str | None = None
    discount_code: str | None = None

    @property
    def located_by(self) -> str:
        if self.country:
            return "country"
        return "ip_address" if self.public_address else "none"

    @property
    def public_address(self) -> str | None:
        """The address Paddle can geolocate: a loopback or private one says nothing."""
        try:
            address = ipaddress.ip_address(self.ip_address or "")
        except ValueError:
            return None
        return self.ip_address if address.is_global else None

    @property
    def key(self) -> tuple:
        where = {
            "country": (self.country, self.postal_code),
            "ip_address": (self.public_address,),
            "none": (),
        }[self.located_by]
        code = self.discount_code.upper() if self.discount_code else None
        return (self.located_by, *where, self.currency, code)


@dataclass(frozen=True)
class Offer:
    """Something on sale, as the pricing page names it."""

    type: str  # "subscription" | "one_time" | "addon"
    slug: str
    name: str
    description: str | None
    price_id: str
    interval: str | None
    interval_count: int | None
    plans: tuple[str, ...] | None = None  # an add-on's: the plans it may join (): any


def offers_on_sale(session: Session) -> list[Offer]:
    plans = session.scalars(
        select(Plan)
        .where(Plan.active.is_(True), Plan.free.is_(False), Plan.price_id.is_not(None))
        .order_by(Plan.id)
    )
    products = session.scalars(select(Product).where(Product.active.is_(True)).order_by(Product.id))
    on_sale = [
        Offer("subscription", *_named(plan), plan.interval, plan.interval_count) for plan in plans
    ]
    on_sale += [Offer("one_time", *_named(product), None, None) for product in products]
    addons = session.scalars(select(Addon).where(Addon.active.is_(True)).order_by(Addon.id))
    return on_sale + [
        Offer("addon", *_named(addon), addon.interval, addon.interval_count, tuple(addon.plans))
        for addon in addons
    ]


def _named(row: Plan | Product | Addon) -> tuple[str, str, str | None, str]:
    return row.slug, row.name, row.description, row.price_id


def price_offers(
    paddle: Client,
    codes: DiscountCodes,
    offers: list[Offer],
    visitor: Visitor,
    now: datetime,
) -> dict[str, Any]:
    """The pricing page's body for `visitor` (without `stale`): one preview per hundred
    offers. Call it holding no database transaction."""
    discount = codes.usable(paddle, visitor.discount_code, now) if visitor.discount_code else None
    lines: dict[str, dict[str, Any]] = {}
    currency = visitor.currency
    for start in range(0, len(offers), PREVIEW_MAX_ITEMS):
        chunk = offers[start : start + PREVIEW_MAX_ITEMS]
        preview = paddle.pricing.preview(
            [{"price_id": offer.price_id, "quantity": 1} for offer in chunk],
            country_code=visitor.country,
            postal_code=visitor.postal_code,
            customer_ip_address=visitor.public_address,
            currency_code=visitor.currency,
            discount_id=discount["id"] if discount else None,
        )
        currency = preview.get("currency_code") or currency
        for line in preview["details"]["line_items"]:
            lines[line["price"]["id"]] = line
    return {
        "location": {
            "country": visitor.country,
            "postal_code": visitor.postal_code,
            "located_by": visitor.located_by,
        },
        "currency": currency,
        "discount": summary(discount) if discount else None,
        "items": [
            _entry(offer, lines[offer.price_id], visitor.country, currency)
            for offer in offers
            if offer.price_id in lines
        ],
        "priced_at": now.isoformat(),
    }


def _entry(offer: Offer, line: dict[str, Any], country: str | None, currency: str | None):
    unit = line["unit_totals"]
    return {
        "type": offer.type,
        "slug": offer.slug,
        "name": offer.name,
        "description": offer.description,
        "price_id": offer.price_id,
        "interval": offer.interval,
        "interval_count": offer.interval_count,
        "plans": list(offer.plans) if offer.plans is not None else None,
        "unit_totals": {key: str(unit[key]) for key in TOTALS},
        "formatted_unit_totals": {key: line["formatted_unit_totals"][key] for key in TOTALS},
        "tax_rate": line.get("tax_rate"),
        "tax_included": tax_included(line, country, currency),
    }


def tax_included(line: dict[str, Any], country: str | None, currency: str | None) -> bool | None:
    """Whether the shown total includes tax. A price says so (`internal`) or says not
    (`external`); under the account's setting the line tells: a price that includes tax has
    its list amount split into subtotal and tax, one that excludes it has it as subtotal.
    None when that cannot be told (a price Paddle converted, whose list amount is unknown)."""
    price = line["price"]
    mode = price.get("tax_mode")
    if mode in ("internal", "external"):
        return mode == "internal"
    unit = line["unit_totals"]
    subtotal, tax = int(unit["subtotal"]), int(unit["tax"])
    if tax == 0:
        return False
    listed = _list_amount(price, country, currency)
    if listed is None:
        return None
    return subtotal + tax == listed


def _list_amount(price: dict[str, Any], country: str | None, currency: str | None) -> int | None:
    for override in price.get("unit_price_overrides") or []:
        unit = override["unit_price"]
        if country in override["country_codes"] and unit["currency_code"] == currency:
            return int(unit["amount"])
    base = price["unit_price"]
    return int(base["amount"]) if base["currency_code"] == currency else None


@dataclass
class PricedPage:
    body: dict[str, Any]
    fresh_until: float
    payload: bytes = b""
    etag: str = ""

    def __post_init__(self) -> None:
        self.payload = json.dumps({**self.body, "stale": False}, separators=(",", ":")).encode()
        self.etag = etag_of(self.payload)

    def stale(self) -> tuple[bytes, str]:
        payload = json.dumps({**self.body, "stale": True}, separators=(",", ":")).encode()
        return payload, etag_of(payload)


def etag_of(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()[:32]


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    answer: tuple[bytes, str] | None = None
    error: BaseException | None = None


class PricingPages:
    """Priced pages by visitor key, remembered for `ttl` seconds and kept after that as the
    last good answer (at most `max_keys`, least recently used first out)."""

    def __init__(
        self,
        ttl: float,
        *,
        max_keys: int = 10_000,
        wait_seconds: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self.wait_seconds = wait_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pages: OrderedDict[tuple, PricedPage] = OrderedDict()
        self._flights: dict[tuple, _Flight] = {}
        self.paddle_calls = 0  # pages computed, for the metrics and the tests

    def answer(self, key: tuple, compute: Callable[[], dict[str, Any]]) -> tuple[bytes, str]:
        """(JSON payload, ETag) for `key`: remembered, else computed once however many ask."""
        with self._lock:
            page = self._pages.get(key)
            if page is not None and page.fresh_until > self._clock():
                self._pages.move_to_end(key)
                return page.payload, page.etag
            flight = self._flights.get(key)
            leading = flight is None
            if leading:
                flight = self._flights[key] = _Flight()
        if not leading:
            return self._follow(flight)
        try:
            flight.answer = self._lead(key, page, compute)
            return flight.answer
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _lead(self, key: tuple, last_good: PricedPage | None, compute) -> tuple[bytes, str]:
        with self._lock:
            self.paddle_calls += 1
        try:
            body = compute()
        except (Unavailable, PaddleUnavailable, PaddleBusy):
            if last_good is None:
                raise
            return last_good.stale()
        page = PricedPage(body, self._clock() + self.ttl)
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_keys:
                self._pages.popitem(last=False)
        return page.payload, page.etag

    def _follow(self, flight: _Flight) -> tuple[bytes, str]:
        if not flight.done.wait(self.wait_seconds):
            raise PaddleUnavailable("Prices could not be had from Paddle in time.")
        if flight.answer is not None:
            return flight.answer
        raise flight.error or PaddleUnavailable()
