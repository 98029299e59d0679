"""`GET /api/v1/plans`: what is on sale."""

from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import operation
from billing_app.api.schemas import PlanSchema
from billing_app.extensions import db
from billing_app.services import plans as plan_service

blp = Blueprint("plans", __name__, url_prefix="/api/v1/plans", description="The plan catalogue")


@blp.route("")
class Plans(MethodView):
    @blp.etag
    @blp.response(200, PlanSchema(many=True))
    @operation(blp, "listPlans", 429, 503, codes={503: ("database_unavailable",)})
    def get(self):
        """Active plans, with their features and limits. Public and cacheable (ETag)."""
        return list(plan_service.active_plans(db.session))


@blp.after_request
def cache_publicly(response):
    if response.status_code in (200, 304):
        response.headers["Cache-Control"] = "public, max-age=60"
    return response
