"""What the API's blueprints share: error documentation and security."""

from __future__ import annotations

import json
from copy import deepcopy
from datetime import datetime

from billing_app import errors
from billing_app.api.openapi import HTTP_ERROR_CODES, ErrorSchema
from billing_app.auth import current_user, is_account_id

USER = [{"userToken": []}]
SERVICE = [{"serviceToken": []}]


def error_codes(*answers: type[errors.BillingError] | int) -> dict[int, tuple[str, ...]]:
    """By status, the stable codes of these answers: our error classes, or a status that
    Flask and flask-smorest answer themselves (with its code of `HTTP_ERROR_CODES`)."""
    codes: dict[int, tuple[str, ...]] = {}
    for answer in answers:
        status, code = (
            (answer, HTTP_ERROR_CODES[answer])
            if isinstance(answer, int)
            else (answer.status, answer.code)
        )
        codes[status] = (*codes.get(status, ()), code)
    return codes


# The stable codes an answer of each status can carry, unless an operation says otherwise.
ERROR_CODES = error_codes(
    400,  # a body that is not JSON
    errors.Unauthorized,
    errors.PlanNotFound,
    errors.NoSubscription,
    errors.SubscriptionExists,
    errors.InvalidState,
    errors.CheckoutInProgress,
    errors.SubscriptionCanceled,
    413,
    errors.ValidationFailed,
    429,
    500,
    errors.PaddleRefused,
    errors.PaddleUnavailable,
    errors.PaddleBusy,
    errors.PaddleNotConfigured,
    errors.DatabaseUnavailable,
)
ERROR_NOTES = {
    422: "`errors` holds the messages by field",
    429: "with Retry-After; per account on user endpoints, per address on public ones",
    502: "Paddle refused; `paddle_error_code` is Paddle's own code",
    503: "with Retry-After when known",
}


def operation(
    blp, operation_id: str, *statuses: int, codes: dict[int, tuple[str, ...]] | None = None
):
    """Name an operation (`operationId`, what generated clients call it) and document the
    error answers it can give, each in the one error shape with the codes it can carry."""
    codes = {**ERROR_CODES, **(codes or {})}

    def decorate(view):
        for status in statuses:
            description = " | ".join(f"`{code}`" for code in codes[status])
            if status in ERROR_NOTES:
                description += f": {ERROR_NOTES[status]}"
            view = blp.alt_response(status, schema=ErrorSchema, description=description)(view)
        return blp.doc(operationId=operation_id, summary=summary_of(view))(view)

    return decorate


def summary_of(view) -> str | None:
    """The docstring's first paragraph on one line, without Markdown: /docs shows a summary
    as plain text (the description below it is rendered)."""
    if not view.__doc__:
        return None
    first = view.__doc__.strip().split("\n\n")[0]
    return " ".join(first.split()).replace("`", "")


ONLY_NO_SUBSCRIPTION = error_codes(errors.NoSubscription)  # 404: no plan is named

# What every operation of a kind can answer besides its own errors.
USER_ACTION = (400, 401, 413, 422, 429, 502, 503)
USER_READ = (401, 429, 503)


def authenticate_first(blp) -> None:
    """Every route of `blp` is for signed-in users: the token is checked before the body
    is read or parsed, so an anonymous request is a 401 whatever it sends."""

    @blp.before_request
    def authenticate() -> None:
        current_user()


def etag_documented(view):
    """Document an ETag and its 304 as flask-smorest's `etag` does, for a view that sets
    them itself (flask-smorest would hash the answer a second time)."""
    view._apidoc = deepcopy(getattr(view, "_apidoc", {}))
    view._apidoc["etag"] = True
    return view


def _iso(value):
    if isinstance(value, datetime):
        return value.isoformat()  # as marshmallow's AwareDateTime writes it
    raise TypeError(f"{type(value).__name__} is not JSON")


def as_json(answer) -> bytes:
    """An answer written as its schema would write it, without the schema's per-field cost
    (the hot paths; a test holds each equal to the schema's dump)."""
    return json.dumps(answer, default=_iso, sort_keys=True, separators=(",", ":")).encode()


def checked_account_id(account_id: str) -> str:
    """An account id from a path, or 422: printable, at most 128 characters."""
    if not is_account_id(account_id):
        raise errors.ValidationFailed(
            "Not an account id.", errors={"account_id": ["must be printable, at most 128"]}
        )
    return account_id
