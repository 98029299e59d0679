"""The app's Paddle client, built from configuration, one per app (its session pools)."""

from __future__ import annotations

from flask import current_app

from billing_app.errors import PaddleNotConfigured
from paddle_client import Client, RetryPolicy


def build_client(
    config, *, retry: RetryPolicy | None = None, requests_per_minute: float | None = None
) -> Client:
    if not config["PADDLE_API_KEY"]:
        raise PaddleNotConfigured()
    return Client(
        config["PADDLE_API_KEY"],
        environment=config["PADDLE_ENVIRONMENT"],
        base_url=config["PADDLE_API_BASE_URL"],
        timeout=config["PADDLE_TIMEOUT_SECONDS"],
        retry=retry,
        requests_per_minute=requests_per_minute,
    )


def paddle() -> Client:
    """The Paddle client of the current app; 503 `paddle_not_configured` without a key."""
    client = current_app.extensions.get("billing_paddle")
    if client is None:
        client = current_app.extensions["billing_paddle"] = build_client(current_app.config)
    return client
