"""`POST /api/v1/portal-session`: a link to Paddle's customer portal."""

from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import (
    ONLY_NO_SUBSCRIPTION,
    USER,
    USER_ACTION,
    authenticate_first,
    operation,
)
from billing_app.api.schemas import NoBodySchema, PortalSessionSchema
from billing_app.auth import current_user
from billing_app.extensions import db
from billing_app.paddle import paddle
from billing_app.services.subscriptions import actions as subscription_service

blp = Blueprint(
    "portal", __name__, url_prefix="/api/v1/portal-session", description="Customer portal"
)
authenticate_first(blp)


@blp.route("")
class PortalSession(MethodView):
    @blp.doc(security=USER)
    @blp.response(200, PortalSessionSchema)
    @blp.arguments(NoBodySchema, required=False)
    @operation(blp, "createPortalSession", *USER_ACTION, 404, codes=ONLY_NO_SUBSCRIPTION)
    def post(self, body):
        """A fresh, short-lived customer portal URL (invoices, cards, cancel)."""
        caller = current_user()
        return {"url": subscription_service.portal_url(db.session, paddle(), caller.account_id)}
