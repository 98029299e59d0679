"""What can go wrong talking to Paddle, as a small hierarchy.

PaddleError
├── ApiError        Paddle answered and refused (4xx): switch on `code`
└── Unavailable     Paddle could not answer: timeout, connection failure, 5xx (after retries)
    └── RateLimited 429 too_many_requests; `retry_after` seconds to wait
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class PaddleError(Exception):
    """Base class of every error this package raises about the API."""


class ApiError(PaddleError):
    """Paddle refused the request. `code` is Paddle's stable snake_case error code."""

    def __init__(
        self,
        status: int,
        *,
        code: str,
        detail: str = "",
        type: str | None = None,
        field_errors: list[FieldError] | None = None,
        request_id: str | None = None,
        documentation_url: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.type = type
        self.field_errors = field_errors or []
        self.request_id = request_id
        self.documentation_url = documentation_url
        super().__init__(f"{status} {code}: {detail}")


class Unavailable(PaddleError):
    """Paddle did not give a usable answer: timeouts, connection errors, 5xx after retries.

    `may_have_applied`: the last attempt may have reached Paddle and been carried out (a
    timeout waiting for the answer, a 5xx); false when it never left or Paddle refused it
    unread (429). After a write that may have applied, read back before sending it again.
    """

    may_have_applied = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(message)


class RateLimited(Unavailable):
    """Paddle answered 429; send nothing for `retry_after` seconds."""

    code = "too_many_requests"


@dataclass
class _Envelope:
    """Paddle's error envelope, parsed leniently (a proxy's HTML page parses to nothing)."""

    code: str = "unknown_error"
    detail: str = ""
    type: str | None = None
    documentation_url: str | None = None
    request_id: str | None = None
    field_errors: list[FieldError] = field(default_factory=list)


def parse_error_envelope(body: object) -> _Envelope:
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return _Envelope()
    error = body["error"]
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    return _Envelope(
        code=str(error.get("code") or "unknown_error"),
        detail=str(error.get("detail") or ""),
        type=error.get("type"),
        documentation_url=error.get("documentation_url"),
        request_id=meta.get("request_id"),
        field_errors=[
            FieldError(field=str(item.get("field", "")), message=str(item.get("message", "")))
            for item in error.get("errors") or []
            if isinstance(item, dict)
        ],
    )
