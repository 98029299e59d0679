"""Liveness and readiness probes for load balancers."""

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from billing_app.api.common import operation
from billing_app.services import health as health_service

blp = Blueprint("health", __name__, url_prefix="/health", description="Liveness and readiness")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


@blp.route("")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @operation(blp, "getHealth")
    def get(self):
        """The process is up."""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    @blp.response(200, HealthSchema)
    @operation(blp, "getReadiness", 503, codes={503: ("database_unavailable",)})
    def get(self):
        """The process is up and its database answers."""
        health_service.check_database()
        return {"status": "ok"}
