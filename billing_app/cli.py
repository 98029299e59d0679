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
from billing_app.services import plans as plan_service


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


def _create_app():
    from billing_app import create_app

    return create_app()


# `billing-service db upgrade`, `billing-service billing plans import FILE`, ...
main = FlaskGroup(create_app=_create_app)
