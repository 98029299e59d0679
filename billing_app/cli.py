"""`flask --app wsgi billing ...`: the operators' commands."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy.exc import IntegrityError

from billing_app.errors import ValidationFailed
from billing_app.extensions import db
from billing_app.models import WEBHOOK_EVENT_STATUSES
from billing_app.services import plans as plan_service
from billing_app.services import webhooks as webhook_service


@click.group("billing")
def billing_cli() -> None:
    """Billing operations."""


@billing_cli.group("plans")
def plans_cli() -> None:
    """The plan catalogue."""


def read_plans_file(path: Path):
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise click.ClickException(f"{path}: not valid JSON or YAML: {error}") from None


@plans_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_plans_command(file: Path) -> None:
    """Create or update plans by slug from a JSON or YAML list. All or nothing."""
    entries = read_plans_file(file)
    try:
        result = plan_service.import_plans(db.session, entries)
        db.session.commit()
    except ValidationFailed as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    except IntegrityError as error:
        db.session.rollback()
        raise click.ClickException(
            f"Nothing imported: the database refused it ({error.orig})."
        ) from None
    click.echo(f"Plans created: {len(result.created)}, updated: {len(result.updated)}")
    for slug in result.created:
        click.echo(f"  + {slug}")
    for slug in result.updated:
        click.echo(f"  ~ {slug}")


@billing_cli.group("webhooks")
def webhooks_cli() -> None:
    """The webhook ledger."""


@webhooks_cli.command("replay")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    default=("failed",),
    show_default=True,
    type=click.Choice(WEBHOOK_EVENT_STATUSES),
    help="Replay stored events with this status (repeatable).",
)
@click.option("--event-id", "event_ids", multiple=True, help="Replay these events (repeatable).")
@with_appcontext
def replay_webhooks_command(statuses: tuple[str, ...], event_ids: tuple[str, ...]) -> None:
    """Re-apply stored notifications through the same code path as delivery."""
    events = webhook_service.events_to_replay(db.session, statuses=statuses, event_ids=event_ids)
    failures = 0
    for event in events:
        outcome = webhook_service.apply_event(db.session, event)
        db.session.commit()
        failures += outcome == "failed"
        click.echo(f"{event.event_id} {event.event_type}: {outcome}")
    click.echo(f"Replayed {len(events)} event(s), {failures} failed.")
    if failures:
        raise SystemExit(1)


def _create_app():
    from billing_app import create_app

    return create_app()


# `billing-service db upgrade`, `billing-service billing plans import FILE`, ...
main = FlaskGroup(create_app=_create_app)
