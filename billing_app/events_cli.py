"""`billing events ...`: the outbound events' endpoints, the events themselves, and their
redelivery."""

from __future__ import annotations

from datetime import UTC

import click
from flask import current_app
from flask.cli import with_appcontext

from billing_app.extensions import db
from billing_app.models import DELIVERY_STATUSES
from billing_app.services.events import delivery, endpoints
from billing_app.services.events.catalogue import EVENT_TYPES
from billing_app.services.events.feed import list_events
from billing_app.services.events.signing import new_secret

TYPES = click.Choice(sorted(EVENT_TYPES))


def _event_types(_context, _parameter, given: tuple[str, ...]) -> list[str]:
    """`--types a,b` or `--type a --type b`: the event types named, each known."""
    named = [kind.strip() for value in given for kind in value.split(",") if kind.strip()]
    unknown = sorted(set(named) - set(EVENT_TYPES))
    if unknown:
        raise click.BadParameter(f"unknown event type(s): {', '.join(unknown)}")
    return named


@click.group("events")
def events_cli() -> None:
    """Outbound events: endpoints, what was sent, redelivery."""


@events_cli.group("endpoints")
def endpoints_cli() -> None:
    """Where events are sent."""


def _refused(action):
    """An endpoint refusal as one `Error:` line, exit 1."""
    try:
        result = action()
        db.session.commit()
        return result
    except endpoints.EndpointRefused as refusal:
        db.session.rollback()
        raise click.ClickException(str(refusal)) from None


@endpoints_cli.command("add")
@click.argument("url")
@click.option(
    "--types",
    "--type",
    "types",
    multiple=True,
    callback=_event_types,
    help="only these types (comma-separated, or repeated); default: every type",
)
@click.option("--description", help="what it is, for the operators")
@with_appcontext
def add_endpoint_command(url: str, types: list[str], description: str | None) -> None:
    """Send events to URL; prints its signing secret, once."""
    endpoint, secret = _refused(
        lambda: endpoints.add_endpoint(
            db.session,
            url,
            types=types,
            description=description,
            allow_private=current_app.config["EVENTS_ALLOW_PRIVATE_URLS"],
        )
    )
    click.echo(f"Endpoint {endpoint.id} receives {', '.join(types) or 'every event type'}.")
    click.echo(f"Signing secret (shown once; keep it in the receiver's secrets): {secret}")


@endpoints_cli.command("list")
@with_appcontext
def list_endpoints_command() -> None:
    """Every endpoint, enabled or not, and how its deliveries go."""
    found = endpoints.list_endpoints(db.session)
    for endpoint in found:
        state = (
            "enabled" if endpoint.disabled_at is None else f"DISABLED ({endpoint.disabled_reason})"
        )
        kinds = ",".join(endpoints.types_of(endpoint) or ["*"])
        last = f"{endpoint.last_success_at:%Y-%m-%d %H:%M}" if endpoint.last_success_at else "never"
        click.echo(
            f"{endpoint.id}  {endpoint.url}  types {kinds}  {state}  "
            f"failures in a row {endpoint.failures}  last success {last}"
        )
    click.echo(f"{len(found)} endpoint(s).")


@endpoints_cli.command("disable")
@click.argument("endpoint_id")
@click.option("--reason", default="disabled by an operator", show_default=True)
@with_appcontext
def disable_endpoint_command(endpoint_id: str, reason: str) -> None:
    """Stop sending to it; its deliveries wait (enable delivers them)."""
    _refused(lambda: endpoints.disable_endpoint(db.session, endpoint_id, reason))
    click.echo(f"Endpoint {endpoint_id} disabled.")


@endpoints_cli.command("enable")
@click.argument("endpoint_id")
@with_appcontext
def enable_endpoint_command(endpoint_id: str) -> None:
    """Send to it again, starting with what it missed."""
    waiting = _refused(lambda: endpoints.enable_endpoint(db.session, endpoint_id))
    click.echo(f"Endpoint {endpoint_id} enabled; {waiting} delivery(ies) go out now.")


@endpoints_cli.command("rotate-secret")
@click.argument("endpoint_id")
@with_appcontext
def rotate_secret_command(endpoint_id: str) -> None:
    """A new signing secret (shown once); the old one also signs for 24 hours."""
    secret = _refused(lambda: endpoints.rotate_secret(db.session, endpoint_id))
    click.echo(f"New signing secret for {endpoint_id} (the old one signs too for 24 hours):")
    click.echo(secret)


@events_cli.command("new-secret")
def new_secret_command() -> None:
    """A signing secret for EVENTS_ENDPOINT_SECRET."""
    click.echo(new_secret())


@events_cli.command("list")
@click.option("--type", "event_type", type=TYPES)
@click.option("--account", "account_id")
@click.option("--status", type=click.Choice(DELIVERY_STATUSES), help="of a delivery of it")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@with_appcontext
def list_events_command(event_type, account_id, status, limit) -> None:
    """The newest events, each with its deliveries (endpoint, status, attempts, last answer,
    next attempt)."""
    listed = list_events(
        db.session, type=event_type, account_id=account_id, status=status, limit=limit
    )
    for item in listed:
        event = item.event
        click.echo(
            f"{event.occurred_at:%Y-%m-%d %H:%M:%S} {event.id}  {event.type:<26} "
            f"{event.account_id} #{event.sequence}"
        )
        for sent in item.deliveries:
            answer = sent.last_status_code or (sent.last_error or "-")[:60]
            upcoming = (
                f" next {sent.next_attempt_at:%Y-%m-%d %H:%M:%S}"
                if sent.status == "pending"
                else ""
            )
            click.echo(
                f"    -> {sent.endpoint_id} {sent.status} attempts {sent.attempts}"
                f" last {answer}{upcoming}"
            )
    click.echo(f"{len(listed)} event(s).")


@events_cli.command("redeliver")
@click.argument("event_id", required=False)
@click.option("--endpoint", "endpoint_id", help="with --since: everything it takes since then")
@click.option("--since", type=click.DateTime(), help="UTC")
@with_appcontext
def redeliver_command(event_id, endpoint_id, since) -> None:
    """Send EVENT_ID again to its endpoints, or every event since --since to --endpoint."""
    if bool(event_id) == bool(endpoint_id and since):
        raise click.ClickException("Give EVENT_ID, or --endpoint with --since; one of them.")
    try:
        if event_id:
            count = delivery.redeliver(db.session, event_id)
        else:
            endpoints.endpoint_named(db.session, endpoint_id)
            count = delivery.redeliver_since(db.session, endpoint_id, since.replace(tzinfo=UTC))
        db.session.commit()
    except (LookupError, endpoints.EndpointRefused) as refusal:
        db.session.rollback()
        raise click.ClickException(str(refusal).strip("'\"")) from None
    click.echo(f"{count} delivery(ies) go out again.")
