"""Reconciliation killed, stopped or cut off from its database mid-walk: the run never stays
`running`, the lease frees itself within its ttl, and the next run finishes the job.

The command runs as a real process against a slow Paddle on a real port, on whichever
database the suite runs on (SQLite or PostgreSQL)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import event, exc, select

from billing_app import jobs
from billing_app.db import single_statement
from billing_app.extensions import db
from billing_app.models import JobLease, ReconcileRun, Subscription
from tests.helpers.paddle_lists import slow_paddle
from tests.helpers.payloads import paddle_entity

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3
SUBSCRIPTIONS = 40
PER_PAGE = 5  # 8 pages
VERSION = "2026-03-01T00:00:00Z"


def entities():
    return [paddle_entity(f"sub_{n:04d}", updated_at=VERSION) for n in range(SUBSCRIPTIONS)]


@pytest.fixture
def paddle_walk():
    with slow_paddle(entities(), per_page=PER_PAGE, seconds_per_page=0.4) as base:
        yield base


def reconcile_process(database_url, paddle_url) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PADDLE_API_KEY": "pdl_sdbx_apikey_test",
        "PADDLE_API_BASE_URL": paddle_url,
        "RECONCILE_REQUESTS_PER_MINUTE": "0",
        "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "billing", "reconcile"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def runs(session):
    """The runs as stored, read without a transaction: on SQLite even a read transaction
    would hold the write lock the process under test needs."""
    with single_statement(db.engine) as connection:
        return connection.execute(select(ReconcileRun).order_by(ReconcileRun.id)).all()


def lease_holders():
    with single_statement(db.engine) as connection:
        return connection.execute(select(JobLease.holder)).scalars().all()


def wait_for_a_page(session, process, timeout=30):
    """Until the running run has committed at least one page."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        current = runs(session)
        if current and current[-1].seen > 0:
            return
        time.sleep(0.05)
    raise AssertionError("the reconciliation never committed a page")


def test_after_kill_9_the_next_run_starts_within_the_lease_and_finishes(
    app, session, database_url, paddle_walk
):
    first = reconcile_process(database_url, paddle_walk)
    wait_for_a_page(session, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    killed_at = time.monotonic()

    # While the dead holder's lease lasts, a rerun says it skipped (exit 75, distinct from
    # done); once the lease has lapsed, one runs.
    while True:
        rerun = reconcile_process(database_url, paddle_walk)
        output = rerun.communicate(timeout=60)[0]
        if rerun.returncode != jobs_skipped():
            break
        assert "held by" in output and "Skipped" in output, output
        assert time.monotonic() - killed_at < LEASE_SECONDS + 10, output
        time.sleep(0.2)
    started_after = time.monotonic() - killed_at
    assert rerun.returncode == 0, output
    assert "Traceback" not in output

    statuses = [run.status for run in runs(session)]
    assert statuses == ["abandoned", "succeeded"], statuses
    last = runs(session)[-1]
    assert last.seen == SUBSCRIPTIONS
    assert last.missing_locally + last.in_sync == SUBSCRIPTIONS  # the dead run's pages kept
    with single_statement(db.engine) as connection:
        assert len(connection.execute(select(Subscription.id)).all()) == SUBSCRIPTIONS
    assert lease_holders() == []
    # Started within the ttl (plus one command's start-up), where it used to be 10 minutes.
    assert started_after < LEASE_SECONDS + 8, started_after


def jobs_skipped() -> int:
    from billing_app.cli import EXIT_SKIPPED

    return EXIT_SKIPPED


def test_sigterm_finishes_the_page_records_interrupted_and_frees_the_lease(
    app, session, database_url, paddle_walk
):
    process = reconcile_process(database_url, paddle_walk)
    wait_for_a_page(session, process)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=30)[0]
    from billing_app.cli import EXIT_INTERRUPTED

    assert process.returncode == EXIT_INTERRUPTED, output
    assert "Traceback" not in output
    (run,) = runs(session)
    assert run.status == "interrupted"
    assert run.finished_at is not None
    assert 0 < run.seen < SUBSCRIPTIONS
    assert run.seen % PER_PAGE == 0  # whole pages only
    with single_statement(db.engine) as connection:
        kept = connection.execute(select(Subscription.id)).all()
    assert len(kept) == run.seen  # the pages it finished are kept
    assert lease_holders() == []  # the next run may start at once


def test_a_database_error_mid_run_ends_it_failed_with_its_error(make_app, session):
    """The database goes away on the second page: no traceback, no `running` row, the
    lease given back, and what the first page did is kept."""
    import responses

    from tests.helpers.paddle_lists import serve_subscription_list

    app = make_app(RECONCILE_REQUESTS_PER_MINUTE=0)
    reads = {"n": 0}

    def database_goes_away(conn, cursor, statement, parameters, context, executemany):
        range_read = "SELECT subscriptions.paddle_subscription_id, subscriptions.paddle_updated_at"
        if statement.startswith(range_read):  # the reconciler's read of a page's range
            reads["n"] += 1
            if reads["n"] == 2:
                raise exc.OperationalError(statement, parameters, Exception("server closed"))

    with app.app_context(), responses.RequestsMock() as paddle:
        from billing_app.services import reconcile

        serve_subscription_list(paddle, entities())
        original, reconcile.PAGE_SIZE = reconcile.PAGE_SIZE, 10
        event.listen(db.engine, "before_cursor_execute", database_goes_away)
        try:
            run = jobs.reconcile(app)
        finally:
            event.remove(db.engine, "before_cursor_execute", database_goes_away)
            reconcile.PAGE_SIZE = original
    assert run.status == "failed"
    assert "OperationalError" in run.error
    (stored,) = runs(session)
    assert (stored.status, stored.seen, stored.missing_locally) == ("failed", 10, 10)
    assert "server closed" in stored.error
    assert lease_holders() == []


def test_a_held_lease_is_a_warning_naming_its_holder_and_age(app, session, caplog):
    from datetime import timedelta

    from billing_app.services.locks import held

    with held(db.engine, "reconcile", timedelta(seconds=30)) as lease, caplog.at_level("WARNING"):
        assert jobs.reconcile(app) is None
    (line,) = [r for r in caplog.records if r.name == "billing_app.jobs"]
    assert line.levelname == "WARNING"
    assert lease.holder in line.getMessage()
    assert "for 0s" in line.getMessage() or "for 1s" in line.getMessage()
