"""The webhook inbox: the ledger filtered, one event's payload, and replays."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, flash, redirect, render_template, request, url_for

from billing_app.admin.blueprint import blp
from billing_app.admin.paging import moment_cursor, read_date, read_moment_cursor, split_page
from billing_app.admin.redirects import console_page
from billing_app.admin.sign_in import record
from billing_app.extensions import db
from billing_app.models import WEBHOOK_EVENT_STATUSES
from billing_app.services.console.timeline import accounts_of_events
from billing_app.services.webhooks import ledger as webhook_service
from billing_app.services.webhooks.handlers import HANDLERS

PAGE_SIZE = 50
MAX_REPLAY = 200
REPLAYABLE = ("failed", "dead")


@blp.route("/webhooks")
def inbox():
    status = request.args.get("status") or ""
    event_type = request.args.get("type") or ""
    since = read_date(request.args.get("since"))
    until = read_date(request.args.get("until"))
    events = webhook_service.ledger_events(
        db.session,
        statuses=[status] if status in WEBHOOK_EVENT_STATUSES else [],
        event_types=[event_type] if event_type else [],
        since=since,
        until=until + timedelta(days=1) if until else None,
        after=read_moment_cursor(request.args.get("after")),
        limit=PAGE_SIZE + 1,
    )
    events, last = split_page(events, PAGE_SIZE)
    filters = {key: request.args.get(key) or "" for key in ("status", "type", "since", "until")}
    next_page = (
        url_for("admin.inbox", **filters, after=moment_cursor(last.received_at, last.id))
        if last
        else None
    )
    return render_template(
        "admin/inbox.html",
        events=events,
        accounts=accounts_of_events(db.session, [event.event_id for event in events]),
        any_replayable=any(event.status in REPLAYABLE for event in events),
        any_error=any(event.error for event in events),
        filters=filters,
        statuses=WEBHOOK_EVENT_STATUSES,
        event_types=sorted(HANDLERS),
        replayable=REPLAYABLE,
        next_page=next_page,
    )


@blp.route("/webhooks/<event_id>")
def webhook_event(event_id: str):
    event = webhook_service.ledger_event(db.session, event_id)
    if event is None:
        abort(404, description=f"No event {event_id} in the ledger.")
    account_id = accounts_of_events(db.session, [event.event_id]).get(event.event_id)
    return render_template(
        "admin/webhook_event.html", event=event, account_id=account_id, replayable=REPLAYABLE
    )


@blp.route("/webhooks/replay", methods=["POST"])
def replay_webhooks():
    """Replay the chosen events through the same path as the CLI's `webhooks replay`."""
    event_ids = request.form.getlist("event_id")[:MAX_REPLAY]
    entries = webhook_service.events_to_replay(db.session, event_ids=event_ids) if event_ids else []
    if not entries:
        flash("Choose at least one event that can be replayed.", "error")
        return redirect(console_page(request.form.get("back"), fallback="admin.inbox"), code=303)
    accounts = accounts_of_events(db.session, [entry.event_id for entry in entries])
    for result in webhook_service.replay(db.session, entries):
        kept = f"; it stays {result.kept_status}" if result.kept_status else ""
        record(
            "replay_webhook",
            result.outcome,
            target=result.event_id,
            account_id=accounts.get(result.event_id),
            detail=f"{result.event_type}{kept}",
        )
        flash(
            f"{result.event_id} ({result.event_type}): {result.outcome}{kept}",
            "error" if result.outcome == "failed" else "ok",
        )
    return redirect(console_page(request.form.get("back"), fallback="admin.inbox"), code=303)
