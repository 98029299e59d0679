"""The transactions ledger and billing history: what Paddle's transaction and adjustment
events leave in our tables, what users and services read, and invoice links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import responses
from sqlalchemy import select

from billing_app.models import Adjustment, Transaction
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.payloads import body_of, checkout_transaction, envelope
from tests.helpers.rows import make_account
from tests.helpers.samples import sample
from tests.helpers.tokens import auth
from tests.helpers.webhooks import deliver

CUSTOMER = "ctm_01hv6y1jedq4p1n0yqn5ba3ky4"  # the transaction samples' customer
SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
PADDLE = "https://sandbox-api.paddle.com"


@pytest.fixture
def paddle_app(make_app):
    return make_app(PADDLE_API_KEY="pdl_sdbx_apikey_test", PADDLE_API_BASE_URL=PADDLE)


def transaction(n: int, **changes):
    """A completed transaction of the sample's customer, created `n` days after the first."""
    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n)
    values = {
        "id": f"txn_{n:026d}",
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "origin": "subscription_recurring",
        **changes,
    }
    return checkout_transaction(**values)


def test_a_completed_transaction_is_kept_with_integer_amounts(client, session):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    data = checkout_transaction()
    assert deliver(client, body_of(envelope("transaction.completed", data))) == "processed"

    row = session.scalars(select(Transaction)).one()
    assert (row.account_id, row.status, row.origin) == ("acct_1", "completed", "web")
    assert (row.currency, row.subtotal, row.tax, row.total) == ("USD", 59900, 5315, 65215)
    assert row.invoice_number == "325-10566"
    assert row.paddle_subscription_id == "sub_01hv8x29kz0t586xy6zn1a62ny"
    assert row.completed_at == datetime.fromisoformat(
        data["payments"][0]["captured_at"]
    ).astimezone(UTC)
    assert row.items == [
        {
            "price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke",
            "product_id": "pro_01gsz4t5hdjse780zja8vvr7jg",
            "quantity": 10,
            "recurring": True,
        },
        *row.items[1:],
    ]


def test_money_that_is_not_integer_minor_units_fails_the_event_and_keeps_it(client, session):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    data = checkout_transaction()
    data["details"]["totals"]["total"] = "652.15"
    assert deliver(client, body_of(envelope("transaction.completed", data))) == "failed"
    assert session.scalars(select(Transaction)).all() == []


def test_history_is_the_callers_newest_first_a_page_at_a_time(client, session):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    make_account(session, "acct_2", paddle_customer_id="ctm_01someoneelse0000000000000")
    for n in range(5):
        deliver(client, body_of(envelope("transaction.completed", transaction(n))))
    deliver(client, body_of(envelope("transaction.created", transaction(9, status="draft"))))
    others = transaction(7, customer_id="ctm_01someoneelse0000000000000")
    deliver(client, body_of(envelope("transaction.completed", others)))

    first = client.get("/api/v1/transactions?limit=2", headers=auth("acct_1"))
    assert first.status_code == 200, first.json
    assert [t["id"] for t in first.json["data"]] == [f"txn_{n:026d}" for n in (4, 3)]
    assert first.json["data"][0]["total"] == "65215"  # minor units, a string, as Paddle sends
    cursor = first.json["next_cursor"]
    rest = client.get(f"/api/v1/transactions?limit=2&cursor={cursor}", headers=auth("acct_1"))
    last = client.get(
        f"/api/v1/transactions?limit=2&cursor={rest.json['next_cursor']}", headers=auth("acct_1")
    )
    assert [t["id"] for t in rest.json["data"]] == [f"txn_{n:026d}" for n in (2, 1)]
    assert [t["id"] for t in last.json["data"]] == [f"txn_{0:026d}"]
    assert last.json["next_cursor"] is None  # the draft checkout is not history

    drafts = client.get("/api/v1/transactions?status=draft", headers=auth("acct_1"))
    assert [t["id"] for t in drafts.json["data"]] == [f"txn_{9:026d}"]
    theirs = client.get("/api/v1/accounts/acct_2/transactions", headers=SERVICE)
    assert [t["id"] for t in theirs.json["data"]] == [f"txn_{7:026d}"]
    assert (
        client.get("/api/v1/accounts/acct_2/transactions", headers=auth("acct_1")).status_code
        == 401
    )


@pytest.mark.parametrize(
    "query", ["cursor=not-a-cursor", "status=settled", "limit=0", "limit=101", "colour=red"]
)
def test_a_bad_history_query_is_a_422(client, session, query):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    response = client.get(f"/api/v1/transactions?{query}", headers=auth("acct_1"))
    assert response.status_code == 422, response.json
    assert response.json["error"] == "validation_error"


def test_transactions_of_a_customer_linked_later_join_its_history(client, session):
    make_account(session, "acct_1")
    deliver(client, body_of(envelope("transaction.completed", transaction(1))))
    assert session.scalars(select(Transaction.account_id)).one() is None

    customer = sample("webhook-customer.created.json")["data"]
    customer.update(id=CUSTOMER, custom_data={"app_account_id": "acct_1"})
    assert deliver(client, body_of(envelope("customer.created", customer))) == "processed"
    history = client.get("/api/v1/transactions", headers=auth("acct_1")).json["data"]
    assert [t["id"] for t in history] == [f"txn_{1:026d}"]


def adjustment(**changes):
    data = sample("webhook-adjustment.created.json")["data"]
    data.update(transaction_id=f"txn_{1:026d}", customer_id=CUSTOMER, **changes)
    return data


def test_a_refund_shows_in_the_history_with_its_newest_status(client, session):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    deliver(client, body_of(envelope("transaction.completed", transaction(1))))
    at = datetime(2026, 3, 1, tzinfo=UTC)
    approved = envelope(
        "adjustment.updated", adjustment(status="approved"), occurred_at=at + timedelta(hours=1)
    )
    created = envelope("adjustment.created", adjustment(), occurred_at=at)
    assert deliver(client, body_of(approved)) == "processed"
    assert deliver(client, body_of(created)) == "stale"  # older: changes nothing

    (shown,) = client.get("/api/v1/transactions", headers=auth("acct_1")).json["data"]
    assert shown["adjustments"] == [
        {
            "id": "adj_01hvgf2s84dr6reszzg29zbvcm",
            "action": "refund",
            "type": "partial",
            "status": "approved",
            "reason": "error",
            "currency": "USD",
            "subtotal": "92",
            "tax": "8",
            "total": "100",
            "created_at": "2024-04-15T08:48:20.239695+00:00",
        }
    ]
    assert session.scalars(select(Adjustment.status)).one() == "approved"


def test_a_chargeback_is_logged_for_operators(client, session, caplog):
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    chargeback = adjustment(
        action="chargeback", status="approved", id="adj_01chargeback0000000000000"
    )
    with caplog.at_level("WARNING"):
        assert deliver(client, body_of(envelope("adjustment.created", chargeback))) == "processed"
    assert any("chargeback adj_01chargeback" in record.getMessage() for record in caplog.records)


def test_an_invoice_link_comes_fresh_from_paddle(paddle_app, session, paddle):
    client = paddle_app.test_client()
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    deliver(client, body_of(envelope("transaction.completed", transaction(1))))
    url = "https://invoices.paddle.test/inv_1.pdf?token=abc"
    paddle.get(
        f"{PADDLE}/transactions/txn_{1:026d}/invoice",
        match=[responses.matchers.query_param_matcher({"disposition": "inline"})],
        json={"data": {"url": url}, "meta": {"request_id": "r"}},
    )
    before = datetime.now(UTC)
    response = client.get(
        f"/api/v1/transactions/txn_{1:026d}/invoice?disposition=inline", headers=auth("acct_1")
    )
    assert response.status_code == 200, response.json
    assert response.json["url"] == url
    expires_at = datetime.fromisoformat(response.json["expires_at"])
    assert before + timedelta(minutes=59) < expires_at <= datetime.now(UTC) + timedelta(hours=1)

    paddle.get(
        f"{PADDLE}/transactions/txn_{1:026d}/invoice",
        match=[responses.matchers.query_param_matcher({"disposition": "attachment"})],
        json={"data": {"url": url + "&download"}, "meta": {"request_id": "r"}},
    )
    service = client.get(
        f"/api/v1/accounts/acct_1/transactions/txn_{1:026d}/invoice", headers=SERVICE
    )
    assert service.status_code == 200 and service.json["url"] == url + "&download"
    assert len(paddle.calls) == 2  # asked each time: never kept


def test_no_invoice_for_a_zero_value_or_unfinished_transaction_nor_anothers(
    paddle_app, session, paddle
):
    client = paddle_app.test_client()
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    make_account(session, "acct_2")
    free = transaction(1)
    free["details"]["totals"]["total"] = "0"
    deliver(client, body_of(envelope("transaction.completed", free)))
    deliver(client, body_of(envelope("transaction.billed", transaction(2, status="billed"))))

    for n, status, code in ((1, 409, "invoice_unavailable"), (2, 409, "invoice_unavailable")):
        answer = client.get(f"/api/v1/transactions/txn_{n:026d}/invoice", headers=auth("acct_1"))
        assert (answer.status_code, answer.json["error"]) == (status, code)
    theirs = client.get(f"/api/v1/transactions/txn_{1:026d}/invoice", headers=auth("acct_2"))
    assert (theirs.status_code, theirs.json["error"]) == (404, "transaction_not_found")
    assert not paddle.calls  # we knew without asking


def test_paddle_refusing_an_invoice_is_a_409_not_a_502(paddle_app, session, paddle):
    client = paddle_app.test_client()
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)
    deliver(client, body_of(envelope("transaction.completed", transaction(1))))
    paddle.get(
        f"{PADDLE}/transactions/txn_{1:026d}/invoice",
        status=400,
        json={
            "error": {
                "type": "request_error",
                "code": "transaction_invoice_not_available",
                "detail": "no invoice",
            }
        },
    )
    answer = client.get(f"/api/v1/transactions/txn_{1:026d}/invoice", headers=auth("acct_1"))
    assert (answer.status_code, answer.json["error"]) == (409, "invoice_unavailable")
