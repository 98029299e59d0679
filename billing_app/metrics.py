"""Prometheus metrics, at `GET /metrics` (service token).

Under gunicorn every worker process counts on its own: set PROMETHEUS_MULTIPROC_DIR (an
empty directory, from the shell that starts gunicorn) and start gunicorn with
`-c python:billing_app.gunicorn_conf`, and whichever worker answers a scrape sums them
all (prometheus_client's multiprocess mode). Without it a process reports its own.

What the database knows (the inbox's backlog, the last reconciliation) is read at scrape
time, beside the endpoint (`billing_app/api/metrics.py`), so every process reports the same
figures.
"""

from __future__ import annotations

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
)

HTTP_REQUESTS = Counter(
    "billing_http_requests_total", "HTTP requests answered", ["route", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "billing_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBHOOKS_RECEIVED = Counter(
    "billing_webhooks_received_total",
    "Webhook deliveries: accepted, duplicate, or why refused",
    ["outcome"],
)
WEBHOOKS_APPLIED = Counter(
    "billing_webhooks_applied_total",
    "Ledger rows settled by the workers: processed, stale, ignored, failed, dead",
    ["event_type", "outcome"],
)
PADDLE_REQUESTS = Counter(
    "billing_paddle_requests_total",
    "Attempts at Paddle's API: 2xx, 4xx:<code>, 429, 5xx, timeout, unreachable",
    ["method", "operation", "outcome"],
)
PADDLE_RETRIES = Counter(
    "billing_paddle_retries_total",
    "Attempts at Paddle's API that retried an earlier one",
    ["method", "operation"],
)
PADDLE_SECONDS = Histogram(
    "billing_paddle_request_duration_seconds",
    "Time of one attempt at Paddle's API",
    ["method", "operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBHOOK_APPLY_SECONDS = Histogram(
    "billing_webhook_apply_duration_seconds",
    "Time a worker takes to apply one ledger row and commit",
    ["event_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
ENTITLEMENT_CACHE = Counter(
    "billing_entitlement_cache_total", "Entitlement cache lookups: hit or miss", ["result"]
)
ENTITLEMENT_CACHE_EVICTIONS = Counter(
    "billing_entitlement_cache_evictions_total",
    "Accounts dropped from the entitlement cache: changed (announced), cleared (all at once:"
    " a plan change, a lost listener), expired (TTL), capacity (LRU)",
    ["reason"],
)
RECONCILE_PAGES = Counter(
    "billing_reconcile_pages_total", "Pages of Paddle's subscription list reconciled and committed"
)
USAGE_REPORTS = Counter(
    "billing_usage_reports_total", "Usage reports: recorded, repeated or refused", ["outcome"]
)
EVENT_DELIVERIES = Counter(
    "billing_event_deliveries_total",
    "Attempts at delivering outbound events: delivered, retrying, failed (schedule over),"
    " gone (410)",
    ["outcome"],
)
EVENT_DELIVERY_LAG = Histogram(
    "billing_event_delivery_lag_seconds",
    "From an event's commit to its endpoint's 2xx",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30, 300, 3600),
)
EVENT_ENDPOINTS_DISABLED = Counter(
    "billing_event_endpoints_disabled_total",
    "Event endpoints disabled for failing (or answering 410)",
)
JOB_LAST_SUCCESS = Gauge(
    "billing_job_last_success_timestamp_seconds",
    "When each scheduled job last succeeded (Unix time)",
    ["job"],
    multiprocess_mode="max",
)


# METRICS_ENABLED=false stops the per-request counting (HTTP, the entitlement cache): what
# `scripts/bench_entitlements` compares against, to tell what counting costs a read.
COUNTING = {"per_request": True}


def count_request(route: str, method: str, status: int, seconds: float) -> None:
    if COUNTING["per_request"]:
        HTTP_REQUESTS.labels(route, method, status).inc()
        HTTP_SECONDS.labels(route, method).observe(seconds)


def count_cache_lookups(hits: int, misses: int) -> None:
    if COUNTING["per_request"]:
        ENTITLEMENT_CACHE.labels("hit").inc(hits)
        ENTITLEMENT_CACHE.labels("miss").inc(misses)


def observe_paddle(method: str, operation: str, outcome: str, seconds: float, attempt: int) -> None:
    PADDLE_REQUESTS.labels(method, operation, outcome).inc()
    if attempt > 1:
        PADDLE_RETRIES.labels(method, operation).inc()
    PADDLE_SECONDS.labels(method, operation).observe(seconds)
