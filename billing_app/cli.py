"""`flask --app wsgi billing ...`: the operators' commands."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

import click
import requests
import yaml
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from billing_app import jobs
from billing_app.errors import PaddleNotConfigured, ValidationFailed
from billing_app.extensions import db
from billing_app.models import CHARGE_STATUSES, WEBHOOK_EVENT_STATUSES, ReconcileRun
from billing_app.paddle import paddle
from billing_app.services import health
from billing_app.services.plans import catalogue as plan_service
from billing_app.services.plans import plans_file
from billing_app.services.subscriptions import ownership
from billing_app.services.usage import overage
from billing_app.services.webhooks import ledger as webhook_service
from paddle_client import ApiError, PaddleError


@click.group("billing")
def billing_cli() -> None:
    """Billing operations."""


@billing_cli.group("plans")
def plans_cli() -> None:
    """The plan catalogue."""


def read_plans_file(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise click.ClickException(
            f"{path}: not UTF-8 text (byte {error.start}); save the plans file as UTF-8."
        ) from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise click.ClickException(f"{path}: not valid JSON or YAML: {error}") from None
    except yaml.YAMLError as error:
        raise click.ClickException(
            f"{path}: not valid JSON or YAML: {yaml_problem(error)}"
        ) from None


def yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's message names `<unicode string>`; the file's line and column say more."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return problem
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


@plans_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_plans_command(file: Path) -> None:
    """Create or update plans (and one-time products) by slug from a JSON or YAML list.
    All or nothing.

    Amounts, currencies and intervals the file leaves out are read from Paddle's prices
    when Paddle is configured (else they stay empty until `billing plans sync`)."""
    entries = read_plans_file(file)
    try:
        prices = prices_to_fill(plans_file.validate_plan_entries(entries))
        result = plan_service.import_plans(db.session, entries, prices)
        db.session.commit()
    except ValidationFailed as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    except IntegrityError as error:
        db.session.rollback()
        raise click.ClickException(
            f"Nothing imported: the database refused it ({error.orig})."
        ) from None
    click.echo(
        f"Plans and products created: {len(result.created)}, updated: {len(result.updated)}, "
        f"unchanged: {len(result.unchanged)}"
    )
    for slug in result.created:
        click.echo(f"  + {slug}")
    for slug in result.updated:
        click.echo(f"  ~ {slug}")
    for slug in result.unchanged:
        click.echo(f"  = {slug}")
    if result.without_price_facts:
        click.echo(
            f"No amount, currency or interval yet for: {', '.join(result.without_price_facts)}"
            " (run `billing plans sync` once Paddle is configured)."
        )


def prices_to_fill(plans: list[dict]) -> dict[str, dict]:
    """Paddle's prices for the entries that leave a price fact out; {} without Paddle."""
    missing = plans_file.missing_price_facts(plans)
    if not missing or not current_app.config["PADDLE_API_KEY"]:
        return {}
    client = paddle()
    try:
        return {price_id: client.prices.get(price_id) for price_id in missing}
    except PaddleError as error:
        click.echo(
            f"Could not read prices from Paddle ({paddle_problem(error)}); importing without them."
        )
        return {}


def paddle_problem(error: Exception) -> str:
    """One line on why a Paddle call failed, for an operator."""
    if isinstance(error, PaddleNotConfigured):
        return (
            "Paddle is not configured: set PADDLE_API_KEY (and PADDLE_API_BASE_URL for a simulator)"
        )
    if isinstance(error, ApiError):
        if error.status in (401, 403):
            return f"Paddle refused the API key ({error.code})"
        return f"Paddle refused the request: {error.code}: {error.detail}"
    return f"Paddle is unreachable: {error}"


@plans_cli.command("sync")
@with_appcontext
def sync_plans_command() -> None:
    """Refresh plans' and products' amounts, currencies, intervals and availability from
    Paddle."""
    try:
        prices = plan_service.active_prices(paddle())
    except (PaddleError, PaddleNotConfigured) as error:
        raise click.ClickException(paddle_problem(error)) from None
    result = plan_service.sync_from_paddle(db.session, prices)
    db.session.commit()
    click.echo(
        f"Plans and products updated: {len(result.updated)}, "
        f"deactivated: {len(result.deactivated)}, "
        f"Paddle prices with no plan: {len(result.not_imported)}"
    )
    for slug in result.updated:
        click.echo(f"  ~ {slug}")
    for slug in result.deactivated:
        click.echo(f"  - {slug} (Paddle no longer sells its price)")
    for price_id in result.not_imported:
        click.echo(f"  ? {price_id} (add it to a plans file to sell it)")


@billing_cli.group("subscriptions")
def subscriptions_cli() -> None:
    """Subscriptions that need an operator."""


@subscriptions_cli.command("unlinked")
@with_appcontext
def unlinked_command() -> None:
    """List subscriptions no account owns yet (Paddle knew them before we knew whose)."""
    rows = ownership.unlinked_subscriptions(db.session)
    for row in rows:
        click.echo(
            f"{row.paddle_subscription_id or '-':<32} {row.status:<9} "
            f"customer {row.paddle_customer_id or '-':<32} since {row.created_at:%Y-%m-%d}"
        )
    click.echo(f"{len(rows)} unlinked subscription(s).")


@subscriptions_cli.command("link")
@click.argument("paddle_subscription_id")
@click.argument("account_id")
@with_appcontext
def link_command(paddle_subscription_id: str, account_id: str) -> None:
    """Give a Paddle subscription to an account."""
    try:
        ownership.link_subscription(db.session, paddle_subscription_id, account_id)
        db.session.commit()
    except ownership.LinkRefused as refusal:
        db.session.rollback()
        raise click.ClickException(str(refusal)) from None
    click.echo(f"{paddle_subscription_id} now belongs to {account_id}.")


@billing_cli.group("customers")
def customers_cli() -> None:
    """Paddle customers that need an operator."""


@customers_cli.command("shared")
@with_appcontext
def shared_customers_command() -> None:
    """List Paddle customers that pay for more than one account (a buyer typed another
    person's email into Paddle's checkout): no portal opens for them until resolved."""
    shared = ownership.shared_customers(db.session)
    for customer in shared:
        click.echo(f"{customer.paddle_customer_id:<32} {', '.join(customer.account_ids)}")
    click.echo(f"{len(shared)} shared customer(s).")


@billing_cli.group("webhooks")
def webhooks_cli() -> None:
    """The webhook ledger."""


@webhooks_cli.command("send")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--type", "event_type", help="e.g. subscription.updated, transaction.completed")
@click.option("--subscription", "subscription_id", help="the sub_ a subscription.* event is about")
@click.option("--transaction", "transaction_id", help="the txn_ a transaction.* event is about")
@click.option(
    "--url",
    default="http://127.0.0.1:5000/webhooks/paddle",
    show_default=True,
    help="where to post it",
)
@with_appcontext
def send_webhook_command(file, event_type, subscription_id, transaction_id, url) -> None:
    """Sign a notification with the first of PADDLE_WEBHOOK_SECRETS, as Paddle signs, and
    post it: FILE as it is (a notification's JSON), or a new `--type` event carrying what
    Paddle (or the simulator) holds now for `--subscription` or `--transaction`."""
    from billing_app.services.webhooks import sending

    webhook_secrets = current_app.config["PADDLE_WEBHOOK_SECRETS"]
    if not webhook_secrets:
        raise click.ClickException("No webhook secret: set PADDLE_WEBHOOK_SECRETS.")
    if file is not None:
        if event_type or subscription_id or transaction_id:
            raise click.ClickException("Give FILE, or --type with its entity; not both.")
        body = file.read_bytes()
    else:
        body = sending.notification(
            event_type, _current_entity(event_type, subscription_id, transaction_id)
        )
    try:
        sent = sending.post_signed(url, body, webhook_secrets[0])
    except requests.RequestException as error:
        raise click.ClickException(f"Could not post to {url}: {type(error).__name__}") from None
    click.echo(f"POST {url}: {sent.status} {sent.body.strip()}")
    if not 200 <= sent.status < 300:
        sys.exit(1)


def _current_entity(event_type: str | None, subscription_id, transaction_id) -> dict:
    from billing_app.services.webhooks import sending

    kind = (event_type or "").split(".", 1)[0]
    wanted = {"subscription": subscription_id, "transaction": transaction_id}
    if kind not in sending.ENTITY_OF_TYPE:
        raise click.ClickException(
            "Give FILE, or --type subscription.* with --subscription, or --type"
            " transaction.* with --transaction."
        )
    if not wanted[kind]:
        raise click.ClickException(f"--type {event_type} needs --{kind}.")
    try:
        return sending.entity_from_paddle(paddle(), event_type, wanted[kind])
    except (PaddleError, PaddleNotConfigured) as error:
        raise click.ClickException(paddle_problem(error)) from None


@webhooks_cli.command("replay")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    default=("failed",),
    show_default=True,
    type=click.Choice([status for status in WEBHOOK_EVENT_STATUSES if status != "rejected"]),
    help="Replay stored events with this status (repeatable).",
)
@click.option("--event-id", "event_ids", multiple=True, help="Replay these events (repeatable).")
@with_appcontext
def replay_webhooks_command(statuses: tuple[str, ...], event_ids: tuple[str, ...]) -> None:
    """Re-apply stored notifications through the same code path as delivery.

    An event already applied keeps its outcome; the replay's is recorded beside it (its
    replay count and last replay outcome). Exits 1 while any still fails, or an id is
    unknown."""
    events = webhook_service.events_to_replay(db.session, statuses=statuses, event_ids=event_ids)
    unknown = sorted(set(event_ids) - {event.event_id for event in events})
    replayed = webhook_service.replay(db.session, events)
    for result in replayed:
        kept = f" (a replay; it stays {result.kept_status})" if result.kept_status else ""
        click.echo(f"{result.event_id} {result.event_type}: {result.outcome}{kept}")
    failures = sum(result.outcome == "failed" for result in replayed)
    for event_id in unknown:
        click.echo(f"{event_id}: not in the ledger as a notification that can be applied")
    click.echo(f"Replayed {len(events)} event(s), {failures} failed, {len(unknown)} unknown.")
    if failures or unknown:
        raise SystemExit(1)


# `billing reconcile` exit statuses, for cron and deploy scripts (see the README).
EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 3
EXIT_SKIPPED = 75  # EX_TEMPFAIL: another run holds the lease; nothing was done, try later


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM or SIGINT (a deploy, Ctrl-C) asks the work to stop at its next safe point."""

    def ask_to_stop(signum, frame):
        click.echo(f"\n{signal.Signals(signum).name}: stopping at the next safe point", err=True)
        stop.set()

    previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@webhooks_cli.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(WEBHOOK_EVENT_STATUSES))
@click.option("--type", "event_types", multiple=True, help="e.g. subscription.updated")
@click.option("--since", type=click.DateTime(), help="received at or after (UTC)")
@click.option("--limit", type=int, default=50, show_default=True)
@with_appcontext
def list_webhooks_command(statuses, event_types, since, limit) -> None:
    """The ledger's newest events, with their outcome, attempts and error."""
    since = since.replace(tzinfo=UTC) if since else None
    events = webhook_service.ledger_events(
        db.session, statuses=statuses, event_types=event_types, since=since, limit=limit
    )
    for event in events:
        error = f"  {event.error[:80]}" if event.error else ""
        click.echo(
            f"{event.received_at:%Y-%m-%d %H:%M:%S} {event.event_id:<34} {event.event_type:<26} "
            f"{event.status:<9} attempts {event.attempts}{error}"
        )
    click.echo(f"{len(events)} event(s).")
    db.session.close()


@billing_cli.group("usage")
def usage_cli() -> None:
    """Usage metering: overage charges, usage events' partitions."""


@usage_cli.command("charges")
@click.option("--status", "statuses", multiple=True, type=click.Choice(CHARGE_STATUSES))
@click.option("--limit", type=int, default=50, show_default=True)
@with_appcontext
def list_charges_command(statuses, limit) -> None:
    """The newest overage charges, with their status, attempts and error."""
    charges = overage.newest_charges(db.session, statuses=statuses, limit=limit)
    for charge in charges:
        error = f"  {charge.error[:80]}" if charge.error else ""
        click.echo(
            f"{charge.period_start:%Y-%m-%d}..{charge.period_end:%Y-%m-%d} "
            f"{charge.paddle_subscription_id} {charge.meter} used {charge.used}: "
            f"{charge.quantity} x {charge.price_id} {charge.status} "
            f"attempts {charge.attempts}{error}"
        )
    click.echo(f"{len(charges)} charge(s).")
    db.session.close()


@usage_cli.command("bill")
@click.option("--dry-run", is_flag=True, help="Count the charges it would open; send nothing.")
@with_appcontext
def bill_usage_command(dry_run: bool) -> None:
    """Charge the overage of closed billing periods through Paddle (once across processes).
    Exit status 75 when another run holds the lease."""
    if not dry_run and not current_app.config["PADDLE_API_KEY"]:
        raise click.ClickException(
            "Paddle is not configured (set PADDLE_API_KEY): no overage can be charged."
            " `--dry-run` counts the charges a run would open."
        )
    outcomes = jobs.bill_overage(current_app._get_current_object(), dry_run=dry_run)
    if outcomes is None:
        click.echo("Another overage billing run holds the lease; skipped.")
        sys.exit(75)
    if dry_run:
        click.echo(f"Dry run: {outcomes['would_open']} charge(s) would be opened; nothing sent.")
        return
    sent = ", ".join(f"{name} {count}" for name, count in outcomes.items() if name != "opened")
    click.echo(
        f"Overage billing: {outcomes['opened']} charge(s) opened; "
        + (f"sent to Paddle: {sent}." if sent else "none due to send.")
    )


@usage_cli.command("partitions")
@with_appcontext
def usage_partitions_command() -> None:
    """Make usage events' monthly partitions now (PostgreSQL; the scheduler does it every
    few hours): this month, the next two, and any month the default partition caught.
    Exit status 75 when another process is making them."""
    made = jobs.make_usage_partitions(current_app._get_current_object())
    if made is None:
        click.echo("Another process is making the partitions; skipped.")
        sys.exit(75)
    click.echo(f"Made {', '.join(made)}." if made else "No partition to make.")


@billing_cli.command("worker")
@click.option("--batch", type=int, default=50, show_default=True, help="rows claimed at a time")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="threads applying webhooks",
)
@click.option(
    "--senders",
    type=click.IntRange(0, 16),
    default=1,
    show_default=True,
    help="threads sending events (each sends its batch at once)",
)
@click.option("--once", is_flag=True, help="apply and send what is due now, then exit")
@with_appcontext
def worker_command(batch: int, concurrency: int, senders: int, once: bool) -> None:
    """Apply webhook events as they arrive (and failed ones once their backoff has passed),
    and send outbound events to their endpoints, in the foreground. SIGTERM or Ctrl-C:
    finish the batch, then exit."""
    from billing_app.worker import EventOutbox, Worker, run_workers

    app = current_app._get_current_object()
    if once:
        outcomes = Worker(app, batch=batch).run_once()
        click.echo(f"Applied {sum(outcomes.values())} event(s): {outcomes or 'nothing due'}.")
        sent = Worker(app, batch=batch, queue=EventOutbox(app)).run_once()
        click.echo(f"Sent {sum(sent.values())} delivery(ies): {sent or 'nothing due'}.")
        return
    health.warn_about_missing_settings(app.config, "worker")
    stop = threading.Event()
    with stop_on_signals(stop):
        run_workers(app, stop, batch=batch, concurrency=concurrency, senders=senders)


@billing_cli.group("import")
def import_cli() -> None:
    """Bring subscribers over from an earlier integration."""


@import_cli.command("paddle")
@click.option("--account-key", help="The custom_data key that names your account id.")
@click.option(
    "--customers-csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSV of account_id,paddle_customer_id (a header line is allowed).",
)
@click.option("--transaction-days", default=30, show_default=True, type=click.IntRange(0))
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@with_appcontext
def import_paddle_command(
    account_key: str | None, customers_csv: Path | None, transaction_days: int, dry_run: bool
) -> None:
    """Walk Paddle's customers and subscriptions and link them to the accounts your mapping
    names (the custom_data key, or the CSV). Resumable, idempotent; conflicts are reported,
    never guessed. Exit status: 0 done, 1 failed, 75 another import holds the lease."""
    app = current_app._get_current_object()
    if not app.config["PADDLE_API_KEY"]:
        raise click.ClickException(paddle_problem(PaddleNotConfigured()))
    if not account_key and customers_csv is None:
        raise click.UsageError("Give --account-key, --customers-csv, or both.")
    mapping = read_customer_accounts(customers_csv) if customers_csv else {}
    try:
        report = jobs.import_from_paddle(
            app,
            account_key=account_key,
            customer_accounts=mapping,
            dry_run=dry_run,
            transaction_days=transaction_days,
        )
    except (PaddleError, SQLAlchemyError) as error:
        raise click.ClickException(
            f"The import stopped ({type(error).__name__}): run it again to go on from where it"
            " got to."
        ) from None
    if report is None:
        click.echo("Skipped: another import holds the lease.")
        raise SystemExit(EXIT_SKIPPED)
    for walk, after in report.resumed.items():
        click.echo(f"resumed the {walk} after {after}")
    for kind, count in sorted(report.counts.items()):
        click.echo(f"{kind:<30} {count}")
    for conflict in report.conflicts:
        click.echo(f"conflict: {conflict}")
    if dry_run:
        click.echo("Dry run: nothing was written.")
    elif not report.changed:
        click.echo("Nothing changed: everything was imported already.")


def read_customer_accounts(path: Path) -> dict[str, str]:
    """paddle_customer_id -> account_id from a CSV of `account_id,paddle_customer_id`."""
    import csv

    mapping = {}
    with path.open(newline="", encoding="utf-8") as lines:
        for number, row in enumerate(csv.reader(lines), start=1):
            if not row or row == ["account_id", "paddle_customer_id"]:
                continue
            if len(row) != 2 or not row[1].startswith("ctm_"):
                raise click.ClickException(
                    f"{path}:{number}: expected account_id,paddle_customer_id"
                )
            mapping[row[1].strip()] = row[0].strip()
    return mapping


@billing_cli.command("reconcile")
@click.option("--dry-run", is_flag=True, help="Report drift; change nothing.")
@with_appcontext
def reconcile_command(dry_run: bool) -> None:
    """Compare every subscription with Paddle and repair drift (once across processes).

    Exit status: 0 succeeded, 1 failed, 3 interrupted (SIGTERM/SIGINT), 75 skipped because
    another run holds the lease."""
    app = current_app._get_current_object()
    if not app.config["PADDLE_API_KEY"]:
        raise click.ClickException(paddle_problem(PaddleNotConfigured()))
    progress = TerminalProgress() if sys.stdout.isatty() else PlainProgress()
    jobs.STOP.clear()
    try:
        with stop_on_signals(jobs.STOP):
            run = jobs.reconcile(app, dry_run=dry_run, progress=progress)
    except jobs.JobFailed as failure:
        raise click.ClickException(f"Reconciliation did not start: {failure}.") from None
    finally:
        progress.close()
    if run is None:
        click.echo("Skipped: another reconciliation holds the lease (see the log line above).")
        raise SystemExit(EXIT_SKIPPED)
    click.echo(render_run(reread(run)))
    db.session.close()  # on SQLite, an open read would hold the database's write lock
    if run.status == "interrupted":
        raise SystemExit(EXIT_INTERRUPTED)
    if run.status != "succeeded":
        raise SystemExit(EXIT_FAILED)


def reread(run: ReconcileRun) -> ReconcileRun:
    """The run as stored (the job wrote it in a session of its own), or as the job last
    knew it when the database cannot tell."""
    try:
        db.session.rollback()
        return db.session.get(ReconcileRun, run.id) or run
    except SQLAlchemyError:
        return run


class PlainProgress:
    """A line a page; the same counts twice (the check after the last page) print once."""

    def __init__(self) -> None:
        self.last_line: str | None = None

    def __call__(self, counts, expected=None) -> None:
        line = f"seen {counts.seen}, fixed {counts.drift_fixed}, errors {counts.errors}"
        if line != self.last_line:
            click.echo(line)
        self.last_line = line

    def close(self) -> None:
        pass


SPINNER = "|/-\\"


class TerminalProgress(PlainProgress):
    """One line redrawn in place: a bar against Paddle's estimated total, else a spinner."""

    width = 30

    def line(self, counts, expected: int | None) -> str:
        tallies = (
            f"seen {counts.seen:>8}  in sync {counts.in_sync:>8}  "
            f"fixed {counts.drift_fixed:>6}  errors {counts.errors:>4}"
        )
        if expected:
            done = min(1.0, counts.seen / expected)
            filled = int(done * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            return f"[{bar}] {done:4.0%}  {tallies}"
        spinner = SPINNER[counts.seen // 200 % len(SPINNER)]
        return f"{spinner} {tallies}"

    def __call__(self, counts, expected=None) -> None:
        click.echo("\r" + self.line(counts, expected), nl=False)

    def close(self) -> None:
        click.echo()


def render_run(run, drift_lines: int = 20) -> str:
    rows = [
        ("run", f"#{run.id}{' (dry run)' if run.dry_run else ''}"),
        ("status", run.status),
        ("started", run.started_at.isoformat()),
        ("finished", run.finished_at.isoformat() if run.finished_at else "-"),
        ("seen", run.seen),
        ("in sync", run.in_sync),
        ("drift " + ("found" if run.dry_run else "repaired"), run.drift_fixed),
        ("missing locally", run.missing_locally),
        ("missing in Paddle", run.missing_in_paddle),
        ("errors", run.errors),
        (
            "transactions",
            f"{run.transactions_seen} seen, {run.transactions_filled} "
            + ("missing or behind" if run.dry_run else "filled"),
        ),
        (
            "their adjustments",
            f"{run.adjustments_filled} " + ("missing" if run.dry_run else "filled"),
        ),
    ]
    if run.unlinked:
        rows.append(("unlinked", f"{run.unlinked} (see `billing subscriptions unlinked`)"))
    if run.error:
        rows.append(("error", run.error))
    lines = [f"{label:<18} {value}" for label, value in rows]
    if run.drifts:
        lines.append("")
        lines.append(f"{'subscription':<32} {'field':<22} {'ours':<28} paddle")
        for drift in run.drifts[:drift_lines]:
            lines.append(
                f"{drift.paddle_subscription_id:<32} {drift.field:<22} "
                f"{(drift.old_value or '-')[:28]:<28} {drift.new_value or '-'}"
            )
        if len(run.drifts) > drift_lines:
            lines.append(f"... and {len(run.drifts) - drift_lines} more (table reconcile_drifts)")
    return "\n".join(lines)


@billing_cli.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the scheduled jobs in the foreground (reconciliation, webhook retries, pruning)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from billing_app.scheduler import configure

    app = current_app._get_current_object()
    health.warn_about_missing_settings(app.config, "scheduler")
    scheduler = configure(BlockingScheduler(timezone=UTC), app)
    for job in scheduler.get_jobs():
        click.echo(f"scheduled {job.id}: {job.trigger}")

    def shut_down(signum, frame):
        # A running reconciliation ends after its page, recorded as interrupted.
        jobs.STOP.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    scheduler.start()  # returns once shut down; a running job's thread finishes before exit


@click.group("admin")
def admin_cli() -> None:
    """The operator console."""


@admin_cli.command("hash-password")
@click.option(
    "--password",
    help="The console's password. Default: asked for twice on a terminal, else the first"
    ' line of standard input (`printf %s "$PASSWORD" | billing-service admin hash-password`).',
)
@click.option(
    "--env",
    "as_env_line",
    is_flag=True,
    help="Print ADMIN_PASSWORD_HASH='...' for a .env file: single quotes keep the hash's `$`"
    " signs from being read as variables by compose and dotenv.",
)
def hash_password_command(password: str | None, as_env_line: bool) -> None:
    """Print a hash of the console's password for ADMIN_PASSWORD_HASH."""
    from werkzeug.security import generate_password_hash

    if password is None:
        password = _password_from_terminal_or_stdin()
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    hashed = generate_password_hash(password)
    click.echo(f"ADMIN_PASSWORD_HASH='{hashed}'" if as_env_line else hashed)


def _password_from_terminal_or_stdin() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    # Piped: no prompt (getpass would warn that it cannot hide what is typed).
    return sys.stdin.readline().rstrip("\r\n")


MIN_PASSWORD_LENGTH = 12
