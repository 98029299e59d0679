"""`billing accounts ...`: a customer's data on request, exported or erased."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from billing_app.db import utcnow
from billing_app.errors import BillingError
from billing_app.extensions import db
from billing_app.services.data_requests import erasure
from billing_app.services.data_requests.export import export


@click.group("accounts")
def accounts_cli() -> None:
    """What the service holds about an account: export it, erase it."""


@accounts_cli.command("export")
@click.argument("account_id")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (default: stdout).",
)
@with_appcontext
def export_command(account_id: str, output: Path | None) -> None:
    """Everything held about ACCOUNT_ID, as one JSON document (docs/operations.md, Data
    requests)."""
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        for piece in export(db.engine, account_id):
            out.write(piece)
    finally:
        if output:
            out.close()
    if output:
        click.echo(f"{account_id} exported to {output}.", err=True)


@accounts_cli.command("erase")
@click.argument("account_id")
@click.option("--dry-run", is_flag=True, help="Count what would change; change nothing.")
@click.option("--by", "erased_by", default="cli", show_default=True, help="Who asked (audited).")
@with_appcontext
def erase_command(account_id: str, dry_run: bool, erased_by: str) -> None:
    """Erase ACCOUNT_ID's personal data, keeping what the books need."""
    try:
        report = erasure.erase(
            db.session, account_id, erased_by=erased_by, now=utcnow(), dry_run=dry_run
        )
    except BillingError as refusal:
        db.session.rollback()
        raise click.ClickException(refusal.message) from None
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    click.echo(describe(report))


def describe(report: erasure.ErasureReport) -> str:
    """One sentence: what changed (or would), by kind."""
    verb = "would change" if report.dry_run else "changed"
    if not report.total:
        return f"{report.account_id}: nothing to erase (already erased, or nothing personal held)."
    kinds = ", ".join(f"{count} {kind}" for kind, count in report.changed.items())
    return f"{report.account_id}: erasure {verb} {report.total} row(s): {kinds}."
