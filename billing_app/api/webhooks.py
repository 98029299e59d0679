"""`POST /webhooks/paddle`: verify on the raw bytes, then hand over to the ledger."""

from __future__ import annotations

import logging

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from werkzeug.exceptions import RequestEntityTooLarge

from billing_app.api.common import error_codes, operation
from billing_app.db import single_statement
from billing_app.errors import (
    DatabaseUnavailable,
    InvalidNotification,
    WebhookRejected,
    WebhooksNotConfigured,
)
from billing_app.extensions import db
from billing_app.metrics import WEBHOOKS_RECEIVED
from billing_app.services.webhooks import ledger as webhook_service
from billing_app.worker import wake_worker
from paddle_client import webhooks as paddle_webhooks

log = logging.getLogger("billing_app.webhooks")

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/webhooks",
    description="Notifications from Paddle, signed with the destination's secret key",
)


class AcknowledgedSchema(Schema):
    status = fields.String(
        required=True,
        validate=validate.OneOf(("accepted", "duplicate")),
        metadata={"description": "accepted (kept; a worker applies it) or duplicate"},
    )


def read_body(limit: int) -> bytes:
    """The raw body, refusing (413) anything over `limit` without reading it whole: by its
    Content-Length when it has one, else (chunked) once more than `limit` bytes arrived."""
    if request.content_length is not None:
        request.max_content_length = limit
        return request.get_data(cache=True)
    # Chunked: a stream capped at `limit` would end quietly there (and fail the signature);
    # one byte more tells a body that is too long from one that fits.
    request.max_content_length = limit + 1
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body


# The two answers, written once: the intake's hot path needs no schema to dump them.
ANSWER_BODIES = {
    outcome: f'{{"status":"{outcome}"}}\n'.encode() for outcome in ("accepted", "duplicate")
}

REFUSALS = {400: "invalid_notification", 401: "invalid_signature", 413: "too_large"}


@blp.after_request
def count_refusal(response):
    if response.status_code != 200:  # accepted and duplicate are counted by the view
        WEBHOOKS_RECEIVED.labels(REFUSALS.get(response.status_code, "unavailable")).inc()
    return response


@blp.route("/paddle")
class PaddleWebhook(MethodView):
    @blp.response(200, AcknowledgedSchema)
    @operation(
        blp,
        "receivePaddleWebhook",
        400,
        401,
        413,
        503,
        codes=error_codes(
            InvalidNotification, WebhookRejected, WebhooksNotConfigured, DatabaseUnavailable
        ),
    )
    def post(self):
        """Keep a Paddle notification (at-least-once, any order) for the workers to apply.

        Answered once the notification is durably stored: a worker applies it within a
        moment, retries it on our schedule if it fails, and parks it as `dead` after
        WEBHOOK_MAX_ATTEMPTS."""
        config = current_app.config
        secrets = config["PADDLE_WEBHOOK_SECRETS"]
        if not secrets:
            raise WebhooksNotConfigured()
        raw_body = read_body(config["WEBHOOK_MAX_BODY_BYTES"])
        try:
            paddle_webhooks.verify(
                request.headers.get(paddle_webhooks.HEADER),
                raw_body,
                secrets,
                tolerance=config["PADDLE_WEBHOOK_TOLERANCE_SECONDS"],
            )
        except paddle_webhooks.SignatureError as error:
            log.warning("webhook refused: %s", error)
            raise WebhookRejected(str(error)) from None
        try:
            notification = paddle_webhooks.parse_notification(raw_body)
        except paddle_webhooks.MalformedNotification as error:
            log.warning("webhook rejected: %s", error)
            webhook_service.record_rejected(db.session, raw_body, str(error))
            db.session.commit()
            raise InvalidNotification(f"Not a Paddle notification: {error}") from None

        with single_statement(db.engine) as connection:
            outcome = webhook_service.accept(connection, notification, raw_body)
        WEBHOOKS_RECEIVED.labels(outcome).inc()
        wake_worker()
        # Said in the request's own log line (one line per delivery), not a second one.
        request.environ["billing.log_fields"] = {
            "event_id": notification.event_id,
            "event_type": notification.event_type,
            "outcome": outcome,
        }
        return current_app.response_class(ANSWER_BODIES[outcome], mimetype="application/json")
