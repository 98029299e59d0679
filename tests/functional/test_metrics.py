"""What `/metrics` reports after the service has worked: webhook applies timed, the last
reconciliation by kind and by field, pages walked."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from billing_app.services.reconcile import Reconciler
from paddle_client import Client
from tests.helpers.config import PADDLE_BASE, SERVICE_TOKEN
from tests.helpers.paddle_lists import serve_subscription_list
from tests.helpers.payloads import body_of, envelope, paddle_entity, subscription_data
from tests.helpers.rows import make_subscription
from tests.helpers.webhooks import post_webhook

SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
VERSION = "2026-03-01T00:00:00Z"


def scraped(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", headers=SERVICE)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(figures, name: str, **labels: str) -> float:
    return figures.get((name, frozenset(labels.items())), 0.0)


def test_every_applied_webhook_is_timed_by_event_type(client):
    before = scraped(client)
    for _ in range(3):
        post_webhook(client, body_of(envelope("subscription.updated", subscription_data())))
    after = scraped(client)

    name = "billing_webhook_apply_duration_seconds_count"
    assert (
        value(after, name, event_type="subscription.updated")
        - value(before, name, event_type="subscription.updated")
        == 3
    )
    assert (
        value(
            after, "billing_webhook_apply_duration_seconds_sum", event_type="subscription.updated"
        )
        > 0
    )


def test_the_last_reconciliation_is_reported_by_kind_and_field(client, session, paddle):
    fields = {"paddle_customer_id": "ctm_01hp462x4578nc20acj9g956yy", "quantity": 10}
    fields |= {"price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke", "currency": "USD"}
    make_subscription(session, paddle_subscription_id="sub_a", status="active", **fields)
    make_subscription(session, paddle_subscription_id="sub_b", status="active", **fields)
    session.commit()
    serve_subscription_list(
        paddle,
        [
            paddle_entity("sub_a", status="past_due", updated_at=VERSION),
            paddle_entity("sub_b", status="canceled", updated_at=VERSION),
        ],
    )
    before = scraped(client)
    assert value(before, "billing_reconcile_last_run_finished_timestamp_seconds") == 0

    client_for_paddle = Client("pdl_sdbx_apikey_test", base_url=PADDLE_BASE, sleep=lambda s: None)
    run = Reconciler(session, client_for_paddle).run()
    assert run.status == "succeeded"
    session.commit()  # on SQLite the session's open read would hold the write lock
    after = scraped(client)

    assert value(after, "billing_reconcile_last_run_succeeded") == 1
    assert value(after, "billing_reconcile_last_run_finished_timestamp_seconds") == pytest.approx(
        run.finished_at.timestamp()
    )
    assert value(after, "billing_reconcile_last_run_started_timestamp_seconds") <= value(
        after, "billing_reconcile_last_run_finished_timestamp_seconds"
    )
    assert value(after, "billing_reconcile_last_run_subscriptions", kind="seen") == 2
    assert value(after, "billing_reconcile_last_run_subscriptions", kind="drift_fixed") == 2
    assert value(after, "billing_reconcile_last_run_drifts", field="status") == 2
    assert (
        value(after, "billing_reconcile_pages_total")
        - value(before, "billing_reconcile_pages_total")
        >= 1
    )


def test_paddle_attempts_are_counted_by_outcome_and_retries_apart(client, app, paddle):
    from billing_app.paddle import build_client
    from paddle_client import RetryPolicy

    config = {
        **app.config,
        "PADDLE_API_KEY": "pdl_sdbx_apikey_test",
        "PADDLE_API_BASE_URL": PADDLE_BASE,
    }
    paddle_client = build_client(config, retry=RetryPolicy(base_delay=0.01, max_delay=0.01))
    path = f"{PADDLE_BASE}/subscriptions/sub_01"
    paddle.get(path, status=503, json={"error": {"type": "api_error", "code": "unavailable"}})
    paddle.get(path, json={"data": paddle_entity("sub_01")})
    operation = {"method": "GET", "operation": "/subscriptions/{id}"}
    before = scraped(client)

    paddle_client.subscriptions.get("sub_01")
    after = scraped(client)

    def counted(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert counted("billing_paddle_requests_total", outcome="5xx", **operation) == 1
    assert counted("billing_paddle_requests_total", outcome="2xx", **operation) == 1
    assert counted("billing_paddle_retries_total", **operation) == 1
    assert counted("billing_paddle_request_duration_seconds_count", **operation) == 2
