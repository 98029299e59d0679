"""Prometheus metrics, at `GET /metrics` (service token).

Under gunicorn every worker process counts on its own: set PROMETHEUS_MULTIPROC_DIR (an
empty directory, from the shell that starts gunicorn) and start gunicorn with
`-c python:billing_app.gunicorn_conf`, and whichever worker answers a scrape sums them
all (prometheus_client's multiprocess mode). Without it a process reports its own.

What the database knows (the inbox's backlog, the last reconciliation) is read at scrape
time, so every process reports the same figures.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

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
PADDLE_SECONDS = Histogram(
    "billing_paddle_request_duration_seconds",
    "Time of one attempt at Paddle's API",
    ["method", "operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ENTITLEMENT_CACHE = Counter(
    "billing_entitlement_cache_total", "Entitlement cache lookups: hit or miss", ["result"]
)
USAGE_REPORTS = Counter(
    "billing_usage_reports_total", "Usage reports: recorded, repeated or refused", ["outcome"]
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


def observe_paddle(method: str, operation: str, outcome: str, seconds: float) -> None:
    PADDLE_REQUESTS.labels(method, operation, outcome).inc()
    PADDLE_SECONDS.labels(method, operation).observe(seconds)


class DatabaseFigures:
    """Read at each scrape: the inbox's backlog and the last reconciliation."""

    def __init__(self, app) -> None:
        self.app = app

    def collect(self):
        from billing_app.extensions import db
        from billing_app.models import ReconcileRun
        from billing_app.services import inbox

        with self.app.app_context():
            try:
                backlog, oldest = inbox.backlog(db.session)
                last = db.session.scalar(
                    select(func.max(ReconcileRun.finished_at)).where(
                        ReconcileRun.status == "succeeded"
                    )
                )
            finally:
                db.session.remove()
        yield GaugeMetricFamily(
            "billing_webhook_backlog", "Ledger rows waiting to be applied", value=backlog
        )
        yield GaugeMetricFamily(
            "billing_webhook_oldest_unapplied_seconds",
            "Age of the oldest ledger row waiting to be applied (0: none)",
            value=oldest or 0,
        )
        yield GaugeMetricFamily(
            "billing_reconcile_last_success_timestamp_seconds",
            "When a reconciliation last succeeded (Unix time; 0: never)",
            value=last.timestamp() if last else 0,
        )


def scrape(app) -> tuple[bytes, str]:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    registry = CollectorRegistry()
    registry.register(DatabaseFigures(app))
    return body + generate_latest(registry), CONTENT_TYPE_LATEST
