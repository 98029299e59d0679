"""Our flask-smorest `Api`: the OpenAPI document and the one place errors get their shape."""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask_smorest import Api
from sqlalchemy import exc as sql_errors
from werkzeug.exceptions import HTTPException

from billing_app.errors import BillingError, DatabaseUnavailable, from_paddle
from paddle_client.errors import PaddleError

log = logging.getLogger(__name__)

# What a database that is down, restarting, locked or out of connections raises. Clients
# (and Paddle) should come back shortly; the pool replaces dead connections (pre-ping).
DATABASE_GONE = (sql_errors.OperationalError, sql_errors.InterfaceError, sql_errors.TimeoutError)
DATABASE_RETRY_AFTER_SECONDS = 5

# Stable codes for the errors Flask and flask-smorest raise themselves.
HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def stable_codes() -> list[str]:
    """Every `error` code the service answers with: its own, and Flask's mapped ones."""
    codes = set(HTTP_ERROR_CODES.values())
    pending = [BillingError]
    while pending:
        kind = pending.pop()
        codes.add(kind.code)
        pending.extend(kind.__subclasses__())
    codes.discard(BillingError.code)
    return sorted(codes)


class ErrorSchema(ma.Schema):
    error = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(stable_codes()),
        metadata={"description": "stable snake_case code"},
    )
    message = ma.fields.String(required=True, metadata={"description": "for humans"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        metadata={"description": "field -> messages, on validation errors"},
    )
    paddle_error_code = ma.fields.String(metadata={"description": "Paddle's code, on paddle_error"})


def _field_errors(data: dict[str, Any]) -> dict[str, Any] | None:
    errors = data.get("errors") or data.get("messages")
    if not errors:
        return None
    # webargs groups messages by location ("json", "query", ...); a client wants fields.
    if set(errors) <= {"json", "query", "headers", "form", "files", "path", "view_args"}:
        flat: dict[str, Any] = {}
        for by_field in errors.values():
            flat.update(by_field if isinstance(by_field, dict) else {"_schema": by_field})
        return flat
    return errors


class BillingApi(Api):
    ERROR_SCHEMA = ErrorSchema
    # Each operation documents the errors it can give; no catch-all `default` hides them.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self) -> None:
        super()._register_error_handlers()
        self._app.register_error_handler(BillingError, self.handle_billing_error)
        self._app.register_error_handler(PaddleError, self.handle_paddle_error)
        for error in DATABASE_GONE:
            self._app.register_error_handler(error, self.handle_database_gone)

    def handle_billing_error(self, error: BillingError):
        return error.body(), error.status, error.headers

    def handle_paddle_error(self, error: PaddleError):
        log.warning("paddle call failed: %s", error)
        return self.handle_billing_error(from_paddle(error))

    def handle_database_gone(self, error: Exception):
        # Only the kind of failure: the driver's text can name hosts and users.
        cause = getattr(error, "orig", None) or error
        log.error("database unavailable: %s", type(cause).__name__)
        return self.handle_billing_error(
            DatabaseUnavailable(headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})
        )

    def handle_http_exception(self, error: HTTPException):
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        body: dict[str, Any] = {"error": HTTP_ERROR_CODES.get(status, f"http_{status}")}
        if status >= 500:
            # Never a stack trace or an exception's text: it may hold a secret.
            body["message"] = "The service failed to handle this request."
        else:
            body["message"] = data.get("message") or error.description or error.name
        field_errors = _field_errors(data)
        if field_errors:
            body["errors"] = field_errors
        # Keep what the exception says in its headers (Allow on a 405, Retry-After on 429).
        headers = {key: value for key, value in error.get_headers() if key != "Content-Type"}
        headers.update(data.get("headers") or {})
        return body, status, headers


# Bodies that take one of several shapes, which marshmallow checks in `validates_schema` and
# apispec cannot see. Each shape becomes a named schema of its own (the fields it requires,
# the ones it may add, nothing else) and the body a `oneOf` of them: generators type it as
# a union of models, and a validator refuses exactly what the server refuses.
ONE_OF_BODIES = {
    "CheckoutRequest": (
        "A plan (by `plan` slug or `price_id`) to subscribe to, or a one-time `product`;"
        " exactly one of the three, with an optional `quantity`.",
        {
            "CheckoutPlan": (["plan"], ["quantity"]),
            "CheckoutPrice": (["price_id"], ["quantity"]),
            "CheckoutProduct": (["product"], ["quantity"]),
        },
    ),
    "ChangeRequest": (
        "A new plan (`plan` or `price_id`, with an optional `quantity`), or a `quantity`"
        " alone: a seat change on the current plan.",
        {
            "ChangeToPlan": (["plan"], ["quantity", "proration_billing_mode"]),
            "ChangeToPrice": (["price_id"], ["quantity", "proration_billing_mode"]),
            "ChangeSeats": (["quantity"], ["proration_billing_mode"]),
        },
    ),
}


def shape_one_of_bodies(spec) -> None:
    schemas = spec.components.schemas
    for body, (description, shapes) in ONE_OF_BODIES.items():
        whole = schemas[body]
        for shape, (required, optional) in shapes.items():
            schemas[shape] = {
                "type": "object",
                "properties": {name: whole["properties"][name] for name in required + optional},
                "required": required,
                "additionalProperties": False,
            }
        schemas[body] = {
            "description": description,
            "oneOf": [{"$ref": f"#/components/schemas/{shape}"} for shape in shapes],
        }
