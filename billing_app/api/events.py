"""`GET /api/v1/events`: the outbound events as a feed (service token), for consumers that
cannot receive webhooks: ordered, resumable by cursor, with a long poll (`wait=`) that
answers within a moment of a new event. And the event catalogue in the OpenAPI document
(its `webhooks`: what an endpoint receives)."""

from __future__ import annotations

import json
import time

import marshmallow as ma
from flask import Flask, Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from billing_app.api.common import SERVICE, error_codes, operation
from billing_app.auth import require_service_token
from billing_app.db import single_statement
from billing_app.errors import CursorExpired, ValidationFailed
from billing_app.extensions import db
from billing_app.notifications import EVENTS_CHANNEL, listener_of
from billing_app.services.events import outbox
from billing_app.services.events.catalogue import EVENT_TYPES
from billing_app.services.events.feed import START, Cursor, is_kept, latest_cursor, read_feed
from billing_app.services.events.tail import FeedTail

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="Outbound events, as a feed")


class EventSchema(ma.Schema):
    id = fields.String(required=True, metadata={"description": "evt_..., the webhook-id"})
    type = fields.String(required=True, validate=validate.OneOf(sorted(EVENT_TYPES)))
    timestamp = fields.String(required=True, metadata={"description": "when it was written"})
    account_id = fields.String(required=True)
    sequence = fields.Integer(
        required=True,
        metadata={"description": "per account, from 1: drop an event older than one already seen"},
    )
    data = fields.Dict(required=True, metadata={"description": "by type: see docs/events.md"})


class EventPageSchema(ma.Schema):
    data = fields.List(fields.Nested(EventSchema), required=True)
    next_cursor = fields.String(
        required=True, metadata={"description": "give it as `after` to read on"}
    )


class FeedCursorSchema(ma.Schema):
    cursor = fields.String(
        required=True,
        metadata={"description": "give it as `after` to read only what is written from now on"},
    )


class EventFeedQuerySchema(ma.Schema):
    after = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "a `next_cursor`; none: from the oldest event kept"},
    )
    types = fields.String(
        validate=validate.Length(max=2000),
        metadata={"description": "comma-separated event types; none: every type"},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    wait = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=60),
        metadata={
            "description": "seconds to wait for an event when there is none yet (long poll;"
            " at most EVENTS_FEED_MAX_WAIT_SECONDS)"
        },
    )


def register_feed(app: Flask) -> None:
    listener = listener_of(app)

    def latest() -> Cursor:
        with app.app_context(), single_statement(db.engine) as connection:
            return latest_cursor(connection)

    def listening() -> bool:
        return listener is not None and listener.connected.is_set()

    tail = app.extensions["billing_feed_tail"] = FeedTail(latest, listening=listening)
    app.extensions.setdefault(outbox.WRITTEN, []).append(tail.announce)
    if listener is not None:
        listener.subscribe(EVENTS_CHANNEL, tail.announce)
        listener.watch(lambda _listening: tail.announce())  # what went unheard meanwhile


@blp.before_request
def services_only() -> None:
    require_service_token()


def _query(query: dict) -> tuple[Cursor, list[str] | None, float]:
    try:
        after = Cursor.decode(query["after"]) if query.get("after") else START
    except ValueError as error:
        raise ValidationFailed(str(error), errors={"after": [str(error)]}) from None
    types = [kind.strip() for kind in (query.get("types") or "").split(",") if kind.strip()]
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise ValidationFailed(
            "Unknown event types.", errors={"types": [f"unknown: {', '.join(unknown)}"]}
        )
    longest = current_app.config["EVENTS_FEED_MAX_WAIT_SECONDS"]
    if query["wait"] > longest:
        raise ValidationFailed(
            f"wait is at most {longest} seconds.", errors={"wait": [f"at most {longest}"]}
        )
    return after, types or None, float(query["wait"])


@blp.route("/events")
class Events(MethodView):
    @blp.doc(security=SERVICE)
    @blp.arguments(EventFeedQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, EventPageSchema)
    @operation(
        blp, "listEvents", 401, 410, 422, 503, codes=error_codes(ValidationFailed, CursorExpired)
    )
    def get(self, query):
        """Events after a cursor, oldest first: each account's in its `sequence` order.
        Keep `next_cursor` and ask again with it as `after`; with `wait`, an empty page
        waits for the next event (a long poll). Events are kept EVENTS_RETENTION_DAYS: a
        cursor whose event is no longer kept is answered 410 `cursor_expired` (events after
        it may be gone too)."""
        after, types, wait = _query(query)
        tail = current_app.extensions["billing_feed_tail"]
        listener = listener_of(current_app)
        if listener is not None and wait:
            listener.ensure_running()
        deadline = time.monotonic() + wait
        bodies, cursor = [], after
        while True:
            seen = tail.current()
            # A cursor at the known end of the feed has nothing to read: an idle long poll
            # costs no query at all, however many there are.
            if after != seen or not tail.is_current():
                with single_statement(db.engine) as connection:
                    bodies, cursor = read_feed(connection, after, types=types, limit=query["limit"])
                    if not bodies and not is_kept(connection, after):
                        raise CursorExpired()
            left = deadline - time.monotonic()
            if bodies or left <= 0:
                break
            tail.wait_past(seen, left)
        # The bodies are the JSON the outbox wrote: joined as they are, not parsed again.
        page = f'{{"data":[{",".join(bodies)}],"next_cursor":{json.dumps(cursor.encode())}}}'

        return Response(page, mimetype="application/json")


@blp.route("/events/cursor")
class FeedEnd(MethodView):
    @blp.doc(security=SERVICE)
    @blp.response(200, FeedCursorSchema)
    @operation(blp, "getEventsCursor", 401, 503)
    def get(self):
        """The feed's end now: a consumer starting afresh (an empty cache, or after
        `cursor_expired`) reads on from here, and reads the state itself for the rest."""
        with single_statement(db.engine) as connection:
            return {"cursor": latest_cursor(connection).encode()}


def document_webhooks(spec) -> None:
    """The catalogue as OpenAPI 3.1 `webhooks`: what an endpoint receives, one per type."""
    webhooks = {}
    for kind, meaning in EVENT_TYPES.items():
        webhooks[kind] = {
            "post": {
                "summary": kind,
                "description": meaning
                + " Signed to the Standard Webhooks spec (webhook-id, webhook-timestamp,"
                " webhook-signature); answer any 2xx.",
                "operationId": "event_" + kind.replace(".", "_"),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Event"}}
                    },
                },
                "responses": {"200": {"description": "received (any 2xx will do)"}},
            }
        }
    spec.options["webhooks"] = webhooks
