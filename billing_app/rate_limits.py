"""Rate limits, so one caller cannot starve the others (or the nightly reconciliation) of
Paddle's 240 requests a minute per IP.

- Per account on the user endpoints: actions (checkout, pause, cancel, resume, change and
  its preview, payment method, portal session) share one budget, reads another.
- Per IP on the public endpoints (the plan list, the pricing page).
- A service-wide budget for the calls user requests make to Paddle lives with the Paddle
  client's wiring (`billing_app.paddle`), in the same storage.

Every blueprint is limited unless `EXEMPT` names it with its reason (a test checks every
endpoint of the URL map): a new user endpoint cannot be forgotten. Service-token reads are
not limited. Counters live in memory (one process) unless `RATE_LIMIT_STORAGE_URL` names a
Redis server, which every process then shares. If that storage fails, requests are let
through and it is logged.

Entitlement reads are the exception: answered from memory, they are limited per account by
an in-process token bucket (`billing_app.token_buckets`, at RATE_LIMIT_READS per process),
because Flask-Limiter's bookkeeping costs more than the read; service-token reads are not
limited at all.

The limiter's headers go where they mean something: `Retry-After` on a 429 or a 503 only, and
no `X-RateLimit-*` on a 401 (a request refused before it counted as anyone's).
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from billing_app.auth import current_user
from billing_app.errors import TooManyRequests, Unauthorized
from billing_app.token_buckets import Taken, TokenBuckets

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


SERVICE_ENDPOINTS = ("entitlements.BatchEntitlements", "usage.UsageBatch")
# Limited by `count_cached_read` (or, for services, not at all), never by Flask-Limiter.
CACHED_READS = (
    "entitlements.OwnEntitlements",
    "entitlements.AccountEntitlements",
    "entitlements.BatchEntitlements",
)


# Blueprints no limit applies to, and why.
EXEMPT = {
    "webhooks": "Paddle's deliveries: signed, refused before any work when not",
    "health": "the load balancer's probes",
    "metrics": "Prometheus' scrapes, with the service token",
    "events": "the events feed: the product's services only (service token), never limited",
    "api-docs": "the OpenAPI document and the docs page: static",
    "docs_assets": "the docs page's scripts and styles, and the favicon: static",
    "static": "files",
    "admin": "the console: its sign-in has a limit of its own",
}
# Blueprints read by anyone, limited per address.
PUBLIC = ("plans", "pricing")


def register_rate_limits(app: Flask) -> Limiter:
    """A limiter of this app's own (its settings and counters), and the limits on the
    blueprints it serves (registered before this is called)."""
    app.config.update(
        # Always on: which limits apply is decided per request (`unlimited`), so that turning
        # the API's limits off never turns off the console's sign-in limit.
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=app.config["RATE_LIMIT_STORAGE_URL"] or "memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,  # a broken limiter store must not take the API down
    )
    limiter = Limiter(key_func=caller_or_address, app=app)
    app.extensions["billing_read_buckets"] = TokenBuckets.from_rate(app.config["RATE_LIMIT_READS"])

    @limiter.request_filter
    def unlimited() -> bool:
        # Paddle's deliveries (signed; refused before any work when not) and the load
        # balancer's probes: skipped before the limiter looks at anything else.
        if request.blueprint in ("webhooks", "health") or request.endpoint in CACHED_READS:
            return True  # skipped before the limiter looks at anything else
        # The console's sign-in limit is a security control with a setting of its own;
        # RATE_LIMIT_ENABLED is about the API's capacity.
        if request.blueprint == "admin":
            return not current_app.config["ADMIN_SIGN_IN_RATE_LIMIT_ENABLED"]
        return not current_app.config["RATE_LIMIT_ENABLED"]

    actions = limiter.shared_limit(
        lambda: current_app.config["RATE_LIMIT_ACTIONS"],
        scope="user-actions",
        methods=["POST", "DELETE"],
        exempt_when=_is_service_call,
    )
    reads = limiter.shared_limit(
        lambda: current_app.config["RATE_LIMIT_READS"],
        scope="user-reads",
        methods=["GET"],
        exempt_when=_is_service_call,
    )
    public = limiter.shared_limit(
        lambda: current_app.config["RATE_LIMIT_PUBLIC"], scope="public", key_func=get_remote_address
    )
    for name in limited_blueprints(app):
        if name in PUBLIC:
            public(app.blueprints[name])
        else:
            actions(app.blueprints[name])
            reads(app.blueprints[name])
    if "admin" in app.blueprints:
        # Guessing the console's password: a few tries a minute per address.
        limiter.limit(
            lambda: current_app.config["ADMIN_SIGN_IN_RATE_LIMIT"],
            key_func=get_remote_address,
            methods=["POST"],
            exempt_when=lambda: request.endpoint != "admin.sign_in",
        )(app.blueprints["admin"])
    app.after_request_funcs.setdefault(None, []).insert(0, _headers_where_they_belong)
    return limiter


def count_cached_read(account_id: str) -> Taken | None:
    """Take one of the account's read tokens in this process; 429 when none is left. None
    when the API's limits are off."""
    if not current_app.config["RATE_LIMIT_ENABLED"]:
        return None
    taken = current_app.extensions["billing_read_buckets"].take(account_id)
    if not taken.allowed:
        raise TooManyRequests(headers=taken.headers())
    return taken


def limited_blueprints(app: Flask) -> list[str]:
    return [name for name in app.blueprints if name not in EXEMPT]


def _headers_where_they_belong(response):
    # Registered first, so it runs after the limiter has added its headers.
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    if response.status_code == 401:
        for name in {name for name, _ in response.headers if name.startswith("X-RateLimit")}:
            response.headers.pop(name, None)
    return response
