"""`GET /api/v1/pricing`: the pricing page, localized for the visitor by Paddle.

Public and limited per address. The answer is written once per key and served as stored
bytes with its ETag; `Cache-Control` is public when the query alone decides the answer
(`country` given, or the deployment's country header), private when the visitor's address
did."""

from flask import Flask, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import error_codes, etag_documented, operation
from billing_app.api.schemas import PricingPageSchema, PricingQuerySchema
from billing_app.db import utcnow
from billing_app.errors import (
    DatabaseUnavailable,
    DiscountInvalid,
    PaddleBusy,
    PaddleNotConfigured,
    PaddleRefused,
    PaddleUnavailable,
)
from billing_app.extensions import db
from billing_app.paddle import discount_codes, paddle
from billing_app.services.selling.pricing_page import (
    PricingPages,
    Visitor,
    offers_on_sale,
    price_offers,
)

blp = Blueprint("pricing", __name__, url_prefix="/api/v1", description="The pricing page")
CACHE_SECONDS = 60  # what browsers and CDNs may keep


def register_pricing(app: Flask) -> None:
    """Each process remembers priced pages of its own."""
    app.extensions["billing_pricing_pages"] = PricingPages(
        app.config["PRICING_CACHE_SECONDS"],
        wait_seconds=app.config["PADDLE_REQUEST_DEADLINE_SECONDS"] + 2,
    )


@blp.route("/pricing")
class Pricing(MethodView):
    @etag_documented
    @blp.arguments(PricingQuerySchema, location="query", unknown="raise")
    @blp.response(200, PricingPageSchema)
    @operation(
        blp,
        "getPricing",
        422,
        429,
        502,
        503,
        codes={
            **error_codes(
                PaddleRefused,
                PaddleUnavailable,
                PaddleBusy,
                PaddleNotConfigured,
                DatabaseUnavailable,
            ),
            422: ("validation_error", DiscountInvalid.code),
        },
    )
    def get(self, query):
        """Every plan and one-time product on sale, priced for the visitor by Paddle: their
        currency, their tax (included or added), and a discount code's effect.

        The visitor is located by `country` (and `postal_code`), else by the country header
        the deployment trusts (`PRICING_COUNTRY_HEADER`), else by their address (through the
        proxies `TRUSTED_PROXIES` counts). Answers are remembered per location, currency
        and code for `PRICING_CACHE_SECONDS`; when Paddle cannot be reached the last good
        answer comes back with `stale: true`, and with none, 503 `paddle_unavailable`.
        Amounts are minor units as strings; show the `formatted_*` strings as they are.
        """
        visitor = visitor_of(query)
        pages: PricingPages = current_app.extensions["billing_pricing_pages"]
        payload, etag = pages.answer(visitor.key, lambda: _priced(visitor))
        scope = "private" if visitor.located_by == "ip_address" else "public"
        headers = {"ETag": f'"{etag}"', "Cache-Control": f"{scope}, max-age={CACHE_SECONDS}"}
        if request.if_none_match.contains(etag):
            return current_app.response_class(status=304, headers=headers)
        return current_app.response_class(payload, mimetype="application/json", headers=headers)


def visitor_of(query: dict) -> Visitor:
    country = query.get("country")
    header = current_app.config["PRICING_COUNTRY_HEADER"]
    if country is None and header:
        told = (request.headers.get(header) or "").strip().upper()
        country = told if len(told) == 2 and told.isalpha() else None
    return Visitor(
        country=country,
        postal_code=query.get("postal_code") if country else None,
        ip_address=request.remote_addr,
        currency=query.get("currency"),
        discount_code=query.get("discount_code"),
    )


def _priced(visitor: Visitor) -> dict:
    offers = offers_on_sale(db.session)
    db.session.rollback()  # nothing held while Paddle answers
    return price_offers(paddle(), discount_codes(), offers, visitor, utcnow())
