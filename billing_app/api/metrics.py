"""`GET /metrics`: Prometheus' text format, for holders of BILLING_SERVICE_TOKEN.

The counters and histograms live in `billing_app.metrics`, where the code that counts
imports them; what the database knows (the inbox's backlog, the last reconciliation) is
read here, at each scrape.
"""

import os

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from billing_app.api.common import SERVICE, operation
from billing_app.auth import require_service_token
from billing_app.extensions import db
from billing_app.models import ReconcileDrift, ReconcileRun
from billing_app.services.events import delivery
from billing_app.services.webhooks import inbox

blp = Blueprint("metrics", __name__, url_prefix="/metrics", description="Prometheus metrics")

PROMETHEUS_TEXT = {
    "description": "Prometheus text exposition format (see the README's Operations)",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}


@blp.route("")
class Metrics(MethodView):
    @blp.doc(security=SERVICE, responses={"200": PROMETHEUS_TEXT})
    @operation(blp, "getMetrics", 401, 503)
    def get(self):
        """Every metric of the service (all gunicorn workers' in multiprocess mode)."""
        require_service_token()
        body, content_type = scrape(current_app._get_current_object())
        return Response(body, content_type=content_type)


RECONCILE_KINDS = (
    "seen",
    "in_sync",
    "drift_fixed",
    "missing_locally",
    "missing_in_paddle",
    "errors",
    "unlinked",
)


class DatabaseFigures:
    """Read at each scrape: the inbox's backlog and the last reconciliation."""

    def __init__(self, app) -> None:
        self.app = app

    def collect(self):
        with self.app.app_context():
            try:
                backlog, oldest = inbox.backlog(db.session)
                waiting, oldest_delivery, disabled = delivery.backlog(db.session)
                reconciliation = _last_reconciliation(db.session)
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
            "billing_event_deliveries_pending",
            "Event deliveries waiting to be sent (retries and disabled endpoints' included)",
            value=waiting,
        )
        yield GaugeMetricFamily(
            "billing_event_oldest_pending_delivery_seconds",
            "Age of the oldest event delivery still waiting (0: none)",
            value=oldest_delivery or 0,
        )
        yield GaugeMetricFamily(
            "billing_event_endpoints_disabled", "Event endpoints disabled now", value=disabled
        )
        yield from reconciliation


def _timestamp(moment) -> float:
    return moment.timestamp() if moment else 0


def _last_reconciliation(session) -> list[GaugeMetricFamily]:
    """The last success, and what the last finished run (not a dry run) saw and did."""
    succeeded = session.scalar(
        select(func.max(ReconcileRun.finished_at)).where(ReconcileRun.status == "succeeded")
    )
    last_success = GaugeMetricFamily(
        "billing_reconcile_last_success_timestamp_seconds",
        "When a reconciliation last succeeded (Unix time; 0: never)",
        value=_timestamp(succeeded),
    )
    last = session.scalars(
        select(ReconcileRun)
        .where(ReconcileRun.finished_at.is_not(None), ReconcileRun.dry_run.is_(False))
        .order_by(ReconcileRun.finished_at.desc())
        .limit(1)
    ).first()
    started = GaugeMetricFamily(
        "billing_reconcile_last_run_started_timestamp_seconds",
        "When the last finished reconciliation started (Unix time; 0: none yet)",
        value=_timestamp(last and last.started_at),
    )
    finished = GaugeMetricFamily(
        "billing_reconcile_last_run_finished_timestamp_seconds",
        "When the last finished reconciliation ended (Unix time; 0: none yet)",
        value=_timestamp(last and last.finished_at),
    )
    succeeded_flag = GaugeMetricFamily(
        "billing_reconcile_last_run_succeeded",
        "1 if the last finished reconciliation succeeded, 0 if it failed or none has run",
        value=1 if last is not None and last.status == "succeeded" else 0,
    )
    kinds = GaugeMetricFamily(
        "billing_reconcile_last_run_subscriptions",
        "What the last finished reconciliation counted, by kind (drift_fixed: repaired)",
        labels=["kind"],
    )
    drifts = GaugeMetricFamily(
        "billing_reconcile_last_run_drifts",
        "Drift the last finished reconciliation found and repaired, by field",
        labels=["field"],
    )
    if last is not None:
        for kind in RECONCILE_KINDS:
            kinds.add_metric([kind], getattr(last, kind) or 0)
        by_field = session.execute(
            select(ReconcileDrift.field, func.count())
            .where(ReconcileDrift.run_id == last.id)
            .group_by(ReconcileDrift.field)
        )
        for field, count in by_field:
            drifts.add_metric([field], count)
    return [last_success, started, finished, succeeded_flag, kinds, drifts]


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
