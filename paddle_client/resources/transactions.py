"""Transactions: checkouts, renewals, invoices."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from paddle_client.pagination import comma_list, iterate, iterate_pages
from paddle_client.resources._base import Resource, include, without_none
from paddle_client.timestamps import format_timestamp

TRANSACTIONS_MAX_PER_PAGE = 30  # Paddle's exception to the usual 200


class Transactions(Resource):
    def create(
        self,
        items: Iterable[dict[str, Any]],
        *,
        customer_id: str | None = None,
        address_id: str | None = None,
        custom_data: dict[str, Any] | None = None,
        checkout_url: str | None = None,
        currency_code: str | None = None,
        discount_id: str | None = None,
        includes: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Create a transaction from `[{"price_id", "quantity"}]`.

        Not retried once it may have reached Paddle (there is no idempotency key): on
        `Unavailable`, look it up by `custom_data` before creating another.
        """
        body = without_none(
            items=list(items),
            customer_id=customer_id,
            address_id=address_id,
            custom_data=custom_data,
            currency_code=currency_code,
            discount_id=discount_id,
            checkout={"url": checkout_url} if checkout_url else None,
        )
        params = without_none(include=include(includes))
        return self._data("POST", "/transactions", params=params or None, json=body)

    def get(self, transaction_id: str, *, includes: Iterable[str] | None = None) -> dict[str, Any]:
        params = without_none(include=include(includes))
        return self._data("GET", f"/transactions/{transaction_id}", params=params or None)

    def list(
        self,
        *,
        customer_id: Any = None,
        subscription_id: Any = None,
        status: Any = None,
        origin: Any = None,
        updated_since: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        params = self._list_params(customer_id, subscription_id, status, origin)
        if updated_since is not None:
            params["updated_at[GTE]"] = format_timestamp(updated_since)
        return iterate(self._transport, "/transactions", params)

    def list_pages(
        self, *, updated_since: datetime | None = None, includes: Iterable[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Transactions Paddle updated at or after `updated_since`, a page at a time (with
        `includes`, e.g. their `adjustments`)."""
        params = self._list_params(None, None, None, None)
        if updated_since is not None:
            params["updated_at[GTE]"] = format_timestamp(updated_since)
        if includes:
            params["include"] = include(includes)
        return iterate_pages(self._transport, "/transactions", params)

    @staticmethod
    def _list_params(customer_id, subscription_id, status, origin) -> dict[str, Any]:
        return {
            "per_page": TRANSACTIONS_MAX_PER_PAGE,
            "customer_id": comma_list(customer_id),
            "subscription_id": comma_list(subscription_id),
            "status": comma_list(status),
            "origin": comma_list(origin),
        }

    def invoice_pdf_url(self, transaction_id: str, *, disposition: str = "attachment") -> str:
        """A link to the transaction's invoice PDF that works for an hour: `attachment`
        downloads it, `inline` shows it in the browser."""
        params = {"disposition": disposition}
        return self._data("GET", f"/transactions/{transaction_id}/invoice", params=params)["url"]
