"""The webhook worker: claims that never overlap, a visibility timeout for a dead worker,
retries on our schedule, dead letters after the maximum, replay of a dead letter, and
snapshots of one subscription in a batch settled as one."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from billing_app.extensions import db
from billing_app.models import Subscription, WebhookEvent
from billing_app.services.webhooks import inbox
from billing_app.worker import Worker
from tests.helpers.payloads import T0, envelope, subscription_data
from tests.helpers.rows import ledger_row as waiting
from tests.helpers.waiting import eventually


def ledger(session) -> dict[str, WebhookEvent]:
    """The ledger as stored; the read's transaction ends (on SQLite it would hold the lock
    the worker needs), and the rows keep what was read."""
    session.expire_all()
    rows = {row.event_id: row for row in session.scalars(select(WebhookEvent))}
    session.commit()
    return rows


def snapshot(paddle_id: str, status: str, second: int) -> dict:
    return envelope(
        "subscription.updated",
        subscription_data(id=paddle_id, status=status),
        occurred_at=T0 + timedelta(seconds=second),
    )


def test_due_events_are_applied_and_later_ones_wait(app, session):
    due = waiting(session, snapshot("sub_w1", "active", 1))
    later = waiting(session, snapshot("sub_w2", "active", 2), due=False)
    assert Worker(app).run_once() == {"processed": 1}
    rows = ledger(session)
    assert rows[due.event_id].status == "processed"
    assert rows[due.event_id].claimed_by is None
    assert rows[later.event_id].status == "failed"  # its backoff has not passed


def test_snapshots_of_one_subscription_in_a_batch_settle_as_one(app, session):
    events = [
        snapshot("sub_w3", status, n) for n, status in enumerate(["past_due", "paused", "active"])
    ]
    for notification in reversed(events):
        waiting(session, notification)
    assert Worker(app).run_once() == {"stale": 2, "processed": 1}
    rows = ledger(session)
    assert [rows[n["event_id"]].status for n in events] == ["stale", "stale", "processed"]
    row = session.scalars(select(Subscription)).one()
    assert (row.status, row.last_event_id) == ("active", events[-1]["event_id"])


def test_a_claim_brings_the_other_due_snapshots_of_its_subscriptions(app, session):
    oldest = waiting(session, snapshot("sub_g1", "active", 1))
    elsewhere = waiting(session, snapshot("sub_g2", "active", 2))
    newer = [
        waiting(session, snapshot("sub_g1", s, 10 + n)) for n, s in enumerate(["paused", "active"])
    ]
    claimed = inbox.claim_due(db.session, "worker-a", limit=1)
    wanted = [oldest.event_id, *(row.event_id for row in newer)]
    assert [item.entry.event_id for item in claimed] == wanted
    assert elsewhere.event_id not in {item.entry.event_id for item in claimed}
    assert inbox.settle_batch(db.session, "worker-a", claimed, max_attempts=12) == {
        "processed": 1,
        "stale": 2,
    }


def test_when_the_newest_snapshot_fails_the_older_ones_are_applied_on_their_own(
    app, session, failing_item_writes
):
    event.remove(db.engine, "before_cursor_execute", failing_item_writes)
    waiting(session, snapshot("sub_f1", "active", 1))
    assert Worker(app).run_once() == {"processed": 1}
    event.listen(db.engine, "before_cursor_execute", failing_item_writes)
    paused = waiting(session, snapshot("sub_f1", "paused", 2))
    broken = snapshot("sub_f1", "active", 3)  # a new price: its item cannot be written
    broken["data"]["items"][0]["price"]["id"] = "pri_never_written"
    waiting(session, broken)

    assert Worker(app).run_once() == {"failed": 1}  # the older one was handed back, not stale
    assert Worker(app).run_once() == {"processed": 1}
    rows = ledger(session)
    assert (rows[paused.event_id].status, rows[broken["event_id"]].status) == (
        "processed",
        "failed",
    )
    assert session.scalars(select(Subscription)).one().status == "paused"


def test_a_dead_workers_claims_are_taken_over_after_the_visibility_timeout(app, session):
    for n in range(3):
        waiting(session, snapshot(f"sub_v{n}", "active", n))
    dead = inbox.claim_due(
        db.session, "worker-that-dies", limit=10, visibility=timedelta(seconds=30)
    )
    assert len(dead) == 3
    assert inbox.claim_due(db.session, "worker-b", limit=10) == []  # still claimed
    later = datetime.now(UTC) + timedelta(seconds=31)
    taken = inbox.claim_due(db.session, "worker-b", limit=10, now=later)
    assert sorted(item.entry.id for item in taken) == sorted(item.entry.id for item in dead)
    assert inbox.settle_batch(db.session, "worker-b", taken, max_attempts=12) == {"processed": 3}
    # The dead worker, had it come back, finds the rows are no longer its own.
    assert inbox.settle_batch(db.session, "worker-that-dies", dead, max_attempts=12) == {}
    assert {row.attempts for row in ledger(session).values()} == {2}  # applied once each


@pytest.fixture
def failing_item_writes(app):
    def refuse(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO SUBSCRIPTION_ITEMS"):
            raise RuntimeError("injected failure")

    event.listen(db.engine, "before_cursor_execute", refuse)
    yield refuse
    if event.contains(db.engine, "before_cursor_execute", refuse):
        event.remove(db.engine, "before_cursor_execute", refuse)


def make_due(session):
    session.expire_all()
    for row in session.scalars(select(WebhookEvent).where(WebhookEvent.status == "failed")):
        row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    session.commit()


def test_a_failing_event_is_retried_then_parked_dead_then_replayed(
    app, session, failing_item_writes, caplog
):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 3
    notification = snapshot("sub_dead", "active", 1)
    waiting(session, notification)
    outcomes = []
    for _ in range(2):  # the delivery was attempt 1; the worker makes attempts 2 and 3
        outcomes.append(Worker(app).run_once())
        make_due(session)
    assert outcomes == [{"failed": 1}, {"failed": 1}]
    row = ledger(session)[notification["event_id"]]
    assert (row.status, row.attempts, row.next_attempt_at) == ("dead", 3, None)
    assert "injected" in row.error
    assert any("parked as dead" in r.getMessage() for r in caplog.records)
    assert Worker(app).run_once() == {}  # a dead letter is never picked up by itself

    event.remove(db.engine, "before_cursor_execute", failing_item_writes)  # fixed, say
    result = app.test_cli_runner().invoke(
        args=["billing", "webhooks", "replay", "--status", "dead"]
    )
    assert result.exit_code == 0, result.output
    assert ledger(session)[notification["event_id"]].status == "processed"


def test_the_worker_command_applies_what_is_due(app, session):
    waiting(session, snapshot("sub_cli", "active", 1))
    result = app.test_cli_runner().invoke(args=["billing", "worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "Applied 1 event(s)" in result.output
    listed = app.test_cli_runner().invoke(
        args=["billing", "webhooks", "list", "--status", "processed"]
    )
    assert "subscription.updated" in listed.output and "1 event(s)." in listed.output


@pytest.mark.postgres
def test_concurrent_workers_claim_disjoint_batches(app, session):
    notifications = [snapshot(f"sub_c{n:03d}", "active", n) for n in range(200)]
    for notification in notifications:
        waiting(session, notification)
    barrier = threading.Barrier(6)

    def claim_all(worker):
        barrier.wait()
        mine = []
        with app.app_context():
            while batch := inbox.claim_due(db.session, worker, limit=7):
                mine.extend(item.entry.id for item in batch)
            db.session.remove()
        return mine

    with ThreadPoolExecutor(max_workers=6) as pool:
        claims = list(pool.map(claim_all, [f"worker-{n}" for n in range(6)]))
    every = [entry_id for mine in claims for entry_id in mine]
    assert len(every) == len(set(every)) == 200  # each row claimed exactly once
    assert sum(1 for mine in claims if mine) >= 2  # and the work was shared


def backends_waiting_for_a_lock(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            )
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_worker_killed_mid_batch_leaves_its_rows_to_another_and_none_applies_twice(
    app, session, database_url
):
    """A worker process claims a batch and stalls on a row lock this test holds; it is
    killed with -9. Once its claim has run out, another worker applies every row, once."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from sqlalchemy import create_engine, text

    from billing_app.db import single_statement

    for n in range(10):
        waiting(session, snapshot(f"sub_k{n:02d}", "active", n))
    assert Worker(app).run_once() == {"processed": 10}  # the subscriptions exist now
    newer = [snapshot(f"sub_k{n:02d}", "past_due", 100 + n) for n in range(10)]
    for notification in newer:
        waiting(session, notification)

    holder = create_engine(database_url)
    with holder.connect() as blocker:
        blocker.execute(
            text("SELECT 1 FROM subscriptions WHERE paddle_subscription_id = 'sub_k00' FOR UPDATE")
        )
        env = {**os.environ, "DATABASE_URL": database_url, "WEBHOOK_CLAIM_SECONDS": "2"}
        env.pop("TEST_DATABASE_URL", None)
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "billing", "worker", "--once"],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        claimed_by = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(claimed_by) < 10:
            with single_statement(db.engine) as connection:
                claimed_by = connection.execute(
                    select(WebhookEvent.claimed_by).where(WebhookEvent.claimed_by.is_not(None))
                ).all()
            time.sleep(0.05)
        assert len(claimed_by) == 10, "the worker process never claimed its batch"
        # It is applying the first row now, waiting for our lock.
        assert eventually(lambda: backends_waiting_for_a_lock(database_url) >= 1, 10)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        blocker.rollback()  # the lock goes; the dead worker's transaction never commits
    holder.dispose()

    assert Worker(app).run_once() == {}  # its claims still stand
    # Until they run out (WEBHOOK_CLAIM_SECONDS=2), a worker finds nothing to do.
    assert eventually(lambda: Worker(app).run_once(), 10) == {"processed": 10}
    rows = ledger(session)
    assert [rows[n["event_id"]].attempts for n in newer] == [2] * 10  # the delivery, then once
    session.expire_all()
    assert {row.status for row in session.scalars(select(Subscription))} == {"past_due"}


def test_a_worker_takes_its_own_claims_back_at_once_after_an_error(app, session):
    """A batch that hit a database error leaves its rows claimed; the same worker lets them
    go and takes them again on its next try, while another worker still passes them over."""
    waiting(session, snapshot("sub_own", "active", 1), status="received")
    worker = Worker(app)

    def database_gone(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT") and "claimed_by" in statement:
            raise RuntimeError("the database went away")  # after the claim committed

    event.listen(db.engine, "before_cursor_execute", database_gone)
    try:
        with pytest.raises(RuntimeError):
            worker.run_once()
    finally:
        event.remove(db.engine, "before_cursor_execute", database_gone)
    assert Worker(app).run_once() == {}  # another worker: the claim still stands
    assert worker.run_once() == {"processed": 1}


@pytest.mark.postgres
def test_a_slow_live_worker_keeps_its_claims_past_their_length(app, session, database_url):
    """Claims last a second here; the worker is stuck three seconds on a row lock, and
    renews its claims meanwhile: another worker takes none of its rows."""
    from sqlalchemy import create_engine, text

    for n in range(3):
        waiting(session, snapshot(f"sub_slow{n}", "active", n), status="received")
    assert Worker(app).run_once() == {"processed": 3}  # the subscriptions exist now
    for n in range(3):
        waiting(session, snapshot(f"sub_slow{n}", "past_due", 10 + n), status="received")
    holder = create_engine(database_url)
    slow = Worker(app, visibility=timedelta(seconds=1))
    pool = ThreadPoolExecutor(max_workers=1)
    lock = "SELECT 1 FROM subscriptions WHERE paddle_subscription_id = 'sub_slow0' FOR UPDATE"
    with holder.connect() as blocker:
        blocker.execute(text(lock))
        try:
            stuck = pool.submit(slow.run_once)
            assert eventually(lambda: backends_waiting_for_a_lock(database_url) >= 1, 10)
            time.sleep(3)  # three times the claims' length, on purpose
            taken_by_another = Worker(app).run_once()
        finally:
            blocker.rollback()
    assert stuck.result(timeout=30) == {"processed": 3}
    pool.shutdown()
    holder.dispose()
    assert taken_by_another == {}
