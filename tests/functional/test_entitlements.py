"""Entitlement reads through each process's cache, on SQLite and PostgreSQL: a change made
anywhere is seen at the next read, time-based endings need no event, ETags, and the batch."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, update

from billing_app.extensions import db
from billing_app.models import Plan, Subscription
from billing_app.notifications import listener_of
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.rows import (
    make_account,
    make_active_subscription,
    make_purchase,
    make_subscription,
)
from tests.helpers.tokens import auth
from tests.helpers.waiting import eventually

SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}


class Announcements:
    """On PostgreSQL, waits until the listener has handled every announcement committed so
    far (they arrive in commit order, so a marker sent now comes after them)."""

    def __init__(self, listener) -> None:
        self.listener = listener
        self.seen: list[str] = []
        if listener is not None:
            listener.subscribe("billing_test_marker", self.seen.append)

    def delivered(self) -> None:
        if self.listener is None:
            return  # SQLite: the next read checks the data version itself
        from sqlalchemy import text

        marker = f"m{len(self.seen)}"
        with db.engine.begin() as connection:
            connection.execute(text("SELECT pg_notify('billing_test_marker', :m)"), {"m": marker})
        assert eventually(lambda: marker in self.seen), "the listener never saw the marker"


@pytest.fixture
def announcements(app):
    """The app's change announcements flowing (PostgreSQL: the listener runs, as in a
    served process; SQLite needs nothing)."""
    listener = listener_of(app)
    flowing = Announcements(listener)
    if listener is not None:
        listener.ensure_running()
        assert listener.connected.wait(5), "the listener did not connect"
    yield flowing
    if listener is not None:
        listener.stop()


@pytest.fixture
def cache(app, announcements):
    return app.extensions["billing_entitlements"].cache


@pytest.fixture
def statements(app):
    """The statements the app sends to the database, counted."""
    sent = []

    def count(conn, cursor, statement, *args):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    yield sent
    event.remove(db.engine, "before_cursor_execute", count)


def change_elsewhere(**values) -> None:
    """What another process does: update acct_1's subscription on a connection of its own."""
    with db.engine.begin() as connection:
        connection.execute(
            update(Subscription).where(Subscription.account_id == "acct_1").values(**values)
        )


def access(client, account: str = "acct_1") -> bool:
    response = client.get("/api/v1/entitlements", headers=auth(account))
    assert response.status_code == 200, response.json
    return response.json["access"]


def test_a_second_read_comes_from_the_cache(client, session, cache, statements, announcements):
    make_active_subscription(session)
    session.commit()
    announcements.delivered()  # the setup's own, which would evict what the read keeps
    assert access(client)
    before = len(statements)
    assert access(client)
    assert len(statements) == before  # no round trip
    assert cache.get("acct_1") is not None


def test_a_change_committed_by_another_connection_is_seen_by_the_next_read(client, session, cache):
    make_active_subscription(session)
    session.commit()
    assert access(client)
    change_elsewhere(status="canceled")
    # PostgreSQL: announced when it commits, evicted a moment later; SQLite: at once.
    assert eventually(lambda: not access(client))


def test_a_scheduled_cancellation_ends_access_on_time_while_cached(
    client, session, cache, statements, announcements
):
    soon = datetime.now(UTC) + timedelta(seconds=1)
    make_active_subscription(session, scheduled_action="cancel", scheduled_effective_at=soon)
    session.commit()
    announcements.delivered()
    assert access(client)
    before = len(statements)
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    assert not access(client)  # no event, no database read: the clock passed
    assert len(statements) == before


def test_a_plan_change_reaches_every_cached_account_on_it(app, client, session, cache, tmp_path):
    make_active_subscription(session)
    make_account(session, "acct_2")
    make_subscription(
        session, account_id="acct_2", status="active", plan_id=session.query(Plan).one().id
    )
    session.commit()
    for account in ("acct_1", "acct_2"):
        assert client.get("/api/v1/entitlements", headers=auth(account)).json["features"] == [
            "projects",
            "exports",
        ]
    plans = tmp_path / "plans.yaml"
    plans.write_text(
        "- slug: starter\n  name: Starter\n  price_id: pri_01gsz8x8sawmvhz1pv30nge1ke\n"
        '  amount: "3000"\n  currency: USD\n  interval: month\n'
        "  features: [projects, exports, sso]\n  limits: {projects: 10}\n"
    )
    result = app.test_cli_runner().invoke(args=["billing", "plans", "import", str(plans)])
    assert result.exit_code == 0, result.output

    def everyone_sees_it() -> bool:
        answers = [
            client.get("/api/v1/entitlements", headers=auth(a)).json for a in ("acct_1", "acct_2")
        ]
        return all(a["features"] == ["projects", "exports", "sso"] for a in answers)

    assert eventually(everyone_sees_it)


@pytest.mark.postgres
def test_while_the_listener_is_down_reads_go_to_the_database(
    client, session, cache, statements, announcements
):
    from sqlalchemy import create_engine, text

    listener = listener_of(client.application)
    make_active_subscription(session)
    session.commit()
    assert access(client)
    killer = create_engine(db.engine.url)
    with killer.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": listener.backend_pid})
    killer.dispose()
    assert eventually(lambda: not listener.connected.is_set() or cache.enabled is False)
    change_elsewhere(status="canceled")  # it may or may not be announced: nobody listens
    assert not access(client)  # read from the database, not the cache
    assert listener.connected.wait(5)  # back (it reconnects every second)
    change_elsewhere(status="active")
    announcements.delivered()
    assert access(client)
    before = len(statements)
    assert access(client)
    assert len(statements) == before  # cached again


def test_an_unchanged_answer_is_a_304_for_its_etag(client, session, cache):
    make_active_subscription(session)
    session.commit()
    first = client.get("/api/v1/entitlements", headers=auth())
    etag = first.headers["ETag"]
    again = client.get("/api/v1/entitlements", headers={**auth(), "If-None-Match": etag})
    assert (again.status_code, again.get_data()) == (304, b"")
    change_elsewhere(status="canceled")
    assert eventually(
        lambda: (
            client.get(
                "/api/v1/entitlements", headers={**auth(), "If-None-Match": etag}
            ).status_code
            == 200
        )
    )
    service = client.get("/api/v1/accounts/acct_1/entitlements", headers=SERVICE)
    assert service.headers["ETag"] != etag


def test_the_batch_answers_each_account_once_in_the_order_asked(client, session, cache):
    make_active_subscription(session)
    session.commit()
    asked = {"account_ids": ["acct_nobody", "acct_1", "acct_nobody"]}
    response = client.post("/api/v1/entitlements/batch", json=asked, headers=SERVICE)
    assert response.status_code == 200, response.json
    answers = response.json["entitlements"]
    assert [(a["account_id"], a["access"], a["status"]) for a in answers] == [
        ("acct_nobody", False, "free"),
        ("acct_1", True, "active"),
    ]
    single = client.get("/api/v1/accounts/acct_1/entitlements", headers=SERVICE).json
    assert {k: v for k, v in answers[1].items() if k != "account_id"} == single


def test_the_batch_needs_the_service_token_and_at_most_500_accounts(client):
    too_many = {"account_ids": [f"acct_{n}" for n in range(501)]}
    assert client.post("/api/v1/entitlements/batch", json=too_many).status_code == 401
    assert (
        client.post("/api/v1/entitlements/batch", json=too_many, headers=auth()).status_code == 401
    )
    refused = client.post("/api/v1/entitlements/batch", json=too_many, headers=SERVICE)
    assert (refused.status_code, refused.json["error"]) == (422, "validation_error")
    blank = client.post(
        "/api/v1/entitlements/batch", json={"account_ids": ["\x00"]}, headers=SERVICE
    )
    assert blank.status_code == 422


def test_a_purchase_revoked_elsewhere_leaves_every_cached_answer(
    client, session, cache, announcements
):
    from billing_app.models import Purchase

    make_account(session, "acct_1")
    make_purchase(session, "acct_1", "reports", ["r"])
    assert client.get("/api/v1/entitlements", headers=auth()).json["features"] == ["r"]
    assert len(cache) >= 1  # cached

    with db.engine.begin() as connection:  # a refund applied by another process
        connection.execute(
            update(Purchase).values(revoked_at=datetime.now(UTC), revoked_by="refund")
        )
    announcements.delivered()
    assert client.get("/api/v1/entitlements", headers=auth()).json["features"] == []


def recheck_at(client, account: str = "acct_1") -> datetime | None:
    answer = client.get("/api/v1/entitlements", headers=auth(account)).json["recheck_at"]
    return datetime.fromisoformat(answer) if answer else None


def test_an_answer_says_when_the_clock_may_change_it(client, session):
    now = datetime.now(UTC)
    stops, grant_ends = now + timedelta(days=3), now + timedelta(days=2)
    make_active_subscription(session, scheduled_action="cancel", scheduled_effective_at=stops)
    make_account(session, "acct_2")
    make_subscription(session, account_id="acct_2", status="active")
    session.commit()
    assert recheck_at(client) == stops
    assert recheck_at(client, "acct_2") is None  # nothing by the clock

    make_purchase(session, "acct_1", "reports", ["r"], granted_until=grant_ends)
    assert recheck_at(client) == grant_ends  # the first of the two


def test_a_past_due_answer_is_rechecked_when_its_grace_period_ends(client, session, app):
    started = datetime.now(UTC) - timedelta(days=1)
    make_active_subscription(session, status="past_due", current_period_start=started)
    session.commit()
    grace = timedelta(days=app.config["PAST_DUE_GRACE_DAYS"])
    assert recheck_at(client) == started + grace

    session.execute(update(Subscription).values(current_period_start=started - 2 * grace))
    session.commit()
    assert eventually(lambda: recheck_at(client) is None)  # the grace is over: no access


def test_the_batch_answers_carry_their_recheck_at(client, session):
    stops = datetime.now(UTC) + timedelta(hours=5)
    make_active_subscription(session, scheduled_action="pause", scheduled_effective_at=stops)
    session.commit()
    answers = client.post(
        "/api/v1/entitlements/batch", json={"account_ids": ["acct_1", "acct_9"]}, headers=SERVICE
    ).json["entitlements"]
    assert [
        datetime.fromisoformat(a["recheck_at"]) if a["recheck_at"] else None for a in answers
    ] == [
        stops,
        None,
    ]


def test_a_batch_asked_with_no_cache_reads_the_database(
    client, session, cache, statements, announcements
):
    make_active_subscription(session)
    session.commit()
    announcements.delivered()
    batch = {"account_ids": ["acct_1"]}
    client.post("/api/v1/entitlements/batch", json=batch, headers=SERVICE)
    before = len(statements)
    client.post("/api/v1/entitlements/batch", json=batch, headers=SERVICE)
    assert len(statements) == before  # from the cache
    fresh = client.post(
        "/api/v1/entitlements/batch", json=batch, headers={**SERVICE, "Cache-Control": "no-cache"}
    )
    assert fresh.json["entitlements"][0]["access"] is True
    read = [s for s in statements[before:] if "subscriptions" in s]
    assert read, "no-cache answered from the cache"
