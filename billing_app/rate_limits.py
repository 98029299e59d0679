"""Rate limits, so one caller cannot starve the others (or the nightly reconciliation) of
Paddle's 240 requests a minute per IP.

- Per account on the user endpoints: actions (checkout, pause, cancel, resume, change and
  its preview, payment method, portal session) share one budget, reads another.
- Per IP on the public endpoints (the plan list).
- A service-wide budget for the calls user requests make to Paddle, shared by every
  process when the storage is Redis: when it is spent, 503 `paddle_busy` with Retry-After
  instead of Paddle's own 429 (which would slow everyone, reconciliation included).

Webhooks, health probes and service-token reads are not limited. Counters live in memory
(one process) unless `RATE_LIMIT_STORAGE_URL` names a Redis server, which every process
then shares. If that storage fails, requests are let through and it is logged.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, current_app, has_request_context, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from billing_app.auth import current_user
from billing_app.errors import PaddleBusy, Unauthorized

log = logging.getLogger(__name__)


def caller_or_address() -> str:
    """Whom a request counts against: its account when signed in, else its address."""
    try:
        return f"account:{current_user().account_id}"
    except Unauthorized:
        return f"ip:{get_remote_address()}"


def _is_service_call() -> bool:
    """A backend service's read (an account in the path, or the batch): never limited."""
    return "account_id" in (request.view_args or {}) or request.endpoint in SERVICE_ENDPOINTS


SERVICE_ENDPOINTS = ("entitlements.BatchEntitlements",)


UNLIMITED_BLUEPRINTS = ("webhooks", "health")


def register_rate_limits(app: Flask) -> Limiter:
    """A limiter of this app's own (its settings and counters), and the limits on the
    blueprints it serves."""
    from billing_app.api import checkout, entitlements, plans, portal, subscription, usage

    app.config.update(
        RATELIMIT_ENABLED=app.config["RATE_LIMIT_ENABLED"],
        RATELIMIT_STORAGE_URI=app.config["RATE_LIMIT_STORAGE_URL"] or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,  # a broken limiter store must not take the API down
    )
    limiter = Limiter(key_func=caller_or_address, app=app)

    @limiter.request_filter
    def unlimited() -> bool:
        # Paddle's deliveries (signed; refused before any work when not) and the load
        # balancer's probes: skipped before the limiter looks at anything else.
        return request.blueprint in UNLIMITED_BLUEPRINTS

    actions = limiter.shared_limit(
        lambda: current_app.config["RATE_LIMIT_ACTIONS"],
        scope="user-actions",
        methods=["POST"],
        exempt_when=_is_service_call,
    )
    reads = limiter.shared_limit(
        lambda: current_app.config["RATE_LIMIT_READS"],
        scope="user-reads",
        methods=["GET"],
        exempt_when=_is_service_call,
    )
    for blueprint in (checkout.blp, subscription.blp, portal.blp, entitlements.blp, usage.blp):
        actions(blueprint)
        reads(blueprint)
    limiter.shared_limit(
        lambda: current_app.config["RATE_LIMIT_PUBLIC"], scope="public", key_func=get_remote_address
    )(plans.blp)
    if "admin" in app.blueprints:
        from billing_app.admin.blueprint import blp as console

        # Guessing the console's password: a few tries a minute per address.
        limiter.limit(
            lambda: current_app.config["ADMIN_SIGN_IN_RATE_LIMIT"],
            key_func=get_remote_address,
            methods=["POST"],
            exempt_when=lambda: request.endpoint != "admin.sign_in",
        )(console)
    app.extensions["billing_paddle_budget"] = PaddleBudget(
        app.config["RATELIMIT_STORAGE_URI"],
        app.config["PADDLE_USER_REQUESTS_PER_MINUTE"],
        prefix=app.config.get("RATELIMIT_KEY_PREFIX", ""),
    )
    return limiter


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
