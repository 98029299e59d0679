"""Liveness and readiness probes for load balancers."""

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from billing_app.api.common import error_codes, operation
from billing_app.db import utcnow
from billing_app.errors import DatabaseUnavailable
from billing_app.extensions import db
from billing_app.services import health as health_service
from billing_app.services.webhooks import inbox

blp = Blueprint("health", __name__, url_prefix="/health", description="Liveness and readiness")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class ReadySchema(HealthSchema):
    webhook_backlog = fields.Integer(
        required=True, metadata={"description": "ledger rows waiting to be applied"}
    )
    oldest_unapplied_seconds = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "age of the oldest of them (for alerts)"},
    )
    scheduler_alive = fields.Boolean(
        required=True,
        metadata={"description": "a scheduler process (`billing scheduler`) beat lately"},
    )
    scheduler_seen_at = fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": "its last heartbeat"}
    )
    missing_settings = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "each setting this web process lacks, with what it turns off"},
    )


@blp.route("")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @operation(blp, "getHealth")
    def get(self):
        """The process is up."""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    @blp.response(200, ReadySchema)
    @operation(blp, "getReadiness", 503, codes=error_codes(DatabaseUnavailable))
    def get(self):
        """The process is up and its database answers; with the webhook backlog, for
        alerts (a backlog does not make the process unready)."""
        health_service.check_database()
        waiting, oldest = inbox.backlog(db.session)
        scheduler = health_service.liveness(db.session, "scheduler", utcnow())
        db.session.rollback()
        return {
            "status": "ok",
            "webhook_backlog": waiting,
            "oldest_unapplied_seconds": oldest,
            "scheduler_alive": scheduler.alive,
            "scheduler_seen_at": scheduler.last_seen_at,
            "missing_settings": health_service.missing_settings(current_app.config, "web"),
        }
