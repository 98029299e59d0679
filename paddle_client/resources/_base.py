from __future__ import annotations

from typing import Any

from paddle_client.transport import Transport


class Resource:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def _data(self, method: str, path: str, **options: Any) -> Any:
        """`Transport.request`, unwrapped from Paddle's `{data, meta}` envelope."""
        return self._transport.request(method, path, **options).get("data")


def include(values: Any) -> str | None:
    if not values:
        return None
    return values if isinstance(values, str) else ",".join(values)


def without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}
