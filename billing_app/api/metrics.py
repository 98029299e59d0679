"""`GET /metrics`: Prometheus' text format, for holders of BILLING_SERVICE_TOKEN."""

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import SERVICE, operation
from billing_app.auth import require_service_token
from billing_app.metrics import scrape

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
