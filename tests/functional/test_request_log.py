"""One structured line per request, with the request id the response echoes; nothing secret
or personal in logs and ledger errors."""

from __future__ import annotations

import json
import logging

from sqlalchemy.exc import IntegrityError

from billing_app.errors import describe_failure
from billing_app.request_log import JsonFormatter, RequestIdFilter
from tests.helpers.config import SERVICE_TOKEN
from tests.helpers.tokens import auth


def request_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "billing_app.requests"]


def test_the_request_id_is_taken_or_made_and_echoed(client):
    given = client.get("/health", headers={"X-Request-ID": "lb-7f3a.1"})
    assert given.headers["X-Request-ID"] == "lb-7f3a.1"
    made = client.get("/health").headers["X-Request-ID"]
    assert len(made) == 32 and made != "lb-7f3a.1"
    odd = client.get("/health", headers={"X-Request-ID": "a b<script>"})
    assert odd.headers["X-Request-ID"] not in ("a b<script>", "")


def test_each_request_logs_one_line_with_its_route_status_account_and_id(client, caplog):
    caplog.set_level(logging.INFO, logger="billing_app")
    token = auth("acct_log")["Authorization"]
    response = client.get(
        "/api/v1/entitlements", headers={"Authorization": token, "X-Request-ID": "req-1"}
    )
    (line,) = [r for r in request_lines(caplog) if r.request_id == "req-1"]
    assert (line.route, line.status, line.account_id) == (
        "/api/v1/entitlements",
        response.status_code,
        "acct_log",
    )
    assert line.duration_ms >= 0
    service = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    client.get("/api/v1/accounts/acct_9/entitlements", headers=service)
    routes = {(r.route, r.account_id) for r in request_lines(caplog)}
    assert ("/api/v1/accounts/<string:account_id>/entitlements", "acct_9") in routes
    everything = "\n".join(r.getMessage() + str(vars(r)) for r in caplog.records)
    assert token.split()[-1] not in everything and SERVICE_TOKEN not in everything


def test_json_lines_carry_the_request_id(app):
    record = logging.LogRecord(
        "billing_app.x", logging.WARNING, __file__, 1, "hello %s", ("you",), None
    )
    with app.test_request_context("/health"):
        from flask import g

        g.request_id = "req-json"
        RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert (line["message"], line["request_id"], line["level"]) == (
        "hello you",
        "req-json",
        "WARNING",
    )


def test_a_database_errors_description_keeps_no_parameters_or_emails():
    driver = Exception(
        'duplicate key value violates unique constraint "uq_accounts_email"\n'
        "DETAIL:  Key (email)=(jane@example.com) already exists."
    )
    error = IntegrityError(
        "INSERT INTO accounts (email) VALUES (%(email)s)", {"email": "jane@example.com"}, driver
    )
    described = describe_failure(error)
    assert described.startswith("IntegrityError: duplicate key value")
    assert "jane@example.com" not in described and "INSERT" not in described
