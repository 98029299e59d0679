"""The event stream and notification deliveries (replay)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from paddle_client.pagination import MAX_PER_PAGE, comma_list, iterate
from paddle_client.resources._base import Resource


class Events(Resource):
    def list(
        self, *, after: str | None = None, event_types: Any = None
    ) -> Iterator[dict[str, Any]]:
        """Events of the last 90 days, oldest first, from after the `evt_` id `after`."""
        params = {
            "per_page": MAX_PER_PAGE,
            "order_by": "id[ASC]",
            "after": after,
            "event_type": comma_list(event_types),
        }
        return iterate(self._transport, "/events", params)


class Notifications(Resource):
    def list(self, *, status: Any = None, filter: str | None = None) -> Iterator[dict]:
        params = {"per_page": MAX_PER_PAGE, "status": comma_list(status), "filter": filter}
        return iterate(self._transport, "/notifications", params)

    def replay(self, notification_id: str) -> str:
        """Ask Paddle to deliver a notification again; returns the new `ntf_` id."""
        data = self._data(
            "POST", f"/notifications/{notification_id}/replay", json=None, repeatable=True
        )
        return data["notification_id"]
