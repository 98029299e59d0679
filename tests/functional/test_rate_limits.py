"""Rate limits: per account on user endpoints, per IP on public ones, a shared budget for
user requests' calls to Paddle; 429 (or 503 paddle_busy) in our JSON with Retry-After."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import responses

from tests.helpers.config import JWT_SECRET, SERVICE_TOKEN
from tests.helpers.rows import SAMPLE_SUBSCRIPTION, make_active_subscription
from tests.helpers.samples import sample
from tests.helpers.tokens import auth, user_token

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def test_actions_share_one_budget_per_account(make_app):
    client = make_app(RATE_LIMIT_ACTIONS="3/minute").test_client()
    paths = ["pause", "cancel", "resume"]
    answers = [
        client.post(f"/api/v1/subscription/{path}", json={}, headers=auth("acct_busy"))
        for path in paths
    ]
    assert [answer.status_code for answer in answers] == [404, 404, 404]
    refused = client.post("/api/v1/checkout", json={"plan": "starter"}, headers=auth("acct_busy"))
    assert refused.status_code == 429
    assert refused.json["error"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) >= 1
    # Someone else's budget is untouched.
    other = client.post("/api/v1/subscription/pause", json={}, headers=auth("acct_calm"))
    assert other.status_code == 404


def test_reads_have_their_own_budget_and_service_reads_none(make_app, caplog):
    client = make_app(RATE_LIMIT_READS="2/minute").test_client()
    statuses = [
        client.get("/api/v1/entitlements", headers=auth("acct_1")).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    refused = client.get("/api/v1/entitlements", headers=auth("acct_1"))
    assert refused.json["error"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    # Entitlement reads count in their own in-process bucket: other reads keep theirs.
    assert client.get("/api/v1/subscription", headers=auth("acct_1")).status_code == 200
    service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    for _ in range(5):
        assert (
            client.get("/api/v1/accounts/acct_1/entitlements", headers=service).status_code == 200
        )
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


def test_public_reads_are_limited_per_address(make_app):
    client = make_app(RATE_LIMIT_PUBLIC="2/minute").test_client()
    statuses = [client.get("/api/v1/plans").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert client.get("/health").status_code == 200  # probes are never limited


def test_webhooks_are_not_limited(make_app):
    from tests.helpers.payloads import body_of, envelope, subscription_data
    from tests.helpers.webhooks import post_webhook

    client = make_app(RATE_LIMIT_PUBLIC="1/minute", RATE_LIMIT_ACTIONS="1/minute").test_client()
    for n in range(5):
        body = body_of(envelope("subscription.updated", subscription_data(id=f"sub_rl{n}")))
        assert post_webhook(client, body).status_code == 200


def test_user_requests_share_a_budget_of_calls_to_paddle(make_app, session):
    make_active_subscription(session)
    client = make_app(PADDLE_USER_REQUESTS_PER_MINUTE=2).test_client()
    with responses.RequestsMock() as paddle:
        paddle.patch(
            f"https://paddle.test/subscriptions/{SAMPLE_SUBSCRIPTION}/preview",
            json=sample("api-subscription-preview-update.json"),
        )
        answers = [
            client.post("/api/v1/subscription/change/preview", json={"quantity": 3}, headers=auth())
            for _ in range(3)
        ]
        sent = len(paddle.calls)
    assert [answer.status_code for answer in answers] == [200, 200, 503]
    assert answers[2].json["error"] == "paddle_busy"
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert sent == 2  # the third never reached Paddle


@pytest.fixture
def service_on_redis(_migrated):
    from tests.helpers.stack import free_port, wait_until_up

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _migrated,
        "AUTH_JWT_SECRET": JWT_SECRET,
        "RATE_LIMIT_STORAGE_URL": REDIS_URL,
        "RATE_LIMIT_READS": "4/minute",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def test_two_workers_share_one_budget_in_redis(service_on_redis):
    """The shared limiter's reads (entitlement reads count in each process's own bucket
    instead: see `billing_app.token_buckets`)."""
    account = f"acct_{uuid.uuid4().hex[:12]}"  # a fresh key in a Redis other runs share
    token = user_token(account)
    statuses = []
    for _ in range(10):  # a new connection each time, so both workers answer
        answer = requests.get(
            f"{service_on_redis}/api/v1/subscription",
            headers={"Authorization": f"Bearer {token}", "Connection": "close"},
            timeout=10,
        )
        statuses.append(answer.status_code)
    assert statuses == [200] * 4 + [429] * 6


def test_every_endpoint_is_limited_unless_exempt_with_a_reason(make_app):
    """Each endpoint of a blueprint that `EXEMPT` does not name answers with the limiter's
    headers: a user endpoint added later cannot be left unlimited by forgetting a list."""
    from billing_app.rate_limits import EXEMPT, SERVICE_ENDPOINTS

    app = make_app()
    client = app.test_client()
    unlimited = []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rpartition(".")[0] or rule.endpoint
        if blueprint in EXEMPT or "account_id" in rule.arguments:  # service reads: never
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", "x1").replace(f"<path:{argument}>", "x1")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if rule.endpoint in SERVICE_ENDPOINTS:
                continue  # the services' batches: never limited
            answer = client.open(path, method=method, json={}, headers=auth("acct_limits"))
            if "X-RateLimit-Limit" not in answer.headers:
                unlimited.append(f"{method} {rule.rule} ({answer.status_code})")
    assert not unlimited, unlimited
    assert all(reason for reason in EXEMPT.values())


def test_the_limiters_headers_go_only_where_they_mean_something(make_app):
    client = make_app().test_client()
    ok = client.get("/api/v1/entitlements", headers=auth("acct_1"))
    assert ok.status_code == 200 and "X-RateLimit-Limit" in ok.headers
    assert "Retry-After" not in ok.headers
    invalid = client.post("/api/v1/checkout", json={}, headers=auth("acct_1"))
    assert invalid.status_code == 422 and "X-RateLimit-Limit" in invalid.headers
    assert "Retry-After" not in invalid.headers
    refused = client.get("/api/v1/entitlements")
    assert refused.status_code == 401
    assert not [name for name, _ in refused.headers if name.startswith(("X-RateLimit", "Retry"))]
