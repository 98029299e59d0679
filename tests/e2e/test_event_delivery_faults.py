"""Event delivery under faults, with `billing worker` processes on PostgreSQL: a worker
killed with -9 mid-batch loses nothing (another takes its deliveries once their claims run
out; a repeat carries the same webhook-id, as the spec's at-least-once allows), and each
account's events arrive in order."""

from __future__ import annotations

import os
import signal
from collections import defaultdict

import pytest
from sqlalchemy import create_engine, func, select

from billing_app.models import EventDelivery, EventEndpoint, OutboundEvent, Plan
from billing_app.services.events.endpoints import ENVIRONMENT_ENDPOINT
from billing_app.services.events.signing import new_secret
from tests.helpers.receiver import Receiver
from tests.helpers.rows import make_account, make_plan, make_subscription
from tests.helpers.stack import Stack
from tests.helpers.waiting import eventually

ACCOUNTS = 150  # three events each


def count(database_url: str, statement) -> int:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        found = connection.execute(statement).scalar()
    engine.dispose()
    return found


@pytest.mark.postgres
def test_a_worker_killed_mid_batch_loses_nothing_and_keeps_each_accounts_order(_migrated, session):
    with Receiver() as receiver:
        receiver.delay = 0.02  # slow enough that the kill lands mid-batch
        stack = Stack(_migrated)
        stack.env.update(
            EVENTS_ENDPOINT_URL=receiver.url,
            EVENTS_ENDPOINT_SECRET=new_secret(),
            EVENTS_ALLOW_PRIVATE_URLS="true",
            WEBHOOK_CLAIM_SECONDS="3",
        )
        try:
            stack.start_webhook_workers(1)
            endpoint_made = select(func.count()).where(EventEndpoint.id == ENVIRONMENT_ENDPOINT)
            assert eventually(lambda: count(_migrated, endpoint_made) == 1, 30)
            plan = session.scalars(select(Plan)).first() or make_plan(session)
            for n in range(ACCOUNTS):
                make_account(session, f"acct_k{n:03d}")
                make_subscription(
                    session, account_id=f"acct_k{n:03d}", status="active", plan_id=plan.id
                )
            assert eventually(lambda: len(receiver.received) >= 60, 30)
            os.kill(stack.processes[0].pid, signal.SIGKILL)
            stack.processes[0].wait(5)
            killed_at = len(receiver.received)
            stack.start_webhook_workers(1)  # a new one takes over, once the claims run out
            undelivered = select(func.count()).where(EventDelivery.status != "delivered")
            assert eventually(lambda: count(_migrated, undelivered) == 0, 120), stack.log(
                "worker-0"
            )
        finally:
            stack.stop()
    written = count(_migrated, select(func.count()).select_from(OutboundEvent))
    assert written == 3 * ACCOUNTS
    assert killed_at < written  # it was killed with work left to do
    ids = [received.headers["webhook-id"] for received in receiver.received]
    assert len(set(ids)) == written  # every event arrived
    first_seen: dict[str, list[int]] = defaultdict(list)
    seen = set()
    for event in receiver.events():
        if event["id"] not in seen:  # a repeat is the same message (at least once)
            seen.add(event["id"])
            first_seen[event["account_id"]].append(event["sequence"])
    assert all(order == [1, 2, 3] for order in first_seen.values()), first_seen
