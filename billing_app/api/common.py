"""What the API's blueprints share: error documentation, security, the access policy."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from billing_app.api.openapi import ErrorSchema
from billing_app.auth import current_user
from billing_app.services.access import AccessPolicy

USER = [{"userToken": []}]
SERVICE = [{"serviceToken": []}]

ERROR_DESCRIPTIONS = {
    401: "unauthorized: missing, expired or invalid token",
    404: "plan_not_found or no_subscription",
    409: "subscription_exists, invalid_state or subscription_canceled",
    422: "validation_error, with `errors` by field",
    502: "paddle_error: Paddle refused; `paddle_error_code` is Paddle's code",
    503: "paddle_unavailable (with Retry-After when known) or paddle_not_configured",
}


def documents_errors(blp, *statuses: int):
    """Document these error answers (all in the one error shape) on a view."""

    def decorate(view):
        for status in statuses:
            view = blp.alt_response(
                status, schema=ErrorSchema, description=ERROR_DESCRIPTIONS[status]
            )(view)
        return view

    return decorate


def authenticate_first(blp) -> None:
    """Every route of `blp` is for signed-in users: the token is checked before the body
    is read or parsed, so an anonymous request is a 401 whatever it sends."""

    @blp.before_request
    def authenticate() -> None:
        current_user()


def access_policy() -> AccessPolicy:
    return AccessPolicy(past_due_grace=timedelta(days=current_app.config["PAST_DUE_GRACE_DAYS"]))
