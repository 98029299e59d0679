"""The app's Paddle client, built from configuration, one per app (its session pools).

Within an HTTP request, the first use of the client starts the request's Paddle deadline
(`PADDLE_REQUEST_DEADLINE_SECONDS`): everything the request asks Paddle, retries and
read-backs included, is over by then, well inside the server's worker timeout.

User requests also draw on a service-wide budget of calls to Paddle
(`PADDLE_USER_REQUESTS_PER_MINUTE`), shared by every process when the rate limits' storage
is Redis: when it is spent, 503 `paddle_busy` with Retry-After instead of Paddle's own 429
(which would slow everyone, reconciliation included).
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import ExitStack

from flask import Flask, current_app, g, has_request_context
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from billing_app.errors import PaddleBusy, PaddleNotConfigured
from billing_app.metrics import observe_paddle
from billing_app.services.selling.discount_codes import DiscountCodes
from paddle_client import Client, RetryPolicy

log = logging.getLogger(__name__)


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


def discount_codes() -> DiscountCodes:
    """The discount codes this process has looked up at Paddle lately."""
    return current_app.extensions["billing_discount_codes"]


def register_paddle(app: Flask) -> None:
    """The budget of user requests' calls, the end of each request's deadline, and the
    discount codes looked up."""
    app.extensions["billing_discount_codes"] = DiscountCodes()
    app.extensions["billing_paddle_budget"] = PaddleBudget(
        app.config["RATE_LIMIT_STORAGE_URL"] or "memory://",
        app.config["PADDLE_USER_REQUESTS_PER_MINUTE"],
        prefix=app.config.get("RATELIMIT_KEY_PREFIX", ""),
    )

    @app.teardown_request
    def end_paddle_conversation(exception: BaseException | None) -> None:
        conversation = g.pop("paddle_conversation", None)
        if conversation is not None:
            conversation.close()


class PaddleBudget:
    """How many calls to Paddle user requests may make per minute, all processes together."""

    def __init__(self, storage_uri: str, per_minute: int, *, prefix: str = "") -> None:
        self.window = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self.key = f"{prefix}paddle-user-requests"

    def spend(self) -> None:
        """Take one call from the budget, or raise 503 `paddle_busy`."""
        if self.item is None:
            return
        try:
            if self.window.hit(self.item, self.key):
                return
            reset_at = self.window.get_window_stats(self.item, self.key).reset_time
        except Exception as error:  # the storage is down: let the call through
            log.warning("paddle budget unavailable (%s); not limiting", type(error).__name__)
            return
        wait = max(1, math.ceil(reset_at - time.time()))
        raise PaddleBusy(headers={"Retry-After": str(wait)})


def spend_paddle_budget() -> None:
    """Before each call to Paddle: user requests draw on the shared budget; the CLI and
    scheduled jobs do not (reconciliation keeps its own pace)."""
    if has_request_context():
        current_app.extensions["billing_paddle_budget"].spend()
