"""Reconciliation fills the transactions ledger's gaps: the transactions Paddle updated in the
last RECONCILE_TRANSACTION_DAYS that we hold at an older version or not at all (a lost
`transaction.*` webhook) are kept through the webhook handler's own rule, purchases included."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest
import responses
from sqlalchemy import select

from billing_app import jobs
from billing_app.models import Adjustment, Purchase, ReconcileRun, Transaction
from billing_app.services.plans import catalogue as plan_service
from tests.helpers.catalogue import CATALOGUE, CUSTOMER, REPORTS
from tests.helpers.config import PADDLE_BASE
from tests.helpers.paddle_lists import serve_subscription_list
from tests.helpers.payloads import adjustment, body_of, envelope, one_time_checkout, stamp
from tests.helpers.rows import make_account
from tests.helpers.webhooks import deliver


@pytest.fixture
def unpaced(make_app):
    app = make_app(RECONCILE_REQUESTS_PER_MINUTE=0, RECONCILE_TRANSACTION_DAYS=7)
    with app.app_context():
        yield app


def bought(n: int, updated: datetime, **changes) -> dict:
    data = one_time_checkout(
        f"txn_{n:026d}", REPORTS, CUSTOMER, updated - timedelta(minutes=1), total="4900", **changes
    )
    data["updated_at"] = stamp(updated)
    return data


def serve_transactions(paddle, entities: list[dict]) -> list:
    """Paddle's `GET /transactions`, 30 a page; the queries asked, to be checked."""
    asked = []

    def answer(request):
        asked.append(request.params)
        start = 0
        after = request.params.get("after")
        if after:
            start = next(i for i, e in enumerate(entities) if e["id"] == after) + 1
        page = entities[start : start + 30]
        more = start + 30 < len(entities)
        body = {
            "data": page,
            "meta": {
                "request_id": "req",
                "pagination": {
                    "per_page": 30,
                    "has_more": more,
                    "next": f"{PADDLE_BASE}/transactions?after={page[-1]['id']}" if page else None,
                    "estimated_total": len(entities),
                },
            },
        }
        return 200, {}, json.dumps(body)

    paddle.add_callback(responses.GET, f"{PADDLE_BASE}/transactions", callback=answer)
    return asked


@pytest.fixture
def customer(session):
    plan_service.import_plans(session, copy.deepcopy(CATALOGUE))
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    session.commit()


def stored(session, model):
    session.expire_all()
    rows = session.scalars(select(model).order_by(model.id)).all()
    session.commit()
    return rows


def test_a_lost_checkout_webhook_is_filled_with_its_purchase(unpaced, paddle, session, customer):
    serve_subscription_list(paddle, [])
    asked = serve_transactions(paddle, [bought(1, datetime.now(UTC) - timedelta(days=1))])
    run = jobs.reconcile(unpaced)
    assert (run.status, run.transactions_seen, run.transactions_filled) == ("succeeded", 1, 1)
    [row] = stored(session, Transaction)
    assert (row.paddle_transaction_id, row.account_id, row.status) == (
        f"txn_{1:026d}",
        "acct_1",
        "completed",
    )
    [purchase] = stored(session, Purchase)
    assert (purchase.account_id, purchase.product_slug) == ("acct_1", "reports")
    since = datetime.fromisoformat(asked[0]["updated_at[GTE]"].replace("Z", "+00:00"))
    assert timedelta(days=7) <= datetime.now(UTC) - since < timedelta(days=7, minutes=5)


def test_what_a_webhook_brought_is_left_as_it_is(unpaced, client, paddle, session, customer):
    updated = datetime.now(UTC) - timedelta(hours=2)
    delivered = envelope(
        "transaction.completed", bought(1, updated), occurred_at=updated + timedelta(seconds=1)
    )
    assert deliver(client, body_of(delivered)) == "processed"
    serve_subscription_list(paddle, [])
    serve_transactions(paddle, [bought(1, updated)])
    run = jobs.reconcile(unpaced)
    assert (run.transactions_seen, run.transactions_filled) == (1, 0)
    assert len(stored(session, Purchase)) == 1


def test_a_dry_run_counts_the_gaps_and_writes_nothing(unpaced, paddle, session, customer):
    serve_subscription_list(paddle, [])
    serve_transactions(paddle, [bought(n, datetime.now(UTC) - timedelta(hours=n)) for n in (1, 2)])
    run = jobs.reconcile(unpaced, dry_run=True)
    assert (run.status, run.transactions_seen, run.transactions_filled) == ("succeeded", 2, 2)
    assert stored(session, Transaction) == []


def test_every_page_of_the_window_is_walked(unpaced, paddle, session, customer):
    serve_subscription_list(paddle, [])
    recent = datetime.now(UTC) - timedelta(hours=1)
    asked = serve_transactions(paddle, [bought(n, recent) for n in range(1, 46)])
    run = jobs.reconcile(unpaced)
    assert (run.transactions_seen, run.transactions_filled) == (45, 45)
    assert len(asked) == 2  # 30 a page
    assert len(stored(session, Purchase)) == 45


def test_no_window_no_walk(make_app, paddle, session, customer):
    app = make_app(RECONCILE_REQUESTS_PER_MINUTE=0, RECONCILE_TRANSACTION_DAYS=0)
    serve_subscription_list(paddle, [])  # and no GET /transactions: responses refuses one
    run = jobs.reconcile(app)
    assert (run.status, run.transactions_seen) == ("succeeded", 0)
    assert stored(session, ReconcileRun)[0].status == "succeeded"


def test_a_lost_refund_is_filled_and_takes_its_purchase_back(unpaced, paddle, session, customer):
    """The purchase's webhook arrived; the full refund's `adjustment.updated` was lost. The
    walk asks for the transactions' adjustments and keeps the refund by the webhooks' rule."""
    paid = bought(1, datetime.now(UTC) - timedelta(days=1))
    refund = adjustment(
        "adj_01refund", paid["id"], CUSTOMER, total="4900", action="refund", status="approved"
    )
    refund["updated_at"] = stamp(datetime.now(UTC) - timedelta(hours=1))
    walked = {**paid, "adjustments": [refund]}
    serve_subscription_list(paddle, [])
    asked = serve_transactions(paddle, [walked])
    purchase_webhook = body_of(envelope("transaction.completed", paid))
    assert deliver(unpaced.test_client(), purchase_webhook) == "processed"
    [purchase] = stored(session, Purchase)
    assert purchase.revoked_by is None

    run = jobs.reconcile(unpaced)
    assert (run.status, run.adjustments_filled) == ("succeeded", 1)
    assert asked[0]["include"] == "adjustments"
    [kept] = stored(session, Adjustment)
    assert (kept.paddle_adjustment_id, kept.status) == ("adj_01refund", "approved")
    [purchase] = stored(session, Purchase)
    assert purchase.revoked_by == "refund"
    again = jobs.reconcile(unpaced)  # held at that version now: nothing to fill
    assert again.adjustments_filled == 0
