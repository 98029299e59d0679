"""Revoked everywhere within a second: four gunicorn processes, each with its cache warm,
answer `access: false` once the cancel's webhook is applied."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select, text

from billing_app.models import WebhookEvent
from billing_app.notifications import APPLICATION_NAME
from paddle_client.webhooks import sign
from tests.helpers.config import WEBHOOK_SECRET
from tests.helpers.payloads import body_of, envelope, subscription_data
from tests.helpers.rows import SAMPLE_CUSTOMER, SAMPLE_SUBSCRIPTION, make_active_subscription
from tests.helpers.stack import Stack
from tests.helpers.tokens import auth
from tests.helpers.waiting import eventually

READERS = 12  # keep-alive connections, spread by the kernel over the four processes


def listening_processes(session) -> int:
    """The listeners' connections: one per process."""
    count = session.scalar(
        select(func.count())
        .select_from(text("pg_stat_activity"))
        .where(text("application_name = :name").bindparams(name=APPLICATION_NAME))
    )
    session.commit()
    return count


@pytest.mark.postgres
def test_a_cancel_reaches_every_process_within_a_second(_migrated, session):
    make_active_subscription(session)
    session.commit()
    stack = Stack(_migrated)
    stack.env["RATE_LIMIT_ENABLED"] = "false"  # one account reading as fast as it can
    answers: list[tuple[datetime, datetime, bool]] = []  # asked, answered, access
    failures: list[str] = []
    stop = threading.Event()

    def read() -> None:
        with requests.Session() as http:
            while not stop.is_set():
                started = datetime.now(UTC)
                response = http.get(f"{stack.service}/api/v1/entitlements", headers=auth())
                if response.status_code != 200:
                    failures.append(response.text)
                    return
                answers.append((started, datetime.now(UTC), response.json()["access"]))

    readers = [threading.Thread(target=read) for _ in range(READERS)]
    try:
        stack.start_service(workers=4, threads=2)

        def every_process_listens() -> bool:
            # A new connection each time, taken by whichever process accepts it first; a
            # process starts its listener on its first request.
            requests.get(f"{stack.service}/api/v1/entitlements", headers=auth(), timeout=5)
            return listening_processes(session) >= 4

        assert eventually(every_process_listens, 20), listening_processes(session)
        for reader in readers:
            reader.start()
        # Every reader's process has served (and cached) the account.
        assert eventually(lambda: len(answers) > 20 * READERS, 20)
        canceled = envelope(
            "subscription.canceled",
            subscription_data(
                id=SAMPLE_SUBSCRIPTION, customer_id=SAMPLE_CUSTOMER, status="canceled"
            ),
        )
        body = body_of(canceled)
        sent_at = datetime.now(UTC)
        headers = {"Paddle-Signature": sign(body, WEBHOOK_SECRET)}
        headers["Content-Type"] = "application/json"
        delivered = requests.post(
            f"{stack.service}/webhooks/paddle", data=body, headers=headers, timeout=10
        )
        assert delivered.status_code == 200, delivered.text
        applied_at = None
        deadline = time.monotonic() + 10
        while applied_at is None and time.monotonic() < deadline:
            session.expire_all()
            applied_at = session.scalar(
                select(WebhookEvent.processed_at).where(
                    WebhookEvent.event_id == canceled["event_id"]
                )
            )
            session.commit()
            time.sleep(0.01)
        assert applied_at is not None, stack.log("service")[-3000:]
        a_second_later = applied_at + timedelta(seconds=1.2)
        assert eventually(lambda: len([1 for asked, *_ in answers if asked > a_second_later]) > 100)
    finally:
        stop.set()
        for reader in readers:
            reader.join(10)
        stack.stop()

    assert not failures, failures[:3]
    before = [access for _, answered, access in answers if answered < sent_at]
    assert before and all(before), "the account had access before the cancel"
    late = [started for started, _, access in answers if access and started > applied_at]
    last_true = (max(late) - applied_at).total_seconds() if late else 0.0
    after_a_second = [
        access for started, _, access in answers if started > applied_at + timedelta(seconds=1)
    ]
    assert len(after_a_second) > 100
    assert not any(after_a_second), f"access still granted {last_true:.3f} s after the cancel"
