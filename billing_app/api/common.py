"""What the API's blueprints share: error documentation and security."""

from __future__ import annotations

from billing_app.api.openapi import ErrorSchema
from billing_app.auth import current_user

USER = [{"userToken": []}]
SERVICE = [{"serviceToken": []}]

# The stable codes an answer of each status can carry, unless an operation says otherwise.
ERROR_CODES: dict[int, tuple[str, ...]] = {
    400: ("bad_request",),  # a body that is not JSON
    401: ("unauthorized",),
    404: ("plan_not_found", "no_subscription"),
    409: ("subscription_exists", "invalid_state", "checkout_in_progress", "subscription_canceled"),
    413: ("payload_too_large",),
    422: ("validation_error",),
    429: ("too_many_requests",),
    500: ("internal_error",),
    502: ("paddle_error",),
    503: ("paddle_unavailable", "paddle_busy", "paddle_not_configured", "database_unavailable"),
}
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
        return blp.doc(operationId=operation_id)(view)

    return decorate


NO_SUBSCRIPTION = {404: ("no_subscription",)}

# What every operation of a kind can answer besides its own errors.
USER_ACTION = (400, 401, 413, 422, 429, 502, 503)
USER_READ = (401, 429, 503)


def authenticate_first(blp) -> None:
    """Every route of `blp` is for signed-in users: the token is checked before the body
    is read or parsed, so an anonymous request is a 401 whatever it sends."""

    @blp.before_request
    def authenticate() -> None:
        current_user()
