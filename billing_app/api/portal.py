"""`POST /api/v1/portal-session`: a link to Paddle's customer portal."""

from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import USER, USER_ACTION, authenticate_first, error_codes, operation
from billing_app.api.schemas import NoBodySchema, PortalSessionSchema
from billing_app.auth import current_user
from billing_app.errors import CustomerShared, NoSubscription
from billing_app.extensions import db
from billing_app.paddle import paddle
from billing_app.services.subscriptions import actions as subscription_service

blp = Blueprint(
    "portal", __name__, url_prefix="/api/v1/portal-session", description="Customer portal"
)
authenticate_first(blp)

PORTAL_CODES = error_codes(NoSubscription, CustomerShared)


@blp.route("")
class PortalSession(MethodView):
    @blp.doc(security=USER)
    @blp.response(200, PortalSessionSchema)
    @blp.arguments(NoBodySchema, required=False)
    @operation(blp, "createPortalSession", *USER_ACTION, 404, 409, codes=PORTAL_CODES)
    def post(self, body):
        """A fresh, short-lived customer portal URL (invoices, cards, cancel). Refused (409
        `customer_shared`) while the account's Paddle customer also pays for another
        account: the portal would show and cancel that account's subscriptions too."""
        caller = current_user()
        return {"url": subscription_service.portal_url(db.session, paddle(), caller.account_id)}
