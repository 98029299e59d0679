"""Entitlements: what an account may use now, for the frontend and for other services."""

from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import SERVICE, USER, USER_READ, access_policy, operation
from billing_app.api.schemas import EntitlementsSchema
from billing_app.auth import current_user, is_account_id, require_service_token
from billing_app.db import single_statement, utcnow
from billing_app.errors import ValidationFailed
from billing_app.extensions import db
from billing_app.services.entitlements import account_entitlements

blp = Blueprint(
    "entitlements",
    __name__,
    url_prefix="/api/v1",
    description="May this account use this feature now? From our table, never from Paddle.",
)


@blp.route("/entitlements")
class OwnEntitlements(MethodView):
    @blp.doc(security=USER)
    @blp.response(200, EntitlementsSchema)
    @operation(blp, "getEntitlements", *USER_READ)
    def get(self):
        """The caller's access, plan, features and limits."""
        caller = current_user()
        with single_statement(db.engine) as connection:
            return account_entitlements(connection, caller.account_id, utcnow(), access_policy())


@blp.route("/accounts/<string:account_id>/entitlements")
class AccountEntitlements(MethodView):
    @blp.doc(security=SERVICE)
    @blp.response(200, EntitlementsSchema)
    @operation(blp, "getAccountEntitlements", 401, 422, 503)
    def get(self, account_id):
        """Any account's access, for backend services holding BILLING_SERVICE_TOKEN."""
        require_service_token()
        if not is_account_id(account_id):
            raise ValidationFailed(
                "Not an account id.", errors={"account_id": ["must be printable, at most 128"]}
            )
        with single_statement(db.engine) as connection:
            return account_entitlements(connection, account_id, utcnow(), access_policy())
