import time

import pytest
from openapi_spec_validator import validate


def test_health_answers_ok(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_ready_checks_the_database_and_tells_the_webhook_backlog(client, session):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "webhook_backlog": 0,
        "oldest_unapplied_seconds": None,
        "scheduler_alive": False,
        "scheduler_seen_at": None,
        "missing_settings": [],
    }

    from datetime import UTC, datetime, timedelta

    from billing_app.models import WebhookEvent

    received = datetime.now(UTC) - timedelta(minutes=3)
    session.add(
        WebhookEvent(
            event_id="evt_waiting",
            event_type="subscription.updated",
            occurred_at=received,
            payload="{}",
            status="failed",
            received_at=received,
        )
    )
    session.commit()
    body = client.get("/health/ready").json
    assert body["webhook_backlog"] == 1
    assert 170 < body["oldest_unapplied_seconds"] < 400


def test_ready_answers_503_when_the_database_is_down(make_app, tmp_path):
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    client = make_app(DATABASE_URL=unreachable).test_client()
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json["error"] == "database_unavailable"
    assert "nobody" not in response.get_data(as_text=True)


def test_unknown_routes_get_the_json_error_shape(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    assert response.json["message"]


def test_wrong_methods_get_the_json_error_shape(client):
    response = client.delete("/health")
    assert response.status_code == 405
    assert response.json["error"] == "method_not_allowed"


def test_a_crash_answers_500_without_its_details(make_app):
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret-value-that-must-not-leak")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.json["error"] == "internal_error"
    assert "secret-value" not in response.get_data(as_text=True)


def test_the_openapi_document_is_served_and_valid(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json
    validate(document)
    assert "/health" in document["paths"]
    assert "/health/ready" in document["paths"]


def test_the_docs_page_is_served(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()


UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"


def test_the_api_answers_503_with_retry_after_when_the_database_is_down(make_app):
    from tests.helpers.payloads import body_of, envelope, subscription_data
    from tests.helpers.tokens import auth
    from tests.helpers.webhooks import post_webhook

    client = make_app(DATABASE_URL=UNREACHABLE).test_client()
    for response in (
        client.get("/api/v1/subscription", headers=auth()),
        client.get("/api/v1/plans"),
        post_webhook(
            client, body_of(envelope("subscription.updated", subscription_data())), apply=False
        ),
    ):
        assert response.status_code == 503, response.json
        assert response.json["error"] == "database_unavailable"
        assert int(response.headers["Retry-After"]) > 0
        assert "nobody" not in response.get_data(as_text=True)


def _restart_the_database_connections(app, client) -> None:
    """Every pooled connection dies, as in a database restart."""
    from sqlalchemy import create_engine, text

    from billing_app.extensions import db
    from tests.helpers.tokens import auth

    for _ in range(4):  # fill the pool with several connections
        assert client.get("/api/v1/subscription", headers=auth()).status_code == 200
    killer = create_engine(db.engine.url)
    with killer.connect() as connection:
        killed = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    killer.dispose()
    assert killed >= 1


@pytest.mark.postgres
def test_a_database_restart_while_idle_costs_no_request(app, client):
    """Connections idle in the pool are pinged before use: a dead one is replaced."""
    from billing_app import POOL_PING_IDLE_SECONDS
    from tests.helpers.tokens import auth

    _restart_the_database_connections(app, client)
    time.sleep(POOL_PING_IDLE_SECONDS + 0.1)
    answers = [client.get("/api/v1/subscription", headers=auth()).status_code for _ in range(4)]
    assert answers == [200] * 4


@pytest.mark.postgres
def test_a_database_restart_under_load_costs_one_request_at_most(app, client):
    """A busy connection is not pinged: the first request on a dead one answers 503 (and
    the disconnect empties the pool), every later one succeeds."""
    from tests.helpers.tokens import auth

    _restart_the_database_connections(app, client)
    responses = [client.get("/api/v1/subscription", headers=auth()) for _ in range(4)]
    assert [r.status_code for r in responses[1:]] == [200] * 3
    assert responses[0].status_code in (200, 503)
    if responses[0].status_code == 503:
        assert responses[0].json["error"] == "database_unavailable"


def test_a_405_says_which_methods_are_allowed(client):
    response = client.delete("/api/v1/plans")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET"}
    assert response.json["error"] == "method_not_allowed"


def test_ready_says_whether_a_scheduler_beats_and_which_settings_are_missing(
    make_app, session, monkeypatch
):
    from billing_app import jobs

    app = make_app(PADDLE_API_KEY=None, AUTH_JWT_SECRET=None, AUTH_JWKS_URL=None)
    client = app.test_client()
    assert client.get("/health/ready").json["missing_settings"] == [
        "PADDLE_API_KEY is not set: checkout, subscription actions and the portal answer 503",
        "AUTH_JWT_SECRET or AUTH_JWKS_URL is not set: every user endpoint answers 401",
    ]
    jobs.heartbeat(app)
    ready = client.get("/health/ready").json
    assert ready["scheduler_alive"] is True and ready["scheduler_seen_at"] is not None

    from datetime import timedelta

    from billing_app.models import ProcessHeartbeat

    for beat in session.query(ProcessHeartbeat):
        beat.seen_at -= timedelta(minutes=2)
    session.commit()
    assert client.get("/health/ready").json["scheduler_alive"] is False


def test_each_process_warns_once_per_missing_setting_at_start(caplog):
    from billing_app.services.health import warn_about_missing_settings

    config = {"PADDLE_API_KEY": None, "PADDLE_WEBHOOK_SECRETS": [], "AUTH_JWKS_URL": "https://x"}
    with caplog.at_level("WARNING"):
        warn_about_missing_settings(config, "web")
        warn_about_missing_settings(config, "scheduler")
    lines = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert lines == [
        "web process: PADDLE_API_KEY is not set: checkout, subscription actions and the portal"
        " answer 503",
        "web process: PADDLE_WEBHOOK_SECRETS is not set: every webhook from Paddle is refused"
        " (401)",
        "web process: BILLING_SERVICE_TOKEN is not set: service endpoints and /metrics answer 401",
        "scheduler process: PADDLE_API_KEY is not set: nightly reconciliation and usage billing"
        " cannot reach Paddle",
    ]


def test_an_events_endpoint_without_a_usable_secret_is_warned_of():
    from billing_app.services.events.signing import new_secret
    from billing_app.services.health import missing_settings

    url = {"EVENTS_ENDPOINT_URL": "https://app.example.com/events"}
    for secret in (None, "not-a-secret", "whsec_!!"):
        (line,) = missing_settings({**url, "EVENTS_ENDPOINT_SECRET": secret}, "worker")
        assert line.startswith("EVENTS_ENDPOINT_SECRET is not a whsec_ secret")
    assert missing_settings({**url, "EVENTS_ENDPOINT_SECRET": new_secret()}, "worker") == []
    assert missing_settings({"EVENTS_ENDPOINT_SECRET": None}, "worker") == []
