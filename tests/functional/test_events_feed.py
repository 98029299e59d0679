"""GET /api/v1/events: the outbox as a feed, ordered and resumable by cursor, with a long
poll that hears of a new event within a second."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text

from billing_app.extensions import db
from billing_app.models import Plan
from tests.helpers.rows import make_account, make_plan, make_subscription
from tests.helpers.tokens import service_auth


def subscribe(session, account_id):
    plan = session.scalars(select(Plan)).first() or make_plan(session)
    make_account(session, account_id)
    make_subscription(session, account_id=account_id, status="active", plan_id=plan.id)


def feed(client, **query):
    response = client.get("/api/v1/events", query_string=query, headers=service_auth())
    assert response.status_code == 200, response.json
    return response.json


def test_the_feed_reads_on_from_its_cursor_in_order(client, session):
    subscribe(session, "acct_1")
    first = feed(client, limit=2)
    assert [event["sequence"] for event in first["data"]] == [1, 2]
    rest = feed(client, after=first["next_cursor"])
    assert [event["type"] for event in rest["data"]] == ["entitlements.changed"]
    subscribe(session, "acct_2")
    newer = feed(client, after=rest["next_cursor"])
    assert {event["account_id"] for event in newer["data"]} == {"acct_2"}
    assert feed(client, after=newer["next_cursor"])["data"] == []
    only = feed(client, types="entitlements.changed")
    assert [event["account_id"] for event in only["data"]] == ["acct_1", "acct_2"]


def test_bad_queries_are_refused_with_their_reason(client):
    for query, field in (
        ({"after": "not-a-cursor"}, "after"),
        ({"types": "subscription.exploded"}, "types"),
        ({"wait": 3600}, "wait"),
    ):
        response = client.get("/api/v1/events", query_string=query, headers=service_auth())
        assert response.status_code == 422 and field in response.json["errors"]
    assert client.get("/api/v1/events").status_code == 401


def test_a_long_poll_hears_of_a_new_event_within_a_second(app, client, session):
    cursor = feed(client)["next_cursor"]

    def later():
        time.sleep(0.5)
        with app.app_context():
            subscribe(db.session, "acct_1")
            db.session.remove()

    writer = threading.Thread(target=later)
    started = time.monotonic()
    writer.start()
    page = feed(client, after=cursor, wait=5)
    waited = time.monotonic() - started
    writer.join()
    assert page["data"] and page["data"][0]["type"] == "subscription.created"
    assert 0.4 < waited < 1.5


@pytest.mark.postgres
def test_an_event_committed_late_is_not_passed_over(app, client, session, make_app):
    """A transaction that wrote an event first but commits last: the feed holds back what
    came after it until it has committed, so the cursor never skips it."""
    subscribe(session, "acct_0")
    cursor = feed(client)["next_cursor"]
    slow = db.engine.connect()
    slow_transaction = slow.begin()
    slow.execute(text("SELECT pg_current_xact_id()"))  # it has begun, with its id
    subscribe(session, "acct_1")  # commits while the slow one is still open
    assert feed(client, after=cursor)["data"] == []  # held back behind the open one
    slow_transaction.commit()
    slow.close()
    page = feed(client, after=cursor)
    assert {event["account_id"] for event in page["data"]} == {"acct_1"}


def test_the_cursor_endpoint_gives_the_end_of_the_feed(client, session):
    subscribe(session, "acct_1")
    end = client.get("/api/v1/events/cursor", headers=service_auth()).json["cursor"]
    assert feed(client, after=end)["data"] == []
    subscribe(session, "acct_2")
    assert {event["account_id"] for event in feed(client, after=end)["data"]} == {"acct_2"}
    assert client.get("/api/v1/events/cursor").status_code == 401


def test_a_cursor_past_the_events_kept_is_answered_gone(client, session):
    subscribe(session, "acct_1")
    cursor = feed(client)["next_cursor"]
    session.execute(text("DELETE FROM events"))  # as the retention job does, 30 days on
    session.commit()
    response = client.get("/api/v1/events", query_string={"after": cursor}, headers=service_auth())
    assert (response.status_code, response.json["error"]) == (410, "cursor_expired")
    assert feed(client)["data"] == []  # from the start, still fine


def test_idle_long_polls_do_not_each_look_at_the_table(app, client, session):
    """Ten polls waiting a second: their process looks for all of them at once."""
    from sqlalchemy import event as sqlalchemy_event

    cursor = feed(client)["next_cursor"]
    looks = []

    def count(conn, cursor_, statement, *args):
        if "FROM events" in statement:
            looks.append(statement)

    sqlalchemy_event.listen(db.engine, "before_cursor_execute", count)
    try:
        polls = [
            threading.Thread(
                target=feed, args=(app.test_client(),), kwargs={"after": cursor, "wait": 1}
            )
            for _ in range(10)
        ]
        for poll in polls:
            poll.start()
        for poll in polls:
            poll.join()
    finally:
        sqlalchemy_event.remove(db.engine, "before_cursor_execute", count)
    # each poll reads twice (before and after its wait); the tail is looked up a few
    # times a second for all of them (SQLite: nothing announces other processes' events)
    assert len(looks) < 10 * 3 + 8, len(looks)
