"""Localized prices and tax: `POST /pricing-preview`, and the sums every line of a
transaction or preview is made of.

The simulated account sells in USD, with country overrides for some prices (`LOCAL_PRICES`)
and automatic conversion into a country's own currency otherwise; tax is exclusive in North
America and included in the price elsewhere (as a merchant of record shows it to consumers).

Mixed into `paddle_client.simulator.state.SimState`.
"""

from __future__ import annotations

import copy
from decimal import Decimal

from paddle_client.simulator.discounts import whole
from paddle_client.simulator.errors import SimError, invalid_field

# price id -> [(countries, amount, currency)]: the prices' `unit_price_overrides`
LOCAL_PRICES = {
    "pri_01hsim0startermonth000000": [
        (["GB"], "1500", "GBP"),
        (["DE", "FR", "NL"], "1800", "EUR"),
    ],
    "pri_01hsim0teammonth000000000": [
        (["GB"], "3900", "GBP"),
        (["DE", "FR", "NL"], "4500", "EUR"),
    ],
}
# country -> (tax rate, whether prices include it)
TAX = {
    "US": ("0", False),
    "CA": ("0.05", False),
    "GB": ("0.2", True),
    "DE": ("0.19", True),
    "FR": ("0.2", True),
    "NL": ("0.21", True),
    "AU": ("0.1", True),
    "JP": ("0.1", True),
}
COUNTRY_CURRENCY = {
    "US": "USD",
    "CA": "CAD",
    "GB": "GBP",
    "DE": "EUR",
    "FR": "EUR",
    "NL": "EUR",
    "AU": "AUD",
    "JP": "JPY",
}
# Units of each currency per US dollar, and how many decimals its minor unit has.
RATES = {"USD": "1", "EUR": "0.92", "GBP": "0.79", "AUD": "1.52", "CAD": "1.38", "JPY": "150"}
DECIMALS = {"JPY": 0}
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "AUD": "A$", "CAD": "CA$", "JPY": "¥"}
# The simulator's geolocation: an address's first three octets -> country.
IP_COUNTRIES = {"81.2.69": "GB", "217.110.0": "DE", "34.232.58": "US", "1.1.1": "AU"}


def formatted(amount: int, currency: str) -> str:
    decimals = DECIMALS.get(currency, 2)
    sign, amount = ("-" if amount < 0 else ""), abs(amount)
    major, minor = divmod(amount, 10**decimals) if decimals else (amount, 0)
    text = f"{major:,}" + (f".{minor:0{decimals}d}" if decimals else "")
    return f"{sign}{SYMBOLS.get(currency, currency + ' ')}{text}"


def convert(amount: int, source: str, target: str) -> int:
    if source == target:
        return amount
    usd = Decimal(amount) / 10 ** DECIMALS.get(source, 2) / Decimal(RATES[source])
    return whole(usd * Decimal(RATES[target]) * 10 ** DECIMALS.get(target, 2))


class Pricing:
    def localized_price(self, price: dict, country: str | None, currency: str | None):
        """(unit amount, currency) of `price` for a buyer in `country` who asks for
        `currency`: a country override first, then conversion, then the base price."""
        base = price["unit_price"]
        for override in price.get("unit_price_overrides") or []:
            unit = override["unit_price"]
            if country in override["country_codes"] and currency in (None, unit["currency_code"]):
                return int(unit["amount"]), unit["currency_code"]
        wanted = currency or COUNTRY_CURRENCY.get(country or "", base["currency_code"])
        return convert(int(base["amount"]), base["currency_code"], wanted), wanted

    def line_sums(
        self,
        price: dict,
        quantity: int,
        *,
        country: str | None = None,
        currency: str | None = None,
        discount: dict | None = None,
        free: bool = False,
    ) -> dict:
        """One line's unit and total sums, tax and discount, as Paddle's `totals` keys."""
        unit, currency = self.localized_price(price, country, currency)
        gross = 0 if free else unit * quantity
        rate, included = TAX.get(country or "", ("0", False))
        off = self.discount_off(discount, price["id"], gross, quantity)
        if included:
            after = gross - off
            tax = after - whole(Decimal(after) / (1 + Decimal(rate)))
            subtotal = gross - tax
        else:
            subtotal = gross
            tax = whole((gross - off) * Decimal(rate))
        return {
            "currency": currency,
            "unit": unit,
            "tax_rate": rate,
            "totals": {
                "subtotal": subtotal,
                "discount": off,
                "tax": tax,
                "total": subtotal - off + tax,
            },
        }

    def pricing_preview(self, body: dict, client_ip: str | None = None) -> dict:
        items = body.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= 100:
            raise invalid_field("items", "1 to 100 items")
        address = body.get("address") or {}
        country = address.get("country_code")
        ip = body.get("customer_ip_address")
        if country is None and ip:
            country = IP_COUNTRIES.get(".".join(str(ip).split(".")[:3]))
        currency = body.get("currency_code")
        if currency is not None and currency not in RATES:
            raise invalid_field("currency_code", "not a supported currency")
        with self.lock:
            prices = [self.price(str(item.get("price_id"))) for item in items]
            discount = None
            if body.get("discount_id"):
                discount = self.discounts.get(body["discount_id"])
                if discount is None:
                    raise SimError(400, "discount_not_found", "Cannot find the discount")
            lines = []
            for item, price in zip(items, prices, strict=True):
                quantity = int(item.get("quantity", 1))
                lines.append(self._preview_line(price, quantity, country, currency, discount))
        used = lines[0]["currency"]
        for line in lines:
            line.pop("currency")
        return {
            "customer_id": body.get("customer_id"),
            "address_id": body.get("address_id"),
            "business_id": body.get("business_id"),
            "currency_code": used,
            "address": body.get("address"),
            "customer_ip_address": ip,
            "discount_id": body.get("discount_id"),
            "details": {"line_items": lines},
            "available_payment_methods": ["card", "paypal"],
        }

    def _preview_line(self, price, quantity, country, currency, discount) -> dict:
        one = self.line_sums(price, 1, country=country, currency=currency, discount=discount)
        all_ = self.line_sums(
            price, quantity, country=country, currency=currency, discount=discount
        )
        money = one["currency"]
        unit_totals = {key: str(value) for key, value in one["totals"].items()}
        totals = {key: str(value) for key, value in all_["totals"].items()}
        discounts = []
        if discount is not None and all_["totals"]["discount"]:
            discounts.append(
                {
                    "discount": self._public_discount(discount),
                    "total": totals["discount"],
                    "formatted_total": formatted(all_["totals"]["discount"], money),
                }
            )
        return {
            "currency": money,
            "price": copy.deepcopy(price),
            "product": copy.deepcopy(self.products[price["product_id"]]),
            "quantity": quantity,
            "tax_rate": one["tax_rate"],
            "unit_totals": unit_totals,
            "formatted_unit_totals": {
                key: formatted(value, money) for key, value in one["totals"].items()
            },
            "totals": totals,
            "formatted_totals": {
                key: formatted(value, money) for key, value in all_["totals"].items()
            },
            "discounts": discounts,
        }
