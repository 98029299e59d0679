"""The one schedule: every recurring job, when it runs, and catching up a missed night.

Production runs `flask --app wsgi billing scheduler` as one small process (or several: every
job takes a lease in the database, so extra schedulers are harmless). `SCHEDULER_ENABLED=true`
runs the same schedule inside the web process for one-process setups.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from billing_app import jobs
from billing_app.db import utcnow
from billing_app.metrics import JOB_LAST_SUCCESS
from billing_app.services.events import clock
from billing_app.services.health import HEARTBEAT_EVERY

log = logging.getLogger(__name__)

MISFIRE_GRACE = timedelta(hours=6)
WEBHOOK_RETRY_EVERY = timedelta(minutes=1)
REQUESTS_EVERY = timedelta(seconds=5)  # how soon an operator's "reconcile now" starts
PRUNE_AT = {"hour": 4, "minute": 30}
USAGE_PRUNE_AT = {"hour": 4, "minute": 45}
EVENTS_PRUNE_AT = {"hour": 5, "minute": 0}


_CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expression: str) -> CronTrigger:
    """A standard 5-field crontab line, in UTC.

    APScheduler 3 counts weekdays from Monday=0, while cron counts from Sunday=0 (and 7);
    weekday numbers are turned into names so `* * * * 1` means Monday, as an operator expects.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"RECONCILE_CRON needs 5 fields, got {expression!r}")
    minute, hour, day, month, weekday = fields
    weekday = re.sub(
        r"(?<![/\d])([0-7])(?!\d)", lambda match: _CRON_WEEKDAYS[int(match.group(1))], weekday
    )
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=UTC
    )


def reconcile_trigger(app: Flask) -> CronTrigger:
    return cron_trigger(app.config["RECONCILE_CRON"])


def latest_slot(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The most recent time at or before `now` that the trigger fired (or should have)."""
    for lookback in (timedelta(days=2), timedelta(days=32), timedelta(days=367)):
        slot, moment = None, trigger.get_next_fire_time(None, now - lookback)
        while moment is not None and moment <= now:
            slot, moment = moment, trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
        if slot is not None:
            return slot
    return None


def missed_slot(
    trigger: CronTrigger, last_started: datetime | None, now: datetime
) -> datetime | None:
    """The slot to catch up once, if no run has started since the latest one."""
    slot = latest_slot(trigger, now)
    if slot is None or (last_started is not None and last_started >= slot):
        return None
    if now - slot > MISFIRE_GRACE:
        return None  # too late to be "tonight's" run; the next slot will do it
    return slot


def logged(job):
    """A job as the scheduler runs it: a failure is one ERROR line, not a traceback, and
    the schedule goes on (the job's own lease and records say the rest)."""

    @functools.wraps(job)
    def run(*args, **kwargs):
        try:
            result = job(*args, **kwargs)
            JOB_LAST_SUCCESS.labels(job.__name__).set(time.time())
            return result
        except (jobs.JobFailed, SQLAlchemyError) as error:
            log.error("job %s failed: %s", job.__name__, error)
        except Exception:
            log.exception("job %s failed", job.__name__)
        return None

    return run


@logged
def run_reconcile_slot(app: Flask, scheduler: BaseScheduler | None = None) -> None:
    slot = latest_slot(reconcile_trigger(app), utcnow())
    if jobs.reconcile(app, scheduled_for=slot) is None and scheduler is not None:
        # Refused: another process holds the lease, perhaps a run that died holding it.
        # The night is not lost: the catch-up tries again until the lease lapses.
        schedule_catch_up(scheduler, app, utcnow())


def catch_up_every(app: Flask) -> timedelta:
    """How often a catch-up tries again: a quarter of a lease, so a dead run's lease is
    seen to lapse within a quarter of its length."""
    return timedelta(seconds=max(app.config["JOB_LEASE_SECONDS"] / 4, 0.25))


def schedule_catch_up(scheduler: BaseScheduler, app: Flask, now: datetime) -> None:
    """Catch up the night's reconciliation if it has not run: tried now, then again every
    `catch_up_every` while another process holds the lease or the database is away, until a
    run has happened (it succeeded, or failed on its own terms) or the slot is too old."""
    slot = missed_slot(reconcile_trigger(app), jobs.last_scheduled_run_started(app), now)
    if slot is None:
        return
    log.info("the reconciliation due at %s did not run; catching it up now", slot)
    scheduler.add_job(
        catch_up_reconcile,
        IntervalTrigger(seconds=catch_up_every(app).total_seconds(), timezone=UTC),
        args=[scheduler, app, slot],
        id=CATCH_UP,
        next_run_time=now,
        misfire_grace_time=None,  # however late the scheduler starts, the first try runs
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )


CATCH_UP = "reconcile-catch-up"


@logged
def catch_up_reconcile(scheduler: BaseScheduler, app: Flask, slot: datetime) -> None:
    """One try at the night's missed run; the job ends itself once a run has happened."""
    still_missed = missed_slot(
        reconcile_trigger(app), jobs.last_scheduled_run_started(app), utcnow()
    )
    if still_missed == slot and jobs.reconcile(app, scheduled_for=slot) is None:
        return  # refused (the lease is held): the next tick tries again
    scheduler.remove_job(CATCH_UP)


def recurring_jobs(app: Flask) -> list[tuple[str, object, object, dict]]:
    """Every recurring job: its id, what it runs, when, and its own scheduling options."""
    return [
        (
            "heartbeat",
            logged(jobs.heartbeat),
            IntervalTrigger(seconds=int(HEARTBEAT_EVERY.total_seconds()), timezone=UTC),
            {"next_run_time": utcnow()},
        ),
        (
            "reconcile",
            run_reconcile_slot,
            reconcile_trigger(app),
            {"misfire_grace_time": int(MISFIRE_GRACE.total_seconds())},
        ),
        (
            "reconcile-requests",
            logged(jobs.run_requested_reconciliation),
            IntervalTrigger(seconds=int(REQUESTS_EVERY.total_seconds()), timezone=UTC),
            {},
        ),
        (
            "webhook-retry",
            logged(jobs.retry_failed_webhooks),
            IntervalTrigger(seconds=int(WEBHOOK_RETRY_EVERY.total_seconds()), timezone=UTC),
            {},
        ),
        (
            "events-clock",
            logged(jobs.sweep_event_clock),
            # A change by the clock alone is announced within a minute of its moment.
            IntervalTrigger(seconds=int(clock.SWEEP_EVERY.total_seconds()), timezone=UTC),
            {"next_run_time": utcnow()},
        ),
        (
            "scheduled-changes",
            logged(jobs.carry_out_scheduled_changes),
            # Well inside `SEND_AHEAD`: a change is sent before Paddle's renewal lock.
            IntervalTrigger(minutes=1, timezone=UTC),
            {"next_run_time": utcnow()},
        ),
        (
            "events-prune",
            logged(jobs.prune_events),
            CronTrigger(timezone=UTC, **EVENTS_PRUNE_AT),
            {},
        ),
        (
            "usage-billing",
            logged(jobs.bill_overage),
            IntervalTrigger(minutes=app.config["USAGE_BILLING_MINUTES"], timezone=UTC),
            {},
        ),
        (
            "usage-prune",
            logged(jobs.prune_usage_events),
            CronTrigger(timezone=UTC, **USAGE_PRUNE_AT),
            {},
        ),
        (
            "usage-partitions",
            logged(jobs.make_usage_partitions),
            # At start and every few hours: a month is made weeks before its first report.
            IntervalTrigger(hours=6, timezone=UTC),
            {"next_run_time": utcnow()},
        ),
        (
            "webhook-prune",
            logged(jobs.prune_webhook_ledger),
            CronTrigger(timezone=UTC, **PRUNE_AT),
            {},
        ),
    ]


def next_runs(app: Flask, now: datetime) -> list[tuple[str, datetime | None, timedelta | None]]:
    """Per job: its next time (a job on a clock), or how often it runs (one on an interval)."""
    runs = []
    for job_id, _, trigger, _ in recurring_jobs(app):
        if isinstance(trigger, IntervalTrigger):
            runs.append((job_id, None, trigger.interval))
        else:
            runs.append((job_id, trigger.get_next_fire_time(None, now), None))
    return runs


def configure(
    scheduler: BaseScheduler, app: Flask, *, now: datetime | None = None
) -> BaseScheduler:
    """Add every job to `scheduler` (not started)."""
    now = now or utcnow()
    common = {"coalesce": True, "max_instances": 1, "replace_existing": True}
    for job_id, run, trigger, options in recurring_jobs(app):
        arguments = [app, scheduler] if run is run_reconcile_slot else [app]
        scheduler.add_job(run, trigger, args=arguments, id=job_id, **common, **options)
    schedule_catch_up(scheduler, app, now)
    return scheduler


def start_in_background(app: Flask) -> BackgroundScheduler:
    scheduler = configure(BackgroundScheduler(timezone=UTC), app)
    scheduler.start()
    return scheduler
