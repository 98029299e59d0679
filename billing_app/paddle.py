"""The app's Paddle client, built from configuration, one per app (its session pools).

Within an HTTP request, the first use of the client starts the request's Paddle deadline
(`PADDLE_REQUEST_DEADLINE_SECONDS`): everything the request asks Paddle, retries and
read-backs included, is over by then, well inside the server's worker timeout.
"""

from __future__ import annotations

from contextlib import ExitStack

from flask import Flask, current_app, g, has_request_context

from billing_app.errors import PaddleNotConfigured
from billing_app.metrics import observe_paddle
from billing_app.rate_limits import spend_paddle_budget
from paddle_client import Client, RetryPolicy


def build_client(
    config,
    *,
    retry: RetryPolicy | None = None,
    requests_per_minute: float | None = None,
    before_send=None,
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
        before_send=before_send,
        after_attempt=observe_paddle,
    )


def paddle() -> Client:
    """The Paddle client of the current app; 503 `paddle_not_configured` without a key."""
    client = current_app.extensions.get("billing_paddle")
    if client is None:
        client = current_app.extensions["billing_paddle"] = build_client(
            current_app.config, before_send=spend_paddle_budget
        )
    if has_request_context() and "paddle_conversation" not in g:
        g.paddle_conversation = ExitStack()
        g.paddle_conversation.enter_context(
            client.deadline(current_app.config["PADDLE_REQUEST_DEADLINE_SECONDS"])
        )
    return client


def register_request_deadline(app: Flask) -> None:
    @app.teardown_request
    def end_paddle_conversation(exception: BaseException | None) -> None:
        conversation = g.pop("paddle_conversation", None)
        if conversation is not None:
            conversation.close()
