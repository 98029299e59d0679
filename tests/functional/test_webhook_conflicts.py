"""A webhook whose apply met another transaction (a deadlock, a lock the database would not
grant) is tried again within seconds, not after the backoff of a real failure."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from billing_app.db import is_conflict, utcnow
from billing_app.models import WebhookEvent
from billing_app.services.webhooks import ledger
from paddle_client.webhooks import parse_notification
from tests.helpers.payloads import body_of, envelope, subscription_data


def deadlock(database_url: str) -> OperationalError:
    """A real deadlock between two connections: the error the loser gets."""
    engine = create_engine(database_url)
    with engine.begin() as setup:
        setup.execute(text("CREATE TABLE IF NOT EXISTS deadlock_probe (id int PRIMARY KEY)"))
        setup.execute(text("INSERT INTO deadlock_probe VALUES (1), (2) ON CONFLICT DO NOTHING"))
    first, second = engine.connect(), engine.connect()
    caught: list[OperationalError] = []
    both_hold = threading.Barrier(2)

    def lock(connection, mine: int, theirs: int) -> None:
        transaction = connection.begin()
        connection.execute(
            text("SELECT 1 FROM deadlock_probe WHERE id = :id FOR UPDATE"), {"id": mine}
        )
        both_hold.wait()
        try:
            connection.execute(
                text("SELECT 1 FROM deadlock_probe WHERE id = :id FOR UPDATE"), {"id": theirs}
            )
        except OperationalError as error:
            caught.append(error)
        transaction.rollback()

    threads = [
        threading.Thread(target=lock, args=(first, 1, 2)),
        threading.Thread(target=lock, args=(second, 2, 1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first.close()
    second.close()
    with engine.begin() as cleanup:
        cleanup.execute(text("DROP TABLE deadlock_probe"))
    engine.dispose()
    (error,) = caught
    return error


def failed_row(session, error: Exception) -> WebhookEvent:
    body = body_of(envelope("subscription.updated", subscription_data()))
    ledger.record_failure(session, parse_notification(body), body, error, delivered=True)
    session.commit()
    return session.query(WebhookEvent).one()


@pytest.mark.postgres
def test_a_deadlocked_apply_is_due_again_within_seconds(app, session, database_url):
    error = deadlock(database_url)
    assert is_conflict(error)
    row = failed_row(session, error)
    assert row.status == "failed" and "deadlock" in row.error
    assert row.next_attempt_at - utcnow() < timedelta(seconds=3)


def test_a_real_failure_waits_out_its_backoff(app, session):
    row = failed_row(session, ValueError("a payload we cannot apply"))
    assert not is_conflict(ValueError("x"))
    assert row.next_attempt_at - utcnow() > timedelta(seconds=40)


def test_sqlites_locked_database_is_a_conflict(tmp_path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (a int)")
    holder.execute("BEGIN IMMEDIATE")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    with pytest.raises(OperationalError) as locked, engine.connect() as connection:
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    holder.close()
    engine.dispose()
    assert is_conflict(locked.value)
