"""Events of money: purchases completed, taken back and given back, refunds, chargebacks,
and payments failing and recovering, each told once."""

from __future__ import annotations

import copy

import pytest

from billing_app.services.plans import catalogue as plan_service
from tests.helpers.catalogue import CATALOGUE, CUSTOMER, one_time_transaction, refund
from tests.helpers.events import entitlement_changes, events_of
from tests.helpers.payloads import body_of, envelope
from tests.helpers.rows import make_account
from tests.helpers.samples import sample
from tests.helpers.webhooks import deliver, post_webhook


@pytest.fixture
def buyer(session):
    plan_service.import_plans(session, copy.deepcopy(CATALOGUE))
    session.commit()
    make_account(session, "acct_1", paddle_customer_id=CUSTOMER)


def bought(client):
    completed = body_of(envelope("transaction.completed", one_time_transaction(1)))
    deliver(client, completed)
    return completed


def test_a_purchase_is_told_with_what_it_grants(client, app, buyer):
    completed = bought(client)
    assert events_of(app, "acct_1", types=True) == ["purchase.completed", "entitlements.changed"]
    purchase = events_of(app, "acct_1")[0]["data"]["purchase"]
    assert (purchase["product"], purchase["total"], purchase["revoked_at"]) == (
        "reports",
        "4900",
        None,
    )
    (change,) = entitlement_changes(app, "acct_1")
    assert change["after"]["grants"][0]["product"] == "reports"
    assert "reports" in change["after"]["features"]
    post_webhook(client, completed)  # Paddle's retry of the same event: nothing new
    assert len(events_of(app, "acct_1")) == 2


def test_a_full_refund_is_approved_then_takes_the_purchase_back(client, app, buyer):
    bought(client)
    deliver(client, body_of(refund(1, total="1000", status="pending_approval")))
    assert len(events_of(app, "acct_1")) == 2  # not approved yet: nothing to tell
    approved = body_of(refund(1, total="4900"))
    deliver(client, approved)
    post_webhook(client, approved)  # Paddle's retry: told once
    types = events_of(app, "acct_1", types=True)
    assert types[2:] == ["purchase.revoked", "refund.approved", "entitlements.changed"]
    refunded = events_of(app, "acct_1")[3]["data"]["refund"]
    assert (refunded["total"], refunded["status"]) == ("4900", "approved")
    assert entitlement_changes(app, "acct_1")[-1]["after"]["grants"] == []


def test_a_chargeback_and_its_reversal(client, app, buyer):
    bought(client)
    chargeback = body_of(refund(1, total="4900", action="chargeback"))
    reversal = body_of(refund(2, total="4900", action="chargeback_reverse"))
    for body in (chargeback, reversal, chargeback, reversal):  # each delivered twice
        post_webhook(client, body)
    types = events_of(app, "acct_1", types=True)
    assert types[2:] == [
        "purchase.revoked",
        "chargeback.created",
        "entitlements.changed",
        "purchase.restored",
        "entitlements.changed",
    ]


def failed_payment(**changes):
    data = copy.deepcopy(sample("webhook-transaction.payment_failed.json")["data"])
    data.update(customer_id=CUSTOMER, **changes)
    return data


def test_a_failed_payment_then_its_recovery(client, app, buyer):
    failed = body_of(envelope("transaction.payment_failed", failed_payment()))
    assert deliver(client, failed) == "processed"
    post_webhook(client, failed)  # delivered twice: told once
    types = events_of(app, "acct_1", types=True)
    assert types == ["payment.failed"]
    payment = events_of(app, "acct_1")[0]["data"]["payment"]
    assert (payment["error_code"], payment["total"], payment["currency"]) == (
        "declined",
        "65215",
        "USD",
    )
    paid = copy.deepcopy(sample("webhook-transaction.completed.json")["data"])
    paid.update(
        id=payment["paddle_transaction_id"], customer_id=CUSTOMER, origin="subscription_recurring"
    )
    deliver(client, body_of(envelope("transaction.completed", paid)))
    deliver(client, body_of(envelope("transaction.paid", {**paid, "status": "paid"})))
    assert events_of(app, "acct_1", types=True) == ["payment.failed", "payment.recovered"]


def test_a_payment_of_nobody_we_know_tells_no_one(client, app, session):
    deliver(client, body_of(envelope("transaction.payment_failed", failed_payment())))
    assert events_of(app) == []
