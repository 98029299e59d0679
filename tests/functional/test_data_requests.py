"""A customer's data on request: the export holds every kind of row about the account and
nothing of another; the erasure leaves no personal value anywhere in the database, keeps
the books, survives a later webhook, and changes nothing the second time."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import String, Text, cast, func, or_, select
from sqlalchemy.types import JSON

from billing_app.extensions import db
from billing_app.models import Account, AuditEntry, Transaction, UsageEvent, UsageSubject
from billing_app.services.plans import catalogue as plan_service
from tests.helpers.catalogue import CATALOGUE, CUSTOMER, one_time_transaction, refund
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.payloads import body_of, envelope
from tests.helpers.rows import make_account, make_active_subscription
from tests.helpers.samples import sample
from tests.helpers.webhooks import deliver

SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
EMAIL, NAME, STREET, CARDHOLDER = "jo@example.com", "Jo Brown-Anderson", "1 Quiet Lane", "Jo B"
PERSONAL = (EMAIL, NAME, STREET, CARDHOLDER, "jo.brown@example.org")
OTHER_EMAIL = "sam@example.net"


def customer_event(email: str, name: str, updated_at: str) -> dict:
    data = copy.deepcopy(sample("webhook-customer.updated.json")["data"])
    data.update(id=CUSTOMER, email=email, name=name, updated_at=updated_at)
    return envelope("customer.updated", data)


def address_event() -> dict:
    data = {
        "id": "add_01hv8gq3318ktkfengj2r75gfx",
        "customer_id": CUSTOMER,
        "first_line": STREET,
        "second_line": None,
        "city": "Leeds",
        "postal_code": "LS1 1AA",
        "region": "West Yorkshire",
        "country_code": "GB",
        "description": "Home",
        "status": "active",
        "custom_data": None,
        "created_at": "2026-01-02T00:00:00Z",
        "updated_at": "2026-01-02T00:00:00Z",
    }
    return envelope("address.created", data)


@pytest.fixture
def held(client, session):
    """acct_1 with all a customer leaves behind: its customer's details (and an older
    email), an address, a purchase paid by card and refunded with a note, usage with a
    subject, a console action naming it, and the events told; acct_2 beside it."""
    plan_service.import_plans(session, copy.deepcopy(CATALOGUE))
    session.commit()
    make_account(session, "acct_1", email=EMAIL, paddle_customer_id=CUSTOMER)
    make_account(session, "acct_2", email=OTHER_EMAIL, paddle_customer_id="ctm_01other")
    deliver(client, body_of(customer_event("jo.brown@example.org", NAME, "2026-01-01T00:00:00Z")))
    deliver(client, body_of(customer_event(EMAIL, NAME, "2026-01-03T00:00:00Z")))
    deliver(client, body_of(address_event()))
    paid = one_time_transaction(1)
    paid["payments"][0]["method_details"]["card"]["cardholder_name"] = CARDHOLDER
    paid["custom_data"] = {"app_account_id": "acct_1", "referrer_email": EMAIL}
    deliver(client, body_of(envelope("transaction.completed", paid)))
    deliver(client, body_of(refund(1, total="4900", reason=f"{NAME} asked by mail")))
    now = datetime.now(UTC)
    period = {
        "account_id": "acct_1",
        "meter": "active_users",
        "period_start": now,
        "period_end": now,
    }
    session.add(UsageSubject(**period, subject=EMAIL))
    session.add(
        UsageEvent(**period, idempotency_key="u1", quantity=1, occurred_at=now, subject=EMAIL)
    )
    session.add(
        AuditEntry(
            actor="ops",
            action="search",
            target=EMAIL,
            account_id="acct_1",
            result="ok",
            detail=f"found {NAME} <{EMAIL}>",
        )
    )
    session.commit()


def test_the_export_holds_every_kind_and_nothing_of_another_account(client, held):
    answer = client.get("/api/v1/accounts/acct_1/export", headers=SERVICE)
    assert answer.status_code == 200
    document = json.loads(answer.data)
    assert (document["format"], document["version"], document["account_id"]) == (
        "billing-account-export",
        1,
        "acct_1",
    )
    assert document["account"]["email"] == EMAIL
    assert [t["paddle_transaction_id"] for t in document["transactions"]] == [f"txn_{1:026d}"]
    assert document["adjustments"][0]["reason"] == f"{NAME} asked by mail"
    assert [p["product_slug"] for p in document["purchases"]] == ["reports"]
    assert document["usage_events"][0]["subject"] == EMAIL
    assert document["usage_subjects"][0]["subject"] == EMAIL
    kinds = sorted(event["event_type"] for event in document["webhook_events"])
    assert kinds == [
        "address.created",
        "adjustment.updated",
        "customer.updated",
        "customer.updated",
        "transaction.completed",
    ]
    assert document["webhook_events"][0]["payload"]["data"]["email"]  # as JSON, not text
    assert {"purchase.completed", "refund.approved"} <= {e["type"] for e in document["events"]}
    assert document["audit"][0]["detail"] == f"found {NAME} <{EMAIL}>"
    assert OTHER_EMAIL not in answer.get_data(as_text=True)
    assert "acct_2" not in answer.get_data(as_text=True)


def text_columns():
    """Every column of every table that can hold text: strings, text and JSON."""
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, (String, Text, JSON)) or isinstance(
                getattr(column.type, "impl", None), (String, Text, JSON)
            ):
                yield table, column


def where_found(session, values) -> list[str]:
    """`table.column` of every place any of `values` appears, searched as text."""
    found = []
    for table, column in text_columns():
        as_text = cast(column, Text)
        hit = session.scalar(
            select(func.count())
            .select_from(table)
            .where(or_(*(as_text.contains(v) for v in values)))
        )
        if hit:
            found.append(f"{table.name}.{column.name}")
    return found


def test_erasure_leaves_no_personal_value_anywhere_and_keeps_the_books(client, session, held):
    assert len(list(text_columns())) > 50  # the search covers the whole schema
    assert set(where_found(session, PERSONAL)) >= {
        "accounts.email",
        "webhook_events.payload",
        "adjustments.reason",
        "usage_events.subject",
        "usage_subjects.subject",
        "audit_log.detail",
    }
    totals = session.execute(select(Transaction.paddle_transaction_id, Transaction.total)).all()
    session.rollback()

    preview = client.post("/api/v1/accounts/acct_1/erase", json={"dry_run": True}, headers=SERVICE)
    assert preview.status_code == 200 and preview.json["dry_run"] is True
    assert preview.json["total"] > 0
    assert where_found(session, [EMAIL])  # a dry run changed nothing
    session.rollback()

    erased = client.post(
        "/api/v1/accounts/acct_1/erase", json={"requested_by": "dpo@company"}, headers=SERVICE
    )
    assert erased.status_code == 200, erased.json
    assert erased.json["changed"] == preview.json["changed"]
    assert where_found(session, PERSONAL) == []
    assert (
        session.execute(select(Transaction.paddle_transaction_id, Transaction.total)).all()
        == totals
    )
    assert session.scalar(select(Account.email).where(Account.id == "acct_2")) == OTHER_EMAIL
    distinct = session.scalars(select(UsageSubject.subject)).all()
    assert len(distinct) == 1 and distinct[0].startswith("erased-")
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "erase_account")).one()
    assert (audit.actor, json.loads(audit.detail)) == ("dpo@company", erased.json["changed"])
    session.rollback()

    again = client.post("/api/v1/accounts/acct_1/erase", json={}, headers=SERVICE)
    assert (again.status_code, again.json["total"]) == (200, 0)

    deliver(client, body_of(customer_event(EMAIL, NAME, "2026-02-01T00:00:00Z")))
    assert where_found(session, PERSONAL) == []  # a later webhook brings nothing back
    session.rollback()
    export = client.get("/api/v1/accounts/acct_1/export", headers=SERVICE)
    assert export.status_code == 200 and EMAIL not in export.get_data(as_text=True)


def test_an_account_with_access_or_unknown_is_refused(client, session):
    make_active_subscription(session, "acct_1")
    refused = client.post("/api/v1/accounts/acct_1/erase", json={}, headers=SERVICE)
    assert (refused.status_code, refused.json["error"]) == (409, "account_in_use")
    unknown = client.post("/api/v1/accounts/nobody/erase", json={}, headers=SERVICE)
    assert (unknown.status_code, unknown.json["error"]) == (404, "account_not_found")
    assert client.post("/api/v1/accounts/acct_1/erase", json={}).status_code == 401
    assert client.get("/api/v1/accounts/acct_1/export").status_code == 401


def test_the_command_line_exports_to_a_file_and_erases_after_a_dry_run(app, held, tmp_path):
    runner = app.test_cli_runner()
    output = tmp_path / "acct_1.json"
    exported = runner.invoke(args=["billing", "accounts", "export", "acct_1", "--output", output])
    assert exported.exit_code == 0, exported.output
    assert json.loads(output.read_text())["account"]["email"] == EMAIL

    dry = runner.invoke(args=["billing", "accounts", "erase", "acct_1", "--dry-run"])
    assert dry.exit_code == 0 and "erasure would change" in dry.output
    done = runner.invoke(args=["billing", "accounts", "erase", "acct_1", "--by", "dpo"])
    assert done.exit_code == 0 and "erasure changed" in done.output
    again = runner.invoke(args=["billing", "accounts", "erase", "acct_1"])
    assert "nothing to erase" in again.output
    refused = runner.invoke(args=["billing", "accounts", "erase", "nobody"])
    assert refused.exit_code == 1 and "Error: The service holds nothing" in refused.output
