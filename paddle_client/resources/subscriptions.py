"""Subscriptions: read, change, pause, resume, cancel, charge."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from paddle_client.pagination import MAX_PER_PAGE, comma_list, iterate, iterate_pages
from paddle_client.resources._base import Resource, include, without_none
from paddle_client.timestamps import format_timestamp


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Leave a field out of the request (as opposed to sending `null`)."""

PRORATION_MODES = (
    "prorated_immediately",
    "prorated_next_billing_period",
    "full_immediately",
    "full_next_billing_period",
    "do_not_bill",
)


def _timestamp(value: datetime | str | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _items(items: Iterable[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    return None if items is None else [dict(item) for item in items]


class Subscriptions(Resource):
    def get(self, subscription_id: str, *, includes: Iterable[str] | None = None) -> dict:
        params = without_none(include=include(includes))
        return self._data("GET", f"/subscriptions/{subscription_id}", params=params or None)

    def _list_params(self, status, customer_id, price_id, scheduled_change_action, per_page):
        return {
            "per_page": per_page,
            "order_by": "id[ASC]",
            "status": comma_list(status),
            "customer_id": comma_list(customer_id),
            "price_id": comma_list(price_id),
            "scheduled_change_action": comma_list(scheduled_change_action),
        }

    def list(
        self,
        *,
        status: Any = None,
        customer_id: Any = None,
        price_id: Any = None,
        scheduled_change_action: Any = None,
        per_page: int = MAX_PER_PAGE,
    ) -> Iterator[dict[str, Any]]:
        """Every subscription matching the filters, oldest id first, fetched page by page."""
        params = self._list_params(status, customer_id, price_id, scheduled_change_action, per_page)
        return iterate(self._transport, "/subscriptions", params)

    def list_pages(
        self,
        *,
        status: Any = None,
        customer_id: Any = None,
        per_page: int = MAX_PER_PAGE,
        after: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """The same list, a page (a list of subscriptions) at a time, for batch work; from
        after the id `after` (a walk that stopped goes on where it was)."""
        params = self._list_params(status, customer_id, None, None, per_page)
        return iterate_pages(self._transport, "/subscriptions", {**params, "after": after})

    def _update_body(self, items, proration_billing_mode, scheduled_change, fields):
        body = without_none(
            items=_items(items), proration_billing_mode=proration_billing_mode, **fields
        )
        if scheduled_change is not UNSET:
            if scheduled_change is not None:
                raise ValueError("Paddle accepts only null for scheduled_change")
            body["scheduled_change"] = None
        if items is not None and proration_billing_mode is None:
            raise ValueError("changing items needs a proration_billing_mode")
        return body

    def update(
        self,
        subscription_id: str,
        *,
        items: Iterable[dict[str, Any]] | None = None,
        proration_billing_mode: str | None = None,
        scheduled_change: Any = UNSET,
        **fields: Any,
    ) -> dict[str, Any]:
        """PATCH the subscription. `items` is the complete desired list; `scheduled_change=None`
        removes a pending pause or cancellation; other Paddle fields pass through `fields`."""
        body = self._update_body(items, proration_billing_mode, scheduled_change, fields)
        return self._data("PATCH", f"/subscriptions/{subscription_id}", json=body)

    def preview_update(
        self,
        subscription_id: str,
        *,
        items: Iterable[dict[str, Any]] | None = None,
        proration_billing_mode: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """What `update` would do: the subscription with `immediate_transaction`,
        `next_transaction` and `update_summary`. Changes nothing."""
        body = self._update_body(items, proration_billing_mode, UNSET, fields)
        return self._data("PATCH", f"/subscriptions/{subscription_id}/preview", json=body)

    def remove_scheduled_change(self, subscription_id: str) -> dict[str, Any]:
        return self.update(subscription_id, scheduled_change=None)

    def pause(
        self,
        subscription_id: str,
        *,
        effective_from: str | None = None,
        resume_at: datetime | str | None = None,
        on_resume: str | None = None,
    ) -> dict[str, Any]:
        body = without_none(
            effective_from=effective_from, resume_at=_timestamp(resume_at), on_resume=on_resume
        )
        return self._data("POST", f"/subscriptions/{subscription_id}/pause", json=body)

    def resume(
        self,
        subscription_id: str,
        *,
        effective_from: datetime | str = "immediately",
        on_resume: str | None = None,
    ) -> dict[str, Any]:
        body = without_none(effective_from=_timestamp(effective_from), on_resume=on_resume)
        return self._data("POST", f"/subscriptions/{subscription_id}/resume", json=body)

    def cancel(self, subscription_id: str, *, effective_from: str | None = None) -> dict:
        body = without_none(effective_from=effective_from)
        return self._data("POST", f"/subscriptions/{subscription_id}/cancel", json=body)

    def activate(self, subscription_id: str) -> dict[str, Any]:
        """End a trial now and bill at once (automatic collection only)."""
        return self._data(
            "POST", f"/subscriptions/{subscription_id}/activate", json={}, repeatable=True
        )

    def update_payment_method_transaction(self, subscription_id: str) -> dict[str, Any]:
        """The transaction to hand to Paddle.js so the customer can enter a new card."""
        return self._data(
            "GET", f"/subscriptions/{subscription_id}/update-payment-method-transaction"
        )

    def charge(
        self,
        subscription_id: str,
        items: Iterable[dict[str, Any]],
        *,
        effective_from: str,
        on_payment_failure: str | None = None,
    ) -> dict[str, Any]:
        """Bill one-time prices to the subscription. Returns the subscription, not the charge.
        Not retried once it may have reached Paddle: it would bill twice."""
        body = without_none(
            effective_from=effective_from,
            items=_items(items),
            on_payment_failure=on_payment_failure,
        )
        return self._data("POST", f"/subscriptions/{subscription_id}/charge", json=body)
