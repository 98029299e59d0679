"""The scheduled jobs, thin: open a session, take the lease, call a service.

Each job takes the Flask app (the scheduler runs outside any request) and returns what it
did, for logs and tests. A job whose lease is held elsewhere logs that (at WARNING, with
the holder and how long it has held it) and returns None. Leases last `JOB_LEASE_SECONDS`
and a heartbeat renews them while the job works. `STOP`, set by a signal handler, asks a
running reconciliation to stop after its current page.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TypeVar

from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from billing_app.db import utcnow
from billing_app.extensions import db
from billing_app.models import ReconcileRun, WebhookEvent
from billing_app.paddle import build_client
from billing_app.services.locks import Lease, LeaseHeld, held, new_holder
from billing_app.services.paddle_import import ImportReport as PaddleImportReport
from billing_app.services.paddle_import import PaddleImport
from billing_app.services.reconcile import Reconciler, give_back_request, take_request
from paddle_client import RetryPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")

STOP = threading.Event()
RECONCILE_RETRY = RetryPolicy(max_attempts=6, base_delay=2.0, max_delay=60.0, max_elapsed=300.0)
PRUNABLE = ("processed", "duplicate", "stale", "ignored")


def lease_ttl(app: Flask) -> timedelta:
    return timedelta(seconds=app.config["JOB_LEASE_SECONDS"])


class JobFailed(RuntimeError):
    """A job could not start: its database did not answer (nothing was done)."""


def alone(app: Flask, job: str, what: str, work: Callable[[Lease], T]) -> T | None:
    """`work(lease)` in the app's context, while this process alone holds the job's lease;
    None when another holds it (logged at WARNING, naming `what` did not start)."""
    with app.app_context():
        try:
            with held(db.engine, job, lease_ttl(app)) as lease, closing_session():
                return work(lease)
        except LeaseHeld as held_elsewhere:
            log.warning("%s not started: %s", what, held_elsewhere)
            return None
        finally:
            db.session.remove()


def paced_paddle(app: Flask):
    """A Paddle client for the long walks (reconciliation, import): patient retries, and
    at most RECONCILE_REQUESTS_PER_MINUTE."""
    return build_client(
        app.config,
        retry=RECONCILE_RETRY,
        requests_per_minute=app.config["RECONCILE_REQUESTS_PER_MINUTE"] or None,
    )


def reconcile(
    app: Flask,
    *,
    dry_run: bool = False,
    scheduled_for: datetime | None = None,
    progress=None,
    started: Callable[[], None] | None = None,
):
    """One reconciliation, unless another process is running one (None), or (for a
    scheduled slot) one already succeeded since `scheduled_for` (None). Raises JobFailed
    if the database cannot even be reached to start; any later failure is the run's.
    `started` is called once the lease is held, before the walk."""

    def walk(lease: Lease):
        if scheduled_for is not None and ran_since(scheduled_for):
            log.info("reconciliation for %s already ran; skipping", scheduled_for)
            return None
        if started is not None:
            started()
        return Reconciler(
            db.session,
            paced_paddle(app),
            dry_run=dry_run,
            lease=lease,
            progress=progress,
            should_stop=STOP.is_set,
            transaction_days=app.config["RECONCILE_TRANSACTION_DAYS"],
        ).run()

    try:
        return alone(app, "reconcile", "reconciliation", walk)
    except SQLAlchemyError as error:
        log.error("reconciliation could not start: the database failed (%s)", error)
        raise JobFailed(f"the database did not answer ({type(error).__name__})") from None


def import_from_paddle(app: Flask, **options) -> PaddleImportReport | None:
    """`billing import paddle`: once at a time across processes (a lease), paced like
    reconciliation; None when another import holds the lease."""
    return alone(
        app,
        "paddle-import",
        "import",
        lambda _lease: PaddleImport(db.session, paced_paddle(app), **options).run(),
    )


def run_requested_reconciliation(app: Flask) -> ReconcileRun | None:
    """Take the oldest "reconcile now" an operator asked for and run it; None when none
    waits. A request refused because another run holds the lease waits for the next try."""
    with app.app_context():
        try:
            request = take_request(db.session, new_holder())
            if request is None:
                return None
            request_id, dry_run = request.id, request.dry_run
        finally:
            db.session.remove()
    run = reconcile(app, dry_run=dry_run)
    if run is None:
        with app.app_context():
            try:
                give_back_request(db.session, request_id)
            finally:
                db.session.remove()
    return run


@contextmanager
def closing_session() -> Iterator[None]:
    """End the session's transaction before the lease is given back on another connection
    (on SQLite, an open transaction would hold the lock the release needs)."""
    try:
        yield
    finally:
        db.session.close()


# Only a run that finished its walk counts as the night's: a failed, interrupted or
# abandoned one leaves the night to be caught up.
_FINISHED_RUN = (ReconcileRun.dry_run.is_(False), ReconcileRun.status == "succeeded")


def ran_since(moment: datetime) -> bool:
    started = db.session.scalar(
        select(ReconcileRun.id).where(ReconcileRun.started_at >= moment, *_FINISHED_RUN)
    )
    return started is not None


def last_scheduled_run_started(app: Flask) -> datetime | None:
    with app.app_context():
        try:
            return db.session.scalar(
                select(ReconcileRun.started_at)
                .where(*_FINISHED_RUN)
                .order_by(ReconcileRun.started_at.desc())
                .limit(1)
            )
        except SQLAlchemyError as error:
            log.error("could not read the last reconciliation (%s)", type(error).__name__)
            return None
        finally:
            db.session.remove()


_STARTED: dict[int, datetime] = {}  # by pid: a forked process starts its own count


def heartbeat(app: Flask) -> None:
    """Record that this scheduler is alive (the console shows it beside the schedule)."""
    import os

    from billing_app.services import health

    now = utcnow()
    started_at = _STARTED.setdefault(os.getpid(), now)
    with app.app_context(), closing_session():
        health.beat(db.session, "scheduler", started_at, now)
        db.session.commit()


def retry_failed_webhooks(app: Flask, *, limit: int = 100) -> int:
    """One pass of the webhook worker: apply the failed events whose backoff has passed.
    Claims keep it safe beside worker processes and other schedulers; no lease needed."""
    from billing_app.worker import Worker

    return sum(Worker(app, batch=limit).run_once().values())


def prune_webhook_ledger(app: Flask) -> int | None:
    """Delete settled ledger rows older than WEBHOOK_RETENTION_DAYS; failed ones are kept,
    without the personal fields of their payloads. The rows deleted."""
    from billing_app.services.data_requests.erasure import scrub_ledger_before

    cutoff = utcnow() - timedelta(days=app.config["WEBHOOK_RETENTION_DAYS"])
    statement = delete(WebhookEvent).where(
        WebhookEvent.status.in_(PRUNABLE), WebhookEvent.received_at < cutoff
    )

    def prune(_lease: Lease) -> int:
        deleted = db.session.execute(statement).rowcount
        scrub_ledger_before(db.session, cutoff)
        db.session.commit()
        return deleted

    return alone(app, "webhook-prune", "webhook-prune", prune)


def _prune(app: Flask, job: str, statement, *also) -> int | None:
    """Run a DELETE (and `also` others, in the same transaction) under the job's lease; the
    rows the first deleted, None if another holds it."""

    def delete_rows(_lease: Lease) -> int:
        result = db.session.execute(statement)
        for other in also:
            db.session.execute(other)
        db.session.commit()
        return result.rowcount

    return alone(app, job, job, delete_rows)


def sweep_event_clock(app: Flask) -> dict[str, int] | None:
    """Announce what the clock changed (scheduled stops taking effect, grace periods and
    grants ending, trials about to end); once across processes."""
    from billing_app.services.entitlements.access import AccessPolicy
    from billing_app.services.events import clock

    def sweep(_lease: Lease) -> dict[str, int]:
        notice = timedelta(hours=app.config["EVENTS_TRIAL_ENDING_NOTICE_HOURS"])
        policy = AccessPolicy.of(app.config)
        return clock.sweep(db.session, utcnow(), policy, trial_notice=notice)

    return alone(app, "events-clock", "the event clock's sweep", sweep)


def prune_events(app: Flask) -> int | None:
    """Delete events older than EVENTS_RETENTION_DAYS, with their deliveries."""
    from billing_app.models import OutboundEvent

    cutoff = utcnow() - timedelta(days=app.config["EVENTS_RETENTION_DAYS"])
    return _prune(
        app, "events-prune", delete(OutboundEvent).where(OutboundEvent.occurred_at < cutoff)
    )


def bill_overage(app: Flask, *, dry_run: bool = False) -> dict[str, int] | None:
    """Open a charge for each closed period with overage, then send what is due (or find
    at Paddle what a lost answer left unknown); the outcomes counted. Once across processes
    (a lease); None when another holds it. `dry_run`: count the charges it would open."""
    from collections import Counter

    from billing_app.services.usage import overage

    def bill(_lease: Lease) -> dict[str, int]:
        now = utcnow()
        late = timedelta(seconds=app.config["USAGE_LATE_SECONDS"])
        opened = overage.open_charges(
            db.session, now, late, app.config["USAGE_OVERAGE_EFFECTIVE_FROM"]
        )
        if dry_run:
            db.session.rollback()
            return {"would_open": opened}
        db.session.commit()
        due = overage.due_charges(db.session, now)
        outcomes = Counter({"opened": opened})
        if due:
            paddle = build_client(app.config)
            for charge in due:
                outcome = overage.send_charge(
                    db.session, paddle, charge, max_attempts=app.config["USAGE_CHARGE_MAX_ATTEMPTS"]
                )
                outcomes[outcome] += 1
        return dict(outcomes)

    return alone(app, "usage-billing", "overage billing", bill)


def prune_usage_events(app: Flask) -> int | None:
    """Delete usage events older than USAGE_RETENTION_DAYS (by their period's end) whose
    period is billed: no charge of theirs is still open; and the subjects a unique_count
    meter saw in periods that old. Counters and charges are kept.

    On PostgreSQL the events go a month at a time: a partition is dropped once every event
    in it may go (`usage.partitions`); the count is of the months dropped."""
    from sqlalchemy import and_, exists

    from billing_app.models import UsageCharge, UsageEvent, UsageSubject
    from billing_app.models.usage import OPEN_CHARGE_STATUSES
    from billing_app.services.usage import partitions

    cutoff = utcnow() - timedelta(days=app.config["USAGE_RETENTION_DAYS"])
    subjects = delete(UsageSubject).where(UsageSubject.period_end < cutoff)
    open_charge = exists().where(
        and_(
            UsageCharge.account_id == UsageEvent.account_id,
            UsageCharge.meter == UsageEvent.meter,
            UsageCharge.period_start == UsageEvent.period_start,
            UsageCharge.status.in_(OPEN_CHARGE_STATUSES),
        )
    )
    events = delete(UsageEvent).where(UsageEvent.period_end < cutoff, ~open_charge)

    def prune(_lease: Lease) -> int:
        if partitions.is_partitioned(db.session):
            partitions.make_months(db.session, utcnow())  # rows the default one caught
            removed = len(partitions.drop_months_past(db.session, cutoff))
        else:
            removed = db.session.execute(events).rowcount
        db.session.execute(subjects)
        db.session.commit()
        return removed

    return alone(app, "usage-prune", "usage-prune", prune)


def make_usage_partitions(app: Flask) -> list[str] | None:
    """On PostgreSQL, the months usage events will be written to, made ahead (and any the
    default partition caught, with their rows); the names made. Once across processes."""
    from billing_app.services.usage import partitions

    def make(_lease: Lease) -> list[str]:
        if not partitions.is_partitioned(db.session):
            return []  # SQLite: one table
        made = partitions.make_months(db.session, utcnow())
        db.session.commit()
        return [month.name for month in made]

    return alone(app, "usage-partitions", "making usage partitions", make)


def carry_out_scheduled_changes(app: Flask, *, now: datetime | None = None) -> dict | None:
    """Send the changes at period end whose time has come (each asks Paddle what it holds
    first); once across processes. Their outcomes counted; None when another holds the
    lease. `now`: the moment to judge by (tests follow the simulator's clock)."""
    from collections import Counter

    from billing_app.services.events import outbox
    from billing_app.services.subscriptions import scheduled_changes

    def run(_lease: Lease) -> dict[str, int]:
        moment = now or utcnow()
        due = scheduled_changes.due_changes(db.session, moment)
        db.session.rollback()
        outcomes: Counter = Counter()
        if due:
            paddle = build_client(app.config)
            outbox.caused_by(db.session, "scheduled_change")
            for change_id in due:
                outcomes[scheduled_changes.carry_out(db.session, paddle, change_id, moment)] += 1
        return dict(outcomes)

    return alone(app, "scheduled-changes", "the scheduled changes' run", run)
