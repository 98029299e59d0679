"""What selling needs beyond the catalogue: localized price previews and discounts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from paddle_client.pagination import MAX_PER_PAGE, comma_list, iterate
from paddle_client.resources._base import Resource, without_none


class Pricing(Resource):
    def preview(
        self,
        items: Iterable[dict[str, Any]],
        *,
        country_code: str | None = None,
        postal_code: str | None = None,
        customer_ip_address: str | None = None,
        currency_code: str | None = None,
        discount_id: str | None = None,
    ) -> dict[str, Any]:
        """`POST /pricing-preview`: each item's localized unit and line totals (tax,
        discount, currency) for a buyer located by country (and postal code) or by IP
        address. Creates nothing, so it is safe to repeat."""
        address = (
            without_none(country_code=country_code, postal_code=postal_code)
            if country_code
            else None
        )
        body = without_none(
            items=list(items),
            address=address,
            customer_ip_address=None if address else customer_ip_address,
            currency_code=currency_code,
            discount_id=discount_id,
        )
        return self._data("POST", "/pricing-preview", json=body, repeatable=True)


class Discounts(Resource):
    def list(
        self, *, code: Any = None, status: Any = None, ids: Any = None
    ) -> Iterator[dict[str, Any]]:
        """Discounts (Paddle's default: active ones), by code (not case-sensitive) or id."""
        params = {
            "per_page": MAX_PER_PAGE,
            "code": comma_list(code),
            "id": comma_list(ids),
            "status": comma_list(status),
        }
        return iterate(self._transport, "/discounts", params)

    def get(self, discount_id: str) -> dict[str, Any]:
        return self._data("GET", f"/discounts/{discount_id}")

    def create(self, **fields: Any) -> dict[str, Any]:
        """`POST /discounts`: `description`, `type` and `amount` at least."""
        return self._data("POST", "/discounts", json=without_none(**fields))

    def update(self, discount_id: str, **fields: Any) -> dict[str, Any]:
        return self._data("PATCH", f"/discounts/{discount_id}", json=fields)
