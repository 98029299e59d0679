"""The production layout: web processes that only accept deliveries, and `billing worker`
processes (two here) that apply them, on PostgreSQL."""

from __future__ import annotations

import copy
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from sqlalchemy import create_engine, text

from paddle_client.webhooks import sign
from tests.helpers.config import WEBHOOK_SECRET
from tests.helpers.payloads import T0
from tests.helpers.samples import sample
from tests.helpers.stack import Stack

SUBSCRIPTIONS, VERSIONS = 1000, 5


def notification(template: dict, subscription: int, version: int) -> bytes:
    body = copy.deepcopy(template)
    body["event_id"] = f"evt_w{subscription:05d}v{version}"
    body["notification_id"] = f"ntf_w{subscription:05d}v{version}"
    body["occurred_at"] = (T0 + timedelta(seconds=version)).isoformat().replace("+00:00", "Z")
    body["data"]["id"] = f"sub_w{subscription:05d}"
    body["data"]["items"][0]["quantity"] = version + 1
    return json.dumps(body).encode()


def ledger_facts(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    queries = {
        "events": "SELECT count(*) FROM webhook_events",
        "deliveries": "SELECT coalesce(sum(deliveries), 0) FROM webhook_events",
        "unsettled": "SELECT count(*) FROM webhook_events WHERE status NOT IN"
        " ('processed', 'stale')",
        "applied_twice": "SELECT count(*) FROM webhook_events WHERE attempts <> 1",
        "subscriptions": "SELECT count(*) FROM subscriptions",
        "not_newest": "SELECT count(*) FROM subscriptions WHERE quantity <> :versions",
        "claimed": "SELECT count(*) FROM webhook_events WHERE claimed_by IS NOT NULL",
    }
    with engine.connect() as connection:
        facts = {
            name: connection.execute(text(sql), {"versions": VERSIONS}).scalar()
            for name, sql in queries.items()
        }
    engine.dispose()
    return facts


@pytest.mark.postgres
def test_two_workers_apply_5000_shuffled_events_with_duplicates_each_once(_migrated):
    template = sample("webhook-subscription.updated.json")
    bodies = [notification(template, n, v) for n in range(SUBSCRIPTIONS) for v in range(VERSIONS)]
    random.seed(15)
    deliveries = bodies + random.sample(bodies, 1000)  # a fifth delivered twice
    random.shuffle(deliveries)

    stack = Stack(_migrated)
    try:
        stack.start_webhook_workers(2)
        stack.start_service(workers=2, threads=4)
        with requests.Session() as http, ThreadPoolExecutor(16) as pool:

            def deliver(body: bytes) -> str:
                headers = {"Paddle-Signature": sign(body, WEBHOOK_SECRET)}
                headers["Content-Type"] = "application/json"
                answer = http.post(f"{stack.service}/webhooks/paddle", data=body, headers=headers)
                assert answer.status_code == 200, answer.text
                return answer.json()["status"]

            statuses = list(pool.map(deliver, deliveries))
        assert statuses.count("accepted") == len(bodies)
        assert statuses.count("duplicate") == 1000

        deadline = time.monotonic() + 180
        while (facts := ledger_facts(_migrated))["unsettled"] and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stack.stop()
    assert facts == {
        "events": len(bodies),
        "deliveries": len(deliveries),
        "unsettled": 0,
        "applied_twice": 0,
        "subscriptions": SUBSCRIPTIONS,
        "not_newest": 0,
        "claimed": 0,  # every claim was settled and let go
    }, [stack.log(f"worker-{n}")[-2000:] for n in range(2)]
    for n in range(2):
        assert "applied" in stack.log(f"worker-{n}"), f"worker-{n} applied nothing"
