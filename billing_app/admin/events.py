"""Outbound events: the endpoints (add, disable, enable, rotate a secret), the events with
each delivery's attempts, and redelivery."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from billing_app.admin.blueprint import blp
from billing_app.admin.redirects import console_page
from billing_app.admin.sign_in import record
from billing_app.extensions import db
from billing_app.models import DELIVERY_STATUSES
from billing_app.services.events import delivery, endpoints
from billing_app.services.events.catalogue import EVENT_TYPES
from billing_app.services.events.feed import attempts_of, event_with_deliveries, list_events

PAGE_SIZE = 50


@blp.route("/events")
def events():
    filters = {
        "type": request.args.get("type") or "",
        "account_id": (request.args.get("account_id") or "").strip(),
        "status": request.args.get("status") or "",
    }
    listed = list_events(
        db.session,
        type=filters["type"] if filters["type"] in EVENT_TYPES else None,
        account_id=filters["account_id"] or None,
        status=filters["status"] if filters["status"] in DELIVERY_STATUSES else None,
        limit=PAGE_SIZE,
    )
    return render_template(
        "admin/events.html",
        endpoints=endpoints.list_endpoints(db.session),
        listed=listed,
        filters=filters,
        event_types=sorted(EVENT_TYPES),
        statuses=DELIVERY_STATUSES,
        types_of=endpoints.types_of,
    )


@blp.route("/events/<event_id>")
def outbound_event(event_id: str):
    found = event_with_deliveries(db.session, event_id)
    if found is None:
        abort(404, description=f"No event {event_id} (events are kept a limited time).")
    return render_template(
        "admin/outbound_event.html",
        event=found.event,
        deliveries=found.deliveries,
        attempts=attempts_of(db.session, [sent.id for sent in found.deliveries]),
    )


def _back():
    return redirect(console_page(request.form.get("back"), fallback="admin.events"), code=303)


@blp.route("/events/<event_id>/redeliver", methods=["POST"])
def redeliver_event(event_id: str):
    try:
        count = delivery.redeliver(db.session, event_id)
    except LookupError as missing:
        db.session.rollback()
        flash(str(missing).strip("'\""), "error")
        return _back()
    db.session.commit()
    record("redeliver_event", "ok", target=event_id, detail=f"{count} delivery(ies)")
    flash(f"{event_id}: {count} delivery(ies) go out again.", "ok")
    return _back()


@blp.route("/events/endpoints", methods=["POST"])
def add_endpoint():
    types = [kind for kind in request.form.getlist("type") if kind]
    try:
        endpoint, secret = endpoints.add_endpoint(
            db.session,
            (request.form.get("url") or "").strip(),
            types=types,
            description=(request.form.get("description") or "").strip() or None,
            allow_private=_allow_private(),
            source="console",
        )
    except endpoints.EndpointRefused as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
        return _back()
    db.session.commit()
    record("add_event_endpoint", "ok", target=endpoint.id, detail=endpoint.url)
    flash(f"Endpoint {endpoint.id} added. Its signing secret, shown this once: {secret}", "ok")
    return _back()


def _allow_private() -> bool:
    return current_app.config["EVENTS_ALLOW_PRIVATE_URLS"]


def _change(endpoint_id: str, action: str) -> str:
    """What the action did, in words for the operator."""
    if action == "disable":
        endpoints.disable_endpoint(db.session, endpoint_id, "disabled by an operator")
        return "disabled"
    if action == "enable":
        waiting = endpoints.enable_endpoint(db.session, endpoint_id)
        return f"enabled; {waiting} delivery(ies) go out now"
    secret = endpoints.rotate_secret(db.session, endpoint_id)
    return (
        f"has a new signing secret, shown this once (the old one signs for 24 hours too): {secret}"
    )


ENDPOINT_ACTIONS = ("disable", "enable", "rotate-secret")


@blp.route("/events/endpoints/<endpoint_id>/<action>", methods=["POST"])
def change_endpoint(endpoint_id: str, action: str):
    if action not in ENDPOINT_ACTIONS:
        abort(404, description=f"No action {action} on endpoints.")
    try:
        said = _change(endpoint_id, action)
    except endpoints.EndpointRefused as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
        return _back()
    db.session.commit()
    record(f"{action.replace('-', '_')}_event_endpoint", "ok", target=endpoint_id)
    flash(f"Endpoint {endpoint_id} {said}.", "ok")
    return redirect(url_for("admin.events"), code=303)
