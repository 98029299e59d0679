"""LISTEN/NOTIFY on PostgreSQL: workers wake when any process commits a delivery, and the
listener says when its connection goes and comes back."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, select, text

from billing_app.db import single_statement
from billing_app.extensions import db
from billing_app.models import WebhookEvent
from billing_app.notifications import INBOX_CHANNEL, Listener, conninfo, listener_of
from billing_app.worker import Worker, wake_on
from tests.helpers.payloads import body_of, envelope, subscription_data
from tests.helpers.waiting import eventually
from tests.helpers.webhooks import post_webhook

pytestmark = pytest.mark.postgres


def status_of(event_id: str) -> str | None:
    with single_statement(db.engine) as connection:
        return connection.execute(
            select(WebhookEvent.status).where(WebhookEvent.event_id == event_id)
        ).scalar()


def terminate(backend_pid: int) -> None:
    killer = create_engine(db.engine.url)
    with killer.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid})
    killer.dispose()


class WatchedEvent(threading.Event):
    """An event that says when someone first waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited_on = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waited_on.set()
        return super().wait(timeout)


def test_a_waiting_worker_wakes_at_once_when_a_delivery_commits(app, client):
    wake, stop = WatchedEvent(), threading.Event()
    listener = listener_of(app)
    wake_on(listener, INBOX_CHANNEL, wake)
    listener.ensure_running()
    assert listener.connected.wait(5)
    worker = Worker(app, idle_wait=60, listener=listener)  # it would poll once a minute
    thread = threading.Thread(target=worker.run, args=(stop, wake))
    thread.start()
    try:
        assert wake.waited_on.wait(5)  # it found nothing due, and waits
        notification = envelope("subscription.created", subscription_data(id="sub_wake"))
        accepted_at = time.monotonic()
        assert post_webhook(client, body_of(notification), apply=False).status_code == 200
        assert eventually(lambda: status_of(notification["event_id"]) == "processed", 2.0)
        assert time.monotonic() - accepted_at < 2.0
    finally:
        stop.set()
        wake.set()
        thread.join(10)
        listener.stop()


def test_the_listener_reports_a_lost_connection_and_listens_again(app):
    payloads: list[str] = []
    states: list[bool] = []
    listener = Listener(conninfo(db.engine.url), reconnect_wait=0.1)
    listener.subscribe("billing_test_channel", payloads.append)
    listener.watch(states.append)
    listener.ensure_running()
    try:
        assert listener.connected.wait(5)
        terminate(listener.backend_pid)
        assert eventually(lambda: states == [True, False, True]), states
        with single_statement(db.engine) as connection:
            connection.execute(text("SELECT pg_notify('billing_test_channel', 'after')"))
        assert eventually(lambda: payloads == ["after"]), payloads
    finally:
        listener.stop()
