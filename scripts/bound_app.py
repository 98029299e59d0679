"""The bound: the least any design of these endpoints has to do, as a bare Flask app.

Served by the same gunicorn settings as the service and measured by the same load
generator in the same run, it shows how far the targets are reachable at all on this
machine, whatever the service's code does:

- `POST /webhooks/paddle`: verify the signature, parse the notification, and make it
  durable before answering: one INSERT ... ON CONFLICT DO NOTHING, committed on its own,
  a single round trip. Nothing is applied; a real service has to do at least this much.
- `GET /entitlements`: decode the bearer token, and read the account's row (one SELECT).
- `GET /health`: the floor both are compared with.

It uses psycopg directly, one connection per thread: no ORM, no pool logic. The bench
creates its one table (`benchlib.start_bound_app`).
"""

from __future__ import annotations

import os
import threading

import jwt
import psycopg
from flask import Flask, jsonify, request

from paddle_client import webhooks

app = Flask(__name__)
DATABASE_URL = os.environ["BOUND_DATABASE_URL"]
WEBHOOK_SECRET = os.environ.get("PADDLE_WEBHOOK_SECRETS", "")
JWT_SECRET = os.environ.get("AUTH_JWT_SECRET", "")
TOLERANCE = int(os.environ.get("PADDLE_WEBHOOK_TOLERANCE_SECONDS", "300"))  # as the service
_local = threading.local()


def connection() -> psycopg.Connection:
    if getattr(_local, "connection", None) is None:
        _local.connection = psycopg.connect(DATABASE_URL, autocommit=True)
    return _local.connection


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.post("/webhooks/paddle")
def receive():
    body = request.get_data()
    webhooks.verify(
        request.headers.get(webhooks.HEADER), body, [WEBHOOK_SECRET], tolerance=TOLERANCE
    )
    notification = webhooks.parse_notification(body)
    connection().execute(  # one statement, committed on its own (autocommit)
        "INSERT INTO bound_events (event_id, payload) VALUES (%s, %s)"
        " ON CONFLICT (event_id) DO NOTHING",
        (notification.event_id, body.decode()),
    )
    return jsonify(status="processed")


@app.get("/entitlements")
def entitlements():
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    row = (
        connection()
        .execute("SELECT status FROM subscriptions WHERE account_id = %s LIMIT 1", (claims["sub"],))
        .fetchone()
    )
    return jsonify(account_id=claims["sub"], active=bool(row and row[0] == "active"))
