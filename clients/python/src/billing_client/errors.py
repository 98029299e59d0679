"""What the client raises: the service's error shape (`error`, `message`) as exceptions."""

from __future__ import annotations

from typing import Any


class BillingError(Exception):
    """The service answered with an error, or could not be reached."""

    def __init__(self, status: int | None, error: str, message: str, body: Any = None) -> None:
        super().__init__(f"{error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.body = body


class BillingUnavailable(BillingError):
    """No answer: the service is down, unreachable, too slow, or answered 5xx."""


class QuotaExceeded(BillingError):
    """402 `quota_exceeded`: the report would pass the meter's hard limit; nothing counted."""

    @property
    def usage(self) -> dict[str, Any] | None:
        usage = self.body.get("usage") if isinstance(self.body, dict) else None
        return usage if isinstance(usage, dict) else None
