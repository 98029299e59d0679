"""`GET /api/v1/plans` and `GET /api/v1/catalog`: what is on sale."""

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import error_codes, operation
from billing_app.api.schemas import CatalogItemSchema, CatalogQuerySchema, PlanSchema
from billing_app.errors import DatabaseUnavailable
from billing_app.extensions import db
from billing_app.services.plans import catalogue as plan_service

blp = Blueprint("plans", __name__, url_prefix="/api/v1", description="The catalogue")
PUBLIC_READ = (429, 503)
PUBLIC_CODES = error_codes(DatabaseUnavailable)


@blp.route("/plans")
class Plans(MethodView):
    @blp.etag
    @blp.response(200, PlanSchema(many=True))
    @operation(blp, "listPlans", *PUBLIC_READ, codes=PUBLIC_CODES)
    def get(self):
        """Active plans, with their features and limits. Public and cacheable (ETag)."""
        return list(plan_service.active_plans(db.session))


@blp.route("/catalog")
class Catalog(MethodView):
    @blp.etag
    @blp.arguments(CatalogQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, CatalogItemSchema(many=True))
    @operation(blp, "listCatalog", *PUBLIC_READ, 422, codes=PUBLIC_CODES)
    def get(self, query):
        """Everything on sale by type: subscription plans and one-time products, with what
        each grants. Public and cacheable (ETag)."""
        wanted = query.get("type")
        items = []
        if wanted in (None, "subscription"):
            items += [_plan_item(plan) for plan in plan_service.active_plans(db.session)]
        if wanted in (None, "one_time"):
            items += [
                _product_item(product) for product in plan_service.active_products(db.session)
            ]
        return items


def _plan_item(plan) -> dict:
    return {
        "type": "subscription",
        **{key: getattr(plan, key) for key in _COMMON},
        "interval": plan.interval,
        "interval_count": plan.interval_count,
        "grant_days": None,
        "credits": {},
    }


def _product_item(product) -> dict:
    return {
        "type": "one_time",
        **{key: getattr(product, key) for key in _COMMON},
        "interval": None,
        "interval_count": None,
        "grant_days": product.grant_days,
        "credits": product.credits or {},
    }


_COMMON = ("slug", "name", "description", "price_id", "amount", "currency", "features")


@blp.after_request
def cache_publicly(response):
    if response.status_code in (200, 304):
        response.headers["Cache-Control"] = "public, max-age=60"
    return response
