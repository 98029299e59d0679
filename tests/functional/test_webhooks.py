"""POST /webhooks/paddle: verification, the ledger, ordering, linking and failure."""

import json
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select

from billing_app.extensions import db
from billing_app.models import Account, Subscription, Transaction, WebhookEvent
from paddle_client.webhooks import sign
from tests.helpers.config import WEBHOOK_SECRET
from tests.helpers.payloads import body_of, checkout_transaction, envelope, subscription_data
from tests.helpers.rows import make_account, make_plan, make_subscription
from tests.helpers.samples import PAYLOADS, sample, sample_bytes
from tests.helpers.webhooks import deliver, post_webhook

PADDLE_SUB = "sub_01hv8x29kz0t586xy6zn1a62ny"


def ts(value):
    return datetime.fromisoformat(value)


def ledger(session):
    session.expire_all()
    return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def only_subscription(session):
    session.expire_all()
    return session.scalars(select(Subscription)).one()


# Verification


def test_an_unsigned_delivery_is_refused_and_nothing_is_stored(client, session):
    response = client.post(
        "/webhooks/paddle", data=sample_bytes("webhook-subscription.created.json")
    )
    assert response.status_code == 401
    assert response.json["error"] == "invalid_signature"
    assert ledger(session) == []


def test_a_wrong_secret_is_refused(client, session):
    response = post_webhook(client, sample_bytes("webhook-subscription.created.json"), secret="x")
    assert response.status_code == 401
    assert ledger(session) == []


def test_an_expired_signature_is_refused(client, session):
    body = sample_bytes("webhook-subscription.created.json")
    response = post_webhook(client, body, timestamp=int(time.time()) - 301)
    assert response.status_code == 401
    assert "tolerance" in response.json["message"]
    assert ledger(session) == []


def test_a_rotated_secret_is_accepted(make_app, session):
    client = make_app(PADDLE_WEBHOOK_SECRETS=["pdl_ntfset_new", "pdl_ntfset_old"]).test_client()
    body = sample_bytes("webhook-customer.created.json")
    assert post_webhook(client, body, secret="pdl_ntfset_old").status_code == 200


def test_a_verified_body_that_is_not_a_notification_is_400(client, session):
    response = post_webhook(client, b'{"hello": "world"}')
    assert response.status_code == 400
    assert response.json["error"] == "invalid_notification"
    assert [row.status for row in ledger(session)] == ["rejected"]  # kept for an operator


def test_a_body_over_the_limit_is_refused_before_it_is_read(make_app, session):
    client = make_app(WEBHOOK_MAX_BODY_BYTES=1024).test_client()
    response = post_webhook(client, b"{" + b" " * 2048 + b"}")
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"


def test_without_a_secret_webhooks_answer_503(make_app):
    client = make_app(PADDLE_WEBHOOK_SECRETS=[]).test_client()
    response = post_webhook(client, sample_bytes("webhook-customer.created.json"))
    assert response.status_code == 503
    assert response.json["error"] == "webhooks_not_configured"


# Every sample, through HTTP


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.name)
def test_every_sample_is_recorded_and_acknowledged(client, session, path):
    raw = path.read_bytes()
    response = post_webhook(client, raw)
    assert response.status_code == 200, response.json
    (row,) = ledger(session)
    body = json.loads(raw)
    assert row.event_id == body["event_id"]
    assert row.event_type == body["event_type"]
    assert row.notification_id == body["notification_id"]
    assert row.occurred_at == ts(body["occurred_at"])
    assert row.payload == raw.decode()
    assert row.attempts == 1 and row.error is None
    assert response.json == {"status": "accepted"}  # kept; the worker applied it since
    assert row.status in ("processed", "ignored")
    expected = "processed" if body["event_type"].startswith("subscription.") else None
    if expected:
        assert row.status == expected


SUBSCRIPTION_SAMPLES = sorted(
    p.name
    for p in PAYLOADS
    if p.name.startswith("webhook-subscription.") and ".data." not in p.name
)


@pytest.mark.parametrize("name", SUBSCRIPTION_SAMPLES)
def test_each_subscription_sample_sets_the_row_field_by_field(client, session, name):
    make_plan(session)
    body = sample(name)
    data = body["data"]
    assert deliver(client, sample_bytes(name)) == "processed"

    row = only_subscription(session)
    assert row.paddle_subscription_id == data["id"]
    assert row.paddle_customer_id == data["customer_id"]
    assert row.status == data["status"]
    assert row.currency == data["currency_code"]
    assert row.account_id is None  # nobody to link to yet: kept, not dropped
    period = data["current_billing_period"]
    assert row.current_period_start == (ts(period["starts_at"]) if period else None)
    assert row.current_period_end == (ts(period["ends_at"]) if period else None)
    assert row.next_billed_at == (ts(data["next_billed_at"]) if data["next_billed_at"] else None)
    scheduled = data["scheduled_change"] or {}
    assert row.scheduled_action == scheduled.get("action")
    assert row.paused_at == (ts(data["paused_at"]) if data["paused_at"] else None)
    assert row.canceled_at == (ts(data["canceled_at"]) if data["canceled_at"] else None)
    assert row.last_event_at == ts(body["occurred_at"])
    assert row.last_event_id == body["event_id"]
    assert {(i.price_id, i.quantity) for i in row.items} == {
        (i["price"]["id"], i["quantity"]) for i in data["items"]
    }
    first = data["items"][0]
    if first["price"]["id"] == "pri_01gsz8x8sawmvhz1pv30nge1ke":
        assert row.plan.slug == "starter"
        assert (row.price_id, row.quantity) == (first["price"]["id"], first["quantity"])


# Duplicates and order


def test_a_duplicate_is_acknowledged_and_not_applied_again(client, session):
    raw = sample_bytes("webhook-subscription.created.json")
    assert deliver(client, raw) == "processed"
    row = only_subscription(session)
    row.status = "paused"  # a later local change the duplicate must not undo
    session.commit()

    response = post_webhook(client, raw)
    assert response.status_code == 200
    assert response.json == {"status": "duplicate"}
    (event_row,) = ledger(session)
    assert (event_row.deliveries, event_row.attempts) == (2, 1)
    assert only_subscription(session).status == "paused"


def test_an_older_event_is_stale_and_changes_nothing(client, session):
    newer = envelope(
        "subscription.canceled",
        subscription_data(status="canceled", canceled_at="2026-01-02T00:00:00Z"),
        occurred_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    older = envelope(
        "subscription.updated",
        subscription_data(status="active"),
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert deliver(client, body_of(newer)) == "processed"
    assert deliver(client, body_of(older)) == "stale"
    row = only_subscription(session)
    assert row.status == "canceled"
    assert [e.status for e in ledger(session)] == ["processed", "stale"]


def test_equal_timestamps_the_larger_event_id_wins_in_any_order(make_app, session):
    at = datetime(2026, 1, 5, tzinfo=UTC)
    low = envelope(
        "subscription.updated",
        subscription_data(status="past_due"),
        occurred_at=at,
        event="evt_01a",
    )
    high = envelope(
        "subscription.updated", subscription_data(status="active"), occurred_at=at, event="evt_01b"
    )
    for order in ([low, high], [high, low]):
        client = make_app().test_client()
        for notification in order:
            post_webhook(client, body_of(notification))
        assert only_subscription(session).status == "active"
        session.execute(Subscription.__table__.delete())
        session.execute(WebhookEvent.__table__.delete())
        session.commit()


def test_an_update_before_the_create_is_applied_and_the_create_is_stale(client, session):
    created = sample("webhook-subscription.created.json")
    updated = sample("webhook-subscription.updated.json")  # occurred 30 minutes later
    assert deliver(client, body_of(updated)) == "processed"
    assert deliver(client, body_of(created)) == "stale"
    row = only_subscription(session)
    assert row.quantity == 20  # the update's quantity, not the create's 10
    assert len(row.items) == 3


def test_unknown_event_types_are_stored_and_ignored(client, session):
    body = body_of(envelope("payout.paid", {"id": "pay_1"}))
    assert deliver(client, body) == "ignored"
    assert ledger(session)[0].status == "ignored"


# Checkout activation and linking


def test_a_checkout_transaction_activates_the_pending_subscription(client, session):
    make_plan(session)
    make_account(session, "acct_1")
    pending = make_subscription(session, account_id="acct_1")
    data = checkout_transaction(
        custom_data={"app_account_id": "acct_1", "app_subscription_id": str(pending.id)}
    )
    assert deliver(client, body_of(envelope("transaction.completed", data))) == "processed"
    row = only_subscription(session)
    assert row.id == pending.id
    assert row.status == "active"
    assert row.paddle_subscription_id == data["subscription_id"]
    assert row.paddle_customer_id == data["customer_id"]
    assert row.paddle_transaction_id == data["id"]
    assert (row.price_id, row.quantity, row.plan.slug) == (
        "pri_01gsz8x8sawmvhz1pv30nge1ke",
        10,
        "starter",
    )
    assert row.current_period_end == ts(data["billing_period"]["ends_at"])
    assert session.get(Account, "acct_1").paddle_customer_id == data["customer_id"]


@pytest.mark.parametrize(
    "origin",
    [
        "subscription_recurring",
        "subscription_update",
        "subscription_payment_method_change",
        "subscription_charge",
    ],
)
def test_other_transaction_origins_never_change_lifecycle(client, session, origin):
    make_account(session, "acct_1")
    pending = make_subscription(session, account_id="acct_1")
    data = checkout_transaction(
        origin=origin,
        custom_data={"app_account_id": "acct_1", "app_subscription_id": str(pending.id)},
    )
    # kept in the billing history, and nothing else
    assert deliver(client, body_of(envelope("transaction.completed", data))) == "processed"
    assert only_subscription(session).status == "pending"
    kept = session.scalars(select(Transaction)).one()
    assert (kept.paddle_transaction_id, kept.origin) == (data["id"], origin)


def test_a_late_checkout_transaction_does_not_undo_the_lifecycle(client, session):
    make_account(session, "acct_1")
    pending = make_subscription(session, account_id="acct_1")
    custom = {"app_account_id": "acct_1", "app_subscription_id": str(pending.id)}
    canceled = envelope(
        "subscription.canceled",
        subscription_data(
            status="canceled", custom_data=custom, canceled_at="2026-02-01T00:00:00Z"
        ),
        occurred_at=datetime(2026, 2, 1, tzinfo=UTC),
    )
    completed = envelope(
        "transaction.completed",
        checkout_transaction(custom_data=custom),
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    post_webhook(client, body_of(canceled))
    post_webhook(client, body_of(completed))
    row = only_subscription(session)
    assert (row.id, row.status, row.account_id) == (pending.id, "canceled", "acct_1")


def test_subscription_events_find_the_checkout_row_through_custom_data(client, session):
    make_account(session, "acct_1")
    pending = make_subscription(session, account_id="acct_1")
    data = subscription_data(
        custom_data={"app_account_id": "acct_1", "app_subscription_id": str(pending.id)}
    )
    post_webhook(client, body_of(envelope("subscription.created", data)))
    row = only_subscription(session)
    assert (row.id, row.account_id, row.status) == (pending.id, "acct_1", "active")


def test_an_unlinked_subscription_is_linked_when_its_customer_arrives(client, session):
    post_webhook(client, sample_bytes("webhook-subscription.activated.json"))
    assert only_subscription(session).account_id is None

    customer = sample("webhook-customer.created.json")["data"]
    customer["custom_data"] = {"app_account_id": "acct_42"}
    post_webhook(client, body_of(envelope("customer.created", customer)))
    assert only_subscription(session).account_id == "acct_42"
    assert session.get(Account, "acct_42").paddle_customer_id == customer["id"]


def test_a_later_event_links_a_subscription_whose_customer_became_known(client, session):
    """However the customer's account got known (here, a checkout wrote it and the
    customer's own event was lost), the subscription's next event links it."""
    post_webhook(client, sample_bytes("webhook-subscription.activated.json"))
    assert only_subscription(session).account_id is None
    make_account(session, "acct_9", paddle_customer_id="ctm_01hv6y1jedq4p1n0yqn5ba3ky4")
    later = envelope(
        "subscription.updated",
        sample("webhook-subscription.activated.json")["data"],
        occurred_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    post_webhook(client, body_of(later))
    assert only_subscription(session).account_id == "acct_9"


def test_a_subscription_of_a_known_customer_is_linked_to_its_account(client, session):
    make_account(session, "acct_7", paddle_customer_id="ctm_01hv6y1jedq4p1n0yqn5ba3ky4")
    post_webhook(client, sample_bytes("webhook-subscription.activated.json"))
    assert only_subscription(session).account_id == "acct_7"


def test_a_second_live_subscription_for_an_account_is_kept_unlinked(client, session):
    make_account(session, "acct_7", paddle_customer_id="ctm_01hv6y1jedq4p1n0yqn5ba3ky4")
    make_subscription(
        session, account_id="acct_7", status="active", paddle_subscription_id="sub_other"
    )
    post_webhook(client, sample_bytes("webhook-subscription.activated.json"))
    session.expire_all()
    new = session.scalars(
        select(Subscription).where(Subscription.paddle_subscription_id == PADDLE_SUB)
    ).one()
    assert new.account_id is None
    assert new.status == "active"


# Failure and replay


@pytest.fixture
def failing_item_writes(app):
    """Make the database refuse writes to subscription_items, as a dying disk would."""
    state = {"fail": True}

    def refuse(conn, cursor, statement, parameters, context, executemany):
        if state["fail"] and statement.lstrip().upper().startswith(
            "INSERT INTO SUBSCRIPTION_ITEMS"
        ):
            raise RuntimeError("disk I/O error (injected)")

    event.listen(db.engine, "before_cursor_execute", refuse)
    yield state
    event.remove(db.engine, "before_cursor_execute", refuse)


def test_a_failing_handler_changes_nothing_keeps_the_event_and_the_retry_applies_it(
    client, session, failing_item_writes
):
    raw = sample_bytes("webhook-subscription.created.json")
    response = post_webhook(client, raw)
    assert response.json == {"status": "accepted"}  # Paddle's part is done: it was kept
    assert "disk I/O" not in response.get_data(as_text=True)
    session.expire_all()
    assert session.scalars(select(Subscription)).all() == []  # the half-done insert rolled back
    (row,) = ledger(session)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "disk I/O error" in row.error
    assert row.next_attempt_at is not None

    failing_item_writes["fail"] = False
    response = post_webhook(client, raw)  # Paddle's retry makes ours due at once
    assert response.json == {"status": "duplicate"}
    (row,) = ledger(session)
    assert (row.status, row.attempts, row.deliveries, row.error) == ("processed", 2, 2, None)
    assert only_subscription(session).status == "active"


def test_replay_reapplies_failed_events(app, client, session, failing_item_writes):
    post_webhook(client, sample_bytes("webhook-subscription.created.json"))
    failing_item_writes["fail"] = False
    result = app.test_cli_runner().invoke(args=["billing", "webhooks", "replay"])
    assert result.exit_code == 0, result.output
    assert "processed" in result.output
    assert ledger(session)[0].status == "processed"
    assert only_subscription(session).paddle_subscription_id == PADDLE_SUB


def test_replay_exits_non_zero_while_events_still_fail(app, client, session, failing_item_writes):
    post_webhook(client, sample_bytes("webhook-subscription.created.json"))
    result = app.test_cli_runner().invoke(
        args=["billing", "webhooks", "replay", "--status", "failed"]
    )
    assert result.exit_code == 1
    assert ledger(session)[0].attempts == 2


def test_the_log_line_names_the_event_and_not_the_payload(client, caplog):
    caplog.set_level("INFO", logger="billing_app.requests")
    post_webhook(client, sample_bytes("webhook-customer.created.json"))
    (record,) = [r for r in caplog.records if r.name == "billing_app.requests"]  # one line
    line = record.getMessage()
    assert line.startswith("POST /webhooks/paddle 200 ")
    assert "event_id=evt_01hv6y1jtn1fr98zq3cvarxx2e" in line and "outcome=accepted" in line
    assert "jo@example.com" not in line
    assert record.event_type == "customer.created"  # a field of the JSON log too


def test_an_operator_lists_and_links_unlinked_subscriptions(app, client, session):
    post_webhook(client, sample_bytes("webhook-subscription.activated.json"))
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["billing", "subscriptions", "unlinked"])
    assert PADDLE_SUB in listed.output and "1 unlinked" in listed.output

    linked = runner.invoke(args=["billing", "subscriptions", "link", PADDLE_SUB, "acct_ops"])
    assert linked.exit_code == 0, linked.output
    row = only_subscription(session)
    assert row.account_id == "acct_ops"
    assert session.get(Account, "acct_ops").paddle_customer_id == row.paddle_customer_id

    taken = runner.invoke(args=["billing", "subscriptions", "link", PADDLE_SUB, "acct_other"])
    assert taken.exit_code != 0 and "already belongs" in taken.output
    unknown = runner.invoke(args=["billing", "subscriptions", "link", "sub_nope", "acct_ops"])
    assert unknown.exit_code != 0 and "No subscription" in unknown.output


def test_replay_by_event_id_reapplies_only_that_event(app, client, session):
    post_webhook(client, sample_bytes("webhook-subscription.created.json"))
    post_webhook(client, sample_bytes("webhook-customer.created.json"))
    created = sample("webhook-subscription.created.json")["event_id"]
    result = app.test_cli_runner().invoke(
        args=["billing", "webhooks", "replay", "--event-id", created]
    )
    assert result.exit_code == 0, result.output
    assert created in result.output
    assert "Replayed 1 event(s), 0 failed, 0 unknown." in result.output


def test_replaying_an_applied_event_keeps_the_fact_it_was_applied(app, client, session):
    post_webhook(client, sample_bytes("webhook-subscription.created.json"))
    created = sample("webhook-subscription.created.json")["event_id"]
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["billing", "webhooks", "replay", "--event-id", created])
        assert result.exit_code == 0, result.output
    assert "stale (a replay; it stays processed)" in result.output
    session.expire_all()
    event = session.scalars(select(WebhookEvent)).one()
    assert (event.status, event.attempts) == ("processed", 1)
    assert (event.replays, event.last_replay_outcome) == (2, "stale")
    assert event.last_replayed_at is not None


def test_replaying_an_unknown_event_says_so_and_fails(app, session):
    result = app.test_cli_runner().invoke(
        args=["billing", "webhooks", "replay", "--event-id", "evt_nope"]
    )
    assert result.exit_code == 1
    assert "evt_nope: not in the ledger" in result.output
    assert "1 unknown" in result.output


@pytest.mark.parametrize(
    "header",
    ["ts=\u00b2;h1=00", "ts=" + "9" * 400 + ";h1=00", "ts=1700000000;h1=\u00e9"],
)
def test_a_malformed_signature_header_is_a_401_never_a_500(client, header):
    response = client.post(
        "/webhooks/paddle",
        data=b"{}",
        headers={"Paddle-Signature": header, "Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert response.json["error"] == "invalid_signature"


def test_custom_data_naming_an_unknown_account_does_not_link_it(client, session):
    """Anyone running Paddle.js can set a transaction's custom_data, and Paddle copies it
    onto the subscription: naming a fresh account must not hand it a subscription (which
    would also lock that account out of checkout with a 409)."""
    data = subscription_data(custom_data={"app_account_id": "acct_victim"})
    post_webhook(client, body_of(envelope("subscription.created", data)))
    assert only_subscription(session).account_id is None
    assert session.get(Account, "acct_victim") is None


def test_custom_data_naming_an_account_that_pays_as_another_customer_does_not_link(client, session):
    make_account(session, "acct_victim", paddle_customer_id="ctm_victims_own")
    data = subscription_data(custom_data={"app_account_id": "acct_victim"})
    post_webhook(client, body_of(envelope("subscription.created", data)))
    assert only_subscription(session).account_id is None
    assert session.get(Account, "acct_victim").paddle_customer_id == "ctm_victims_own"


def _envelope_with(**fields) -> bytes:
    notification = envelope("subscription.updated", subscription_data())
    notification.update(fields)
    return json.dumps(notification).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_envelope_with(event_id="evt_" + "x" * 80), "event_id"),
        (_envelope_with(notification_id={"an": "object"}), "notification_id"),
        (_envelope_with(event_id="evt_\u0000nul"), "event_id"),
        (_envelope_with(event_type="subscription.\u0000"), "event_type"),
        (_envelope_with(occurred_at="0001-01-01T00:30:00+01:00"), "occurred_at"),
        (_envelope_with(occurred_at="9999-12-31T23:59:59Z"), "occurred_at"),
        (_envelope_with(data=subscription_data(id=["sub_a", "sub_b"])), "data.id"),
        (_envelope_with(data={"status": "active"}), "data.id"),
        (
            json.dumps(envelope("subscription.updated", subscription_data())).encode("utf-16"),
            "UTF-8",
        ),
        (b'{"event_id": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", "nested"),
    ],
    ids=[
        "long-id",
        "object-notification-id",
        "nul-id",
        "nul-type",
        "year-1",
        "year-9999",
        "list-entity-id",
        "no-entity-id",
        "utf-16",
        "deep",
    ],
)
def test_a_verified_body_the_ledger_cannot_apply_is_a_400_and_kept_as_rejected(
    client, session, body, reason
):
    response = post_webhook(client, body)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_notification"
    assert reason in response.json["message"]
    session.expire_all()
    (kept,) = session.scalars(select(WebhookEvent)).all()
    assert kept.status == "rejected"
    assert reason in kept.error
    again = post_webhook(client, body)
    assert again.status_code == 400
    session.expire_all()
    assert session.scalars(select(WebhookEvent)).one().deliveries == 2


def test_an_entity_id_we_cannot_store_is_refused_and_kept_not_a_crash(client, session):
    body = body_of(envelope("customer.created", {"id": "ctm_\u0000", "email": "a@example.com"}))
    response = post_webhook(client, body)
    assert response.status_code == 400, response.json
    session.expire_all()
    kept = session.scalars(select(WebhookEvent)).one()
    assert (kept.status, kept.entity_id) == ("rejected", None)


def post_chunked(client, body: bytes):
    """A signed delivery with no Content-Length, as a chunked body reaches the app."""
    import io

    return client.post(
        "/webhooks/paddle",
        input_stream=io.BytesIO(body),
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn says for chunked
        headers={
            "Transfer-Encoding": "chunked",
            "Paddle-Signature": sign(body, WEBHOOK_SECRET),
            "Content-Type": "application/json",
        },
    )


def test_a_chunked_body_over_the_limit_is_413_not_401(make_app):
    client = make_app(WEBHOOK_MAX_BODY_BYTES=1024).test_client()
    response = post_chunked(client, b"{" + b" " * 4096 + b"}")
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"


def test_a_chunked_body_within_the_limit_is_read_whole(client, session):
    response = post_chunked(client, sample_bytes("webhook-subscription.created.json"))
    assert response.status_code == 200, response.json
