"""The reconciliation against Paddle's list, faked at the HTTP edge."""

from datetime import UTC, datetime

from sqlalchemy import select

from billing_app.models import ReconcileDrift, ReconcileRun, Subscription, SubscriptionItem
from billing_app.services.reconcile import Reconciler
from paddle_client import Client
from tests.helpers.config import PADDLE_BASE
from tests.helpers.paddle_lists import serve_subscription_list
from tests.helpers.payloads import paddle_entity
from tests.helpers.rows import make_account, make_plan, make_subscription
from tests.helpers.samples import sample

VERSION = "2026-03-01T00:00:00Z"
V = datetime(2026, 3, 1, tzinfo=UTC)


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def reconciler(session, **options):
    sleeps = Sleeps()
    client = Client("pdl_sdbx_apikey_test", base_url=PADDLE_BASE, sleep=sleeps, rand=lambda: 1.0)
    return Reconciler(session, client, **options), sleeps


def local(session, paddle_id, **fields):
    values = {
        "status": "active",
        "paddle_subscription_id": paddle_id,
        "paddle_customer_id": "ctm_01hp462x4578nc20acj9g956yy",
        "quantity": 10,
        "price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke",
        "currency": "USD",
        **fields,
    }
    subscription = make_subscription(session, **values)
    return subscription


def rows(session):
    session.expire_all()
    return {row.paddle_subscription_id: row for row in session.scalars(select(Subscription))}


def drifts(session, run_id):
    return {
        (d.paddle_subscription_id, d.field): (d.old_value, d.new_value)
        for d in session.scalars(select(ReconcileDrift).where(ReconcileDrift.run_id == run_id))
    }


def in_sync_row(session, paddle_id):
    """A local row that already says what `paddle_entity(paddle_id)` says."""
    from billing_app.services.subscriptions.sync import apply_snapshot

    row = local(session, paddle_id)
    apply_snapshot(session, row, paddle_entity(paddle_id, updated_at=VERSION), occurred_at=V)
    session.commit()
    return row


def test_every_kind_of_drift_is_repaired_and_logged(session, paddle):
    make_plan(session)
    make_account(session, "acct_new")
    in_sync_row(session, "sub_a_in_sync")
    local(session, "sub_b_status", status="active")
    local(session, "sub_c_quantity", quantity=3)
    local(session, "sub_e_unlisted", status="active")
    entities = [
        paddle_entity("sub_a_in_sync", updated_at=VERSION),
        paddle_entity("sub_b_status", status="past_due", updated_at=VERSION),
        paddle_entity("sub_c_quantity", updated_at=VERSION),
        paddle_entity(
            "sub_d_missing",
            updated_at=VERSION,
            custom_data={"app_account_id": "acct_new"},
            scheduled_change={
                "action": "cancel",
                "effective_at": "2026-04-01T00:00:00Z",
                "resume_at": None,
            },
        ),
    ]
    serve_subscription_list(paddle, entities)
    paddle.get(
        f"{PADDLE_BASE}/subscriptions/sub_e_unlisted",
        status=404,
        json={"error": {"type": "request_error", "code": "not_found", "detail": "not found"}},
    )
    run = reconciler(session)[0].run()

    assert run.status == "succeeded"
    assert (
        run.seen,
        run.in_sync,
        run.drift_fixed,
        run.missing_locally,
        run.missing_in_paddle,
        run.errors,
    ) == (
        4,
        1,
        2,
        1,
        1,
        0,
    )
    found = rows(session)
    assert found["sub_b_status"].status == "past_due"
    assert found["sub_c_quantity"].quantity == 10
    missing = found["sub_d_missing"]
    assert (missing.account_id, missing.scheduled_action) == ("acct_new", "cancel")
    assert found["sub_e_unlisted"].status == "active"  # reported, never revoked on an absence
    log = drifts(session, run.id)
    assert log[("sub_b_status", "status")] == ("active", "past_due")
    assert log[("sub_c_quantity", "quantity")] == ("3", "10")
    assert log[("sub_d_missing", "subscription")] == (None, "active")
    assert log[("sub_e_unlisted", "missing_in_paddle")] == ("active", None)
    assert not any(key[0] == "sub_a_in_sync" for key in log)


def test_a_row_a_newer_webhook_wrote_is_not_overwritten(session, paddle):
    row = in_sync_row(session, "sub_newer")
    row.status = "canceled"  # what a newer webhook said
    row.paddle_updated_at = datetime(2026, 3, 2, tzinfo=UTC)
    session.commit()
    serve_subscription_list(paddle, [paddle_entity("sub_newer", updated_at=VERSION)])
    run = reconciler(session)[0].run()
    assert (run.in_sync, run.drift_fixed) == (1, 0)
    assert rows(session)["sub_newer"].status == "canceled"


def test_pages_are_walked_one_request_each(session, paddle):
    entities = [paddle_entity(f"sub_{n:05d}", updated_at=VERSION) for n in range(450)]
    calls = serve_subscription_list(paddle, entities)
    run = reconciler(session)[0].run()
    assert run.seen == run.missing_locally == 450
    assert calls["pages"] == 3
    assert len(paddle.calls) == 3  # requests = pages, never one per subscription
    assert len(rows(session)) == 450


def test_a_rate_limit_mid_run_is_waited_out(session, paddle):
    entities = [paddle_entity(f"sub_{n:05d}", updated_at=VERSION) for n in range(250)]
    limited = (
        429,
        {"Retry-After": "7"},
        '{"error": {"code": "too_many_requests", "detail": "slow down"}}',
    )
    serve_subscription_list(paddle, entities, failures={2: [limited]})
    worker, sleeps = reconciler(session)
    run = worker.run()
    assert run.status == "succeeded" and run.seen == 250
    assert 7.0 in sleeps


def test_an_outage_mid_run_fails_cleanly_and_keeps_what_was_done(session, paddle):
    entities = [paddle_entity(f"sub_{n:05d}", updated_at=VERSION) for n in range(250)]
    down = (503, {}, "unavailable")
    serve_subscription_list(paddle, entities, failures={2: [down] * 4})
    run = reconciler(session)[0].run()
    assert run.status == "failed"
    assert "Unavailable" in run.error
    assert run.finished_at is not None
    assert (run.seen, run.missing_locally) == (200, 200)
    assert len(rows(session)) == 200  # the first page's repairs are kept; a rerun finishes


def test_dry_run_reports_and_changes_nothing(session, paddle):
    local(session, "sub_b_status", status="active")
    serve_subscription_list(
        paddle,
        [
            paddle_entity("sub_b_status", status="paused", updated_at=VERSION),
            paddle_entity("sub_new", updated_at=VERSION),
        ],
    )
    run = reconciler(session, dry_run=True)[0].run()
    assert run.dry_run and (run.drift_fixed, run.missing_locally) == (1, 1)
    found = rows(session)
    assert set(found) == {"sub_b_status"}
    assert found["sub_b_status"].status == "active"
    assert drifts(session, run.id)[("sub_b_status", "status")] == ("active", "paused")


def test_one_bad_subscription_is_an_error_not_a_failed_run(session, paddle):
    serve_subscription_list(
        paddle,
        [
            paddle_entity("sub_bad", status="exploded", updated_at=VERSION),
            paddle_entity("sub_ok", updated_at=VERSION),
        ],
    )
    run = reconciler(session)[0].run()
    assert (run.status, run.errors, run.missing_locally) == ("succeeded", 1, 2)
    assert set(rows(session)) == {"sub_ok"}
    assert "UnknownPaddleStatus" in drifts(session, run.id)[("sub_bad", "error")][1]


def test_a_bad_subscription_among_drifted_ones_spoils_only_itself(session, paddle):
    """The page is repaired at once; when one row fails, the rest are repaired one by one
    and the abandoned attempt leaves nothing behind: no counts, no drift lines twice."""
    local(session, "sub_a_status", status="paused")
    local(session, "sub_c_quantity", quantity=3)
    serve_subscription_list(
        paddle,
        [
            paddle_entity("sub_a_status", updated_at=VERSION),
            paddle_entity("sub_b_bad", status="exploded", updated_at=VERSION),
            paddle_entity("sub_c_quantity", updated_at=VERSION),
        ],
    )
    run = reconciler(session)[0].run()
    assert (run.status, run.errors, run.drift_fixed, run.missing_locally) == (
        "succeeded",
        1,
        2,
        1,
    )
    found = rows(session)
    assert (found["sub_a_status"].status, found["sub_c_quantity"].quantity) == ("active", 10)
    lines = session.execute(
        select(ReconcileDrift.paddle_subscription_id, ReconcileDrift.field).where(
            ReconcileDrift.run_id == run.id
        )
    ).all()
    assert sorted(lines) == sorted(set(lines))
    assert ("sub_a_status", "status") in lines and ("sub_b_bad", "error") in lines


def test_an_empty_list_checks_each_live_row_once(session, paddle):
    local(session, "sub_gone", status="active")
    serve_subscription_list(paddle, [])
    lookup = paddle.get(
        f"{PADDLE_BASE}/subscriptions/sub_gone",
        status=404,
        json={"error": {"type": "request_error", "code": "not_found", "detail": "not found"}},
    )
    run = reconciler(session)[0].run()
    assert (run.status, run.missing_in_paddle, lookup.call_count) == ("succeeded", 1, 1)


def test_a_bad_subscription_paddle_did_not_list_is_an_error_too(session, paddle):
    local(session, "sub_unlisted", status="active")
    serve_subscription_list(paddle, [])
    paddle.get(
        f"{PADDLE_BASE}/subscriptions/sub_unlisted",
        json={"data": paddle_entity("sub_unlisted", status="exploded", updated_at=VERSION)},
    )
    run = reconciler(session)[0].run()
    assert (run.status, run.errors) == ("succeeded", 1)
    assert rows(session)["sub_unlisted"].status == "active"
    assert "UnknownPaddleStatus" in drifts(session, run.id)[("sub_unlisted", "error")][1]


def test_items_drift_is_repaired(session, paddle):
    row = in_sync_row(session, "sub_items")
    row.items.append(SubscriptionItem(price_id="pri_extra", quantity=4))
    row.paddle_updated_at = datetime(2026, 2, 1, tzinfo=UTC)
    session.commit()
    serve_subscription_list(paddle, [paddle_entity("sub_items", updated_at=VERSION)])
    run = reconciler(session)[0].run()
    assert run.drift_fixed == 1
    assert {item.price_id for item in rows(session)["sub_items"].items} == {
        item["price"]["id"] for item in sample("api-subscription-get.json")["data"]["items"]
    }


def test_the_run_is_recorded(session, paddle):
    serve_subscription_list(paddle, [])
    run = reconciler(session)[0].run()
    stored = session.get(ReconcileRun, run.id)
    assert stored.status == "succeeded" and stored.finished_at >= stored.started_at


def test_unlinked_subscriptions_are_one_count_not_a_warning_each(session, paddle, caplog):
    entities = [
        paddle_entity(f"sub_orphan{n:03d}", custom_data=None, customer_id=f"ctm_nobody{n}")
        for n in range(12)
    ]
    serve_subscription_list(paddle, entities)
    with caplog.at_level("WARNING"):
        run = reconciler(session)[0].run()
    assert (run.status, run.missing_locally, run.unlinked) == ("succeeded", 12, 12)
    unlinked_lines = [r.getMessage() for r in caplog.records if "unlinked" in r.getMessage()]
    assert len(unlinked_lines) == 1
    assert "12 subscription(s)" in unlinked_lines[0]
    assert "billing subscriptions unlinked" in unlinked_lines[0]
