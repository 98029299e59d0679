"""The scheduled jobs and their schedule, with a clock the test controls."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import responses
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from billing_app import jobs
from billing_app.extensions import db
from billing_app.models import JobLease, ReconcileRun, WebhookEvent
from billing_app.scheduler import configure, latest_slot, missed_slot, reconcile_trigger
from billing_app.services.locks import Lease, LeaseHeld, held
from tests.helpers.config import PADDLE_BASE
from tests.helpers.paddle_lists import serve_subscription_list
from tests.helpers.payloads import paddle_entity
from tests.helpers.samples import sample_bytes
from tests.helpers.waiting import eventually
from tests.helpers.webhooks import post_webhook

NIGHT = datetime(2026, 6, 10, 3, 0, tzinfo=UTC)


@pytest.fixture
def unpaced(make_app):
    app = make_app(RECONCILE_REQUESTS_PER_MINUTE=0)
    with app.app_context():
        yield app


def test_latest_slot_and_missed_slot(app):
    trigger = reconcile_trigger(app)  # 0 3 * * *
    assert latest_slot(trigger, NIGHT + timedelta(hours=5)) == NIGHT
    assert latest_slot(trigger, NIGHT - timedelta(minutes=1)) == NIGHT - timedelta(days=1)
    # down at 03:00, back at 05:00: run once for tonight
    assert missed_slot(trigger, NIGHT - timedelta(days=1), NIGHT + timedelta(hours=2)) == NIGHT
    # tonight's run already started: nothing to catch up
    assert missed_slot(trigger, NIGHT + timedelta(seconds=5), NIGHT + timedelta(hours=2)) is None
    # back too late for tonight: wait for tomorrow's slot
    assert missed_slot(trigger, NIGHT - timedelta(days=1), NIGHT + timedelta(hours=7)) is None


def test_the_schedule_has_every_job(app):
    scheduler = configure(BackgroundScheduler(timezone=UTC), app, now=NIGHT + timedelta(hours=2))
    jobs_by_id = {job.id: job for job in scheduler.get_jobs()}
    assert {
        "reconcile",
        "webhook-retry",
        "webhook-prune",
        "usage-billing",
        "usage-prune",
        "usage-partitions",
        "reconcile-catch-up",
    } <= set(jobs_by_id)
    reconcile = jobs_by_id["reconcile"]
    assert reconcile.trigger.get_next_fire_time(
        None, NIGHT + timedelta(hours=2)
    ) == NIGHT + timedelta(days=1)
    assert reconcile.coalesce and reconcile.max_instances == 1
    assert reconcile.misfire_grace_time == 6 * 3600


def test_the_catch_up_is_not_scheduled_when_tonight_already_ran(app, session):
    session.add(ReconcileRun(status="succeeded", started_at=NIGHT + timedelta(minutes=1)))
    session.commit()
    scheduler = configure(BackgroundScheduler(timezone=UTC), app, now=NIGHT + timedelta(hours=2))
    assert "reconcile-catch-up" not in {job.id for job in scheduler.get_jobs()}


@pytest.mark.parametrize(
    ("expression", "first"),
    [
        ("0 3 * * 0", datetime(2026, 6, 7, 3, tzinfo=UTC)),  # Sunday, as in cron
        ("0 3 * * 7", datetime(2026, 6, 7, 3, tzinfo=UTC)),
        ("0 3 * * 1-5", datetime(2026, 6, 8, 3, tzinfo=UTC)),  # Monday to Friday
        ("0 3 * * 6", datetime(2026, 6, 13, 3, tzinfo=UTC)),  # Saturday
        ("15 */6 * * *", datetime(2026, 6, 7, 0, 15, tzinfo=UTC)),
    ],
)
def test_cron_weekdays_count_as_cron_counts_them(expression, first):
    from billing_app.scheduler import cron_trigger

    sunday_midnight = datetime(2026, 6, 7, tzinfo=UTC)
    assert cron_trigger(expression).get_next_fire_time(None, sunday_midnight) == first


def test_a_custom_cron_is_honoured(make_app):
    app = make_app(RECONCILE_CRON="30 1 * * 1")  # Mondays 01:30 UTC
    trigger = reconcile_trigger(app)
    monday = datetime(2026, 6, 8, 1, 30, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, monday - timedelta(days=2)) == monday


def test_the_reconcile_job_runs_and_records(unpaced, session, paddle):
    serve_subscription_list(paddle, [paddle_entity("sub_1", updated_at="2026-03-01T00:00:00Z")])
    run = jobs.reconcile(unpaced)
    assert run.status == "succeeded" and run.missing_locally == 1
    assert session.scalars(select(JobLease)).all() == []  # the lease is given back


def test_a_scheduled_slot_runs_once(unpaced, session, paddle):
    serve_subscription_list(paddle, [])
    slot = datetime.now(UTC) - timedelta(minutes=1)
    assert jobs.reconcile(unpaced, scheduled_for=slot) is not None
    assert jobs.reconcile(unpaced, scheduled_for=slot) is None  # a second scheduler, later
    assert session.query(ReconcileRun).count() == 1


def test_a_held_lease_stops_a_second_run(unpaced, session):
    with held(db.engine, "reconcile", timedelta(minutes=10)):
        assert jobs.reconcile(unpaced) is None
    assert session.query(ReconcileRun).count() == 0


def test_a_crashed_holders_lease_expires(app):
    crashed = Lease(db.engine, "reconcile", timedelta(seconds=-1))  # already expired
    assert crashed.acquire()
    fresh = Lease(db.engine, "reconcile", timedelta(minutes=10))
    assert fresh.acquire()
    assert not crashed.renew()  # the crashed holder cannot come back and run on
    with pytest.raises(LeaseHeld), held(db.engine, "reconcile", timedelta(minutes=10)):
        pass
    fresh.release()


def test_failed_webhooks_are_retried_when_due(app, client, session):
    from sqlalchemy import event

    def refuse(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO SUBSCRIPTION_ITEMS"):
            raise RuntimeError("injected")

    event.listen(db.engine, "before_cursor_execute", refuse)
    post_webhook(client, sample_bytes("webhook-subscription.created.json"))
    event.remove(db.engine, "before_cursor_execute", refuse)

    assert jobs.retry_failed_webhooks(app) == 0  # backoff: not due yet
    stored = session.scalars(select(WebhookEvent)).one()
    stored.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    session.commit()
    assert jobs.retry_failed_webhooks(app) == 1
    session.expire_all()
    assert session.scalars(select(WebhookEvent)).one().status == "processed"


def test_prune_deletes_old_settled_events_and_keeps_failures(app, session):
    old = datetime.now(UTC) - timedelta(days=91)
    for index, status in enumerate(["processed", "failed", "stale"]):
        session.add(
            WebhookEvent(
                event_id=f"evt_{index}",
                event_type="subscription.updated",
                occurred_at=old,
                payload="{}",
                status=status,
                received_at=old,
            )
        )
    session.add(
        WebhookEvent(
            event_id="evt_new", event_type="x", occurred_at=old, payload="{}", status="processed"
        )
    )
    session.commit()
    assert jobs.prune_webhook_ledger(app) == 2
    assert sorted(session.scalars(select(WebhookEvent.event_id))) == ["evt_1", "evt_new"]


def test_a_failed_event_kept_past_retention_keeps_no_personal_field(app, session):
    old = datetime.now(UTC) - timedelta(days=91)
    customer = {"id": "ctm_01", "email": "jo@example.com", "name": "Jo", "status": "active"}
    for event_id, received in (("evt_old", old), ("evt_recent", datetime.now(UTC))):
        session.add(
            WebhookEvent(
                event_id=event_id,
                event_type="customer.updated",
                occurred_at=old,
                payload=json.dumps({"event_id": event_id, "data": customer}),
                status="dead",
                error="customer ctm_01 could not be applied",
                received_at=received,
            )
        )
    session.commit()
    jobs.prune_webhook_ledger(app)
    session.expire_all()
    kept = {row.event_id: row for row in session.scalars(select(WebhookEvent))}
    scrubbed = json.loads(kept["evt_old"].payload)["data"]
    assert scrubbed == {**customer, "email": None, "name": None}
    assert kept["evt_old"].error == "customer ctm_01 could not be applied"  # for operators
    assert json.loads(kept["evt_recent"].payload)["data"] == customer  # within retention


def test_the_reconcile_command_prints_a_summary_and_fails_non_zero(unpaced, paddle):
    serve_subscription_list(paddle, [paddle_entity("sub_1", updated_at="2026-03-01T00:00:00Z")])
    result = unpaced.test_cli_runner().invoke(args=["billing", "reconcile", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "seen 1" in result.output  # plain progress lines off a terminal
    assert "missing locally    1" in result.output
    assert "sub_1" in result.output

    paddle.replace(
        responses.GET,
        f"{PADDLE_BASE}/subscriptions",
        status=401,
        json={"error": {"code": "invalid_token"}},
    )
    result = unpaced.test_cli_runner().invoke(args=["billing", "reconcile"])
    assert result.exit_code == 1
    assert "failed" in result.output


def test_the_web_process_can_run_the_schedule(make_app, session):
    session.add(ReconcileRun(status="succeeded", started_at=datetime.now(UTC)))  # no catch-up
    session.commit()
    app = make_app(SCHEDULER_ENABLED=True, TESTING=False)
    scheduler = app.extensions["billing_scheduler"]
    try:
        assert scheduler.running
        assert {"reconcile", "webhook-retry", "webhook-prune"} <= {
            job.id for job in scheduler.get_jobs()
        }
        assert "reconcile-catch-up" not in {job.id for job in scheduler.get_jobs()}
    finally:
        # The jobs due at once (the heartbeat, the event clock) finish before the app's
        # engine is disposed: a connection still out then would be dropped unclosed.
        scheduler.shutdown(wait=True)
    assert "billing_scheduler" not in make_app().extensions  # off unless asked for


def test_the_terminal_progress_draws_a_bar_against_paddles_estimate():
    from billing_app.cli import TerminalProgress
    from billing_app.services.reconcile import Counts

    line = TerminalProgress().line(Counts(seen=50, in_sync=49, drift_fixed=1), 200)
    assert line.startswith("[" + "#" * 7 + "-" * 23 + "]  25%")
    assert "fixed      1" in line
    unknown = TerminalProgress().line(Counts(seen=50), None)
    assert unknown[0] in "|/-\\" and "seen       50" in unknown


def test_a_heartbeat_keeps_a_short_lease_while_the_work_goes_on(app):
    import time

    with held(db.engine, "reconcile", timedelta(seconds=1)) as lease:
        time.sleep(2.5)  # more than twice the ttl
        assert not lease.lost
        assert not Lease(db.engine, "reconcile", timedelta(seconds=1)).acquire()
        assert lease.renew()


def test_a_holder_that_stops_beating_frees_the_job_within_the_ttl(app):
    import time

    dead = Lease(db.engine, "reconcile", timedelta(seconds=1))  # no heartbeat: killed
    assert dead.acquire()
    rival = Lease(db.engine, "reconcile", timedelta(seconds=1))
    assert not rival.acquire()
    time.sleep(1.1)
    assert rival.acquire()
    assert rival.current_holder()[0] == rival.holder


@pytest.mark.parametrize("status", ["running", "failed", "interrupted", "abandoned"])
def test_only_a_finished_run_counts_as_the_nights(app, session, status):
    session.add(ReconcileRun(status=status, started_at=NIGHT + timedelta(minutes=1)))
    session.commit()
    last = jobs.last_scheduled_run_started(app)
    trigger = reconcile_trigger(app)
    assert missed_slot(trigger, last, NIGHT + timedelta(hours=2)) == NIGHT  # caught up


def test_run_statuses_are_checked_by_the_database(app, session):
    from sqlalchemy.exc import IntegrityError

    for status in ("interrupted", "abandoned"):
        session.add(ReconcileRun(status=status))
        session.commit()
    session.add(ReconcileRun(status="bogus"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_a_scheduled_job_that_fails_is_one_error_line_and_the_schedule_goes_on(app, caplog):
    from sqlalchemy.exc import OperationalError

    from billing_app.scheduler import logged

    def prune(app):
        raise OperationalError("DELETE", {}, Exception("database restarting"))

    with caplog.at_level("ERROR"):
        assert logged(prune)(app) is None
    (line,) = caplog.records
    assert "prune failed" in line.getMessage() and line.exc_info is None


def test_the_reconcile_command_without_paddle_is_one_line(make_app):
    result = make_app(PADDLE_API_KEY=None).test_cli_runner().invoke(args=["billing", "reconcile"])
    assert result.exit_code == 1
    assert "not configured" in result.output
    assert len(result.output.strip().splitlines()) == 1


def succeeded_runs() -> int:
    statuses = db.session.scalars(select(ReconcileRun.status)).all()
    db.session.commit()
    return statuses.count("succeeded")


def test_a_catch_up_refused_by_a_dead_runs_lease_is_tried_again_until_it_lapses(make_app, paddle):
    """A scheduler restarted a second after it was killed mid-run: the dead run's lease is
    still held, so the first try is refused; the night is run once the lease lapses."""
    app = make_app(RECONCILE_CRON="* * * * *", JOB_LEASE_SECONDS=1, RECONCILE_REQUESTS_PER_MINUTE=0)
    serve_subscription_list(paddle, [])
    with app.app_context():
        assert Lease(db.engine, "reconcile", timedelta(seconds=1)).acquire()  # never renewed
        scheduler = configure(BackgroundScheduler(timezone=UTC), app)
        scheduler.start()
        try:
            assert eventually(lambda: succeeded_runs() >= 1, 15)
            assert eventually(lambda: scheduler.get_job("reconcile-catch-up") is None, 5)
        finally:
            scheduler.shutdown(wait=True)
