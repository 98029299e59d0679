"""Property: any delivery order, with duplicates, ends where in-order delivery ends."""

import json
from datetime import timedelta

from flask import current_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from billing_app.models import Subscription, Transaction, WebhookEvent
from billing_app.services.webhooks import ledger as webhook_service
from paddle_client.webhooks import parse_notification
from tests.helpers.payloads import T0, checkout_transaction, envelope, stamp, subscription_data
from tests.helpers.webhooks import drain

STATES = {
    "subscription.activated": {"status": "active"},
    "subscription.updated": {"status": "active"},
    "subscription.past_due": {"status": "past_due"},
    "subscription.paused": {"status": "paused", "paused_at": "2026-01-03T00:00:00Z"},
    "subscription.resumed": {"status": "active"},
    "subscription.canceled": {"status": "canceled", "canceled_at": "2026-01-04T00:00:00Z"},
}

step = st.fixed_dictionaries(
    {
        "type": st.sampled_from(sorted(STATES)),
        "quantity": st.integers(min_value=1, max_value=50),
        "addon": st.booleans(),
        "scheduled": st.sampled_from([None, "cancel", "pause"]),
        "gap": st.integers(min_value=0, max_value=3),  # 0: same instant as the previous event
    }
)


def lifecycle_events(steps):
    events, at = [], T0
    for index, spec in enumerate(steps):
        at += timedelta(seconds=spec["gap"])
        data = subscription_data(**STATES[spec["type"]])
        data["items"] = data["items"][: 2 if spec["addon"] else 1]
        data["items"][0]["quantity"] = spec["quantity"]
        data["scheduled_change"] = (
            {
                "action": spec["scheduled"],
                "effective_at": stamp(at + timedelta(days=30)),
                "resume_at": None,
            }
            if spec["scheduled"]
            else None
        )
        notification = envelope(spec["type"], data, occurred_at=at, event=f"evt_{index:026d}")
        events.append(json.dumps(notification).encode())
    return events


TRANSACTION_STATES = {
    "transaction.created": {"status": "draft", "invoice_number": None, "billed_at": None},
    "transaction.ready": {"status": "ready", "invoice_number": None, "billed_at": None},
    "transaction.billed": {"status": "billed", "invoice_number": None},
    "transaction.paid": {"status": "paid", "invoice_number": None},
    "transaction.completed": {"status": "completed"},
    "transaction.updated": {"status": "completed", "invoice_number": "325-10567"},
}

transaction_step = st.fixed_dictionaries(
    {
        "type": st.sampled_from(sorted(TRANSACTION_STATES)),
        "total": st.integers(min_value=0, max_value=10**9),
        "gap": st.integers(min_value=0, max_value=3),
    }
)


def transaction_events(steps):
    events, at = [], T0
    for index, spec in enumerate(steps):
        at += timedelta(seconds=spec["gap"])
        data = checkout_transaction(**TRANSACTION_STATES[spec["type"]], updated_at=stamp(at))
        data["details"]["totals"]["total"] = str(spec["total"])
        notification = envelope(spec["type"], data, occurred_at=at, event=f"evt_{index:026d}")
        events.append(json.dumps(notification).encode())
    return events


def deliver(session, bodies, model=Subscription):
    """As a delivery and the worker do it: keep each notification, then apply what is due;
    the one row of `model` it ends with."""
    for body in bodies:
        webhook_service.accept(session, parse_notification(body), body)
        session.commit()
        drain(current_app._get_current_object())
    session.expire_all()
    row = session.scalars(select(model)).one()
    state = {
        column.name: getattr(row, column.key)
        for column in model.__table__.columns
        if column.name not in {"id", "created_at", "updated_at"}
    }
    if model is Subscription:
        state["items"] = sorted((item.price_id, item.quantity) for item in row.items)
    return state


def reset(session):
    session.rollback()
    for model in (Subscription, Transaction, WebhookEvent):
        session.execute(model.__table__.delete())
    session.commit()


def delivered_anyhow(bodies, data):
    """`bodies` shuffled, with some delivered again."""
    shuffled = data.draw(st.permutations(bodies))
    duplicates = data.draw(st.lists(st.sampled_from(bodies), max_size=4))
    positions = data.draw(
        st.lists(
            st.integers(min_value=0, max_value=len(shuffled)),
            min_size=len(duplicates),
            max_size=len(duplicates),
        )
    )
    delivery = list(shuffled)
    for body, position in zip(duplicates, positions, strict=True):
        delivery.insert(position, body)
    return delivery


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    steps=st.lists(step, min_size=1, max_size=6),
    data=st.data(),
)
def test_delivery_order_and_duplicates_do_not_change_the_outcome(session, steps, data):
    bodies = lifecycle_events(steps)
    reset(session)
    in_order = deliver(session, bodies)

    reset(session)
    assert deliver(session, delivered_anyhow(bodies, data)) == in_order


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    steps=st.lists(transaction_step, min_size=1, max_size=6),
    data=st.data(),
)
def test_a_transactions_events_in_any_order_keep_the_same_ledger_row(session, steps, data):
    bodies = transaction_events(steps)
    reset(session)
    in_order = deliver(session, bodies, Transaction)
    newest = steps[-1]  # the last event is the newest: its time, or at the same time its id
    assert in_order["status"] == TRANSACTION_STATES[newest["type"]]["status"]
    assert in_order["total"] == newest["total"]

    reset(session)
    assert deliver(session, delivered_anyhow(bodies, data), Transaction) == in_order
