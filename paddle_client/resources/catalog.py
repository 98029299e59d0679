"""Products and prices: the catalogue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from paddle_client.pagination import MAX_PER_PAGE, comma_list, iterate
from paddle_client.resources._base import Resource


class Products(Resource):
    def list(self, *, include_prices: bool = True, status: Any = None) -> Iterator[dict[str, Any]]:
        """Products (default: active), each with `prices` when `include_prices`."""
        params = {
            "per_page": MAX_PER_PAGE,
            "include": "prices" if include_prices else None,
            "status": comma_list(status),
        }
        return iterate(self._transport, "/products", params)

    def get(self, product_id: str, *, include_prices: bool = True) -> dict[str, Any]:
        params = {"include": "prices"} if include_prices else None
        return self._data("GET", f"/products/{product_id}", params=params)


class Prices(Resource):
    def list(
        self, *, product_id: Any = None, status: Any = None, include_product: bool = False
    ) -> Iterator[dict[str, Any]]:
        params = {
            "per_page": MAX_PER_PAGE,
            "product_id": comma_list(product_id),
            "status": comma_list(status),
            "include": "product" if include_product else None,
        }
        return iterate(self._transport, "/prices", params)

    def get(self, price_id: str, *, include_product: bool = False) -> dict[str, Any]:
        params = {"include": "product"} if include_product else None
        return self._data("GET", f"/prices/{price_id}", params=params)
