"""Customers and their portal sessions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from paddle_client.errors import ApiError
from paddle_client.pagination import MAX_PER_PAGE, comma_list, iterate, iterate_pages
from paddle_client.resources._base import Resource, without_none

_EXISTING_CUSTOMER = re.compile(r"(ctm_[a-z0-9]+)")


class Customers(Resource):
    def create(
        self,
        email: str,
        *,
        name: str | None = None,
        locale: str | None = None,
        custom_data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a customer. A duplicate email raises ApiError `customer_already_exists`."""
        body = without_none(email=email, name=name, locale=locale, custom_data=custom_data)
        # A repeat cannot make a second customer: Paddle answers 409 with the first one's id.
        return self._data("POST", "/customers", json=body, repeatable=True)

    def get(self, customer_id: str) -> dict[str, Any]:
        return self._data("GET", f"/customers/{customer_id}")

    def list(self, *, email: Any = None, status: Any = None) -> Iterator[dict[str, Any]]:
        """Customers, optionally by exact email (one or several)."""
        params = {
            "per_page": MAX_PER_PAGE,
            "email": comma_list(email),
            "status": comma_list(status),
        }
        return iterate(self._transport, "/customers", params)

    def list_pages(self, *, after: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every customer, oldest id first, a page at a time; from after the id `after`."""
        params = {"per_page": MAX_PER_PAGE, "order_by": "id[ASC]", "after": after}
        return iterate_pages(self._transport, "/customers", params)

    def find_by_email(self, email: str) -> dict[str, Any] | None:
        return next(iter(self.list(email=email)), None)

    def get_or_create(self, email: str, **fields: Any) -> dict[str, Any]:
        """The customer with this email, created if Paddle has none."""
        try:
            return self.create(email, **fields)
        except ApiError as error:
            if error.code != "customer_already_exists":
                raise
            existing = _EXISTING_CUSTOMER.search(error.detail)
            if existing:
                return self.get(existing.group(1))
            found = self.find_by_email(email)
            if found is None:
                raise
            return found

    def create_portal_session(
        self, customer_id: str, subscription_ids: Iterable[str] = ()
    ) -> dict[str, Any]:
        """A customer portal session: `urls.general.overview` and per-subscription links.
        The URLs carry a temporary token: hand them to the user, never store them."""
        return self._data(
            "POST",
            f"/customers/{customer_id}/portal-sessions",
            json={"subscription_ids": list(subscription_ids)},
            repeatable=True,
        )
