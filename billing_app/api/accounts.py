"""`PUT /api/v1/accounts/<id>`: the product makes an account known before its first
checkout (service token), with the Paddle customer it already knows pays for it."""

from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import SERVICE, error_codes, operation
from billing_app.api.schemas import AccountRequestSchema, AccountSchema
from billing_app.auth import is_account_id, require_service_token
from billing_app.errors import CustomerConflict, ValidationFailed
from billing_app.extensions import db
from billing_app.services.customer_links import declare_with_customer

blp = Blueprint("accounts", __name__, url_prefix="/api/v1", description="Accounts")


@blp.before_request
def services_only() -> None:
    require_service_token()


@blp.route("/accounts/<string:account_id>")
class Account(MethodView):
    @blp.doc(security=SERVICE)
    @blp.arguments(AccountRequestSchema)
    @blp.response(200, AccountSchema)
    @operation(blp, "putAccount", 400, 401, 409, 413, 422, 503, codes=error_codes(CustomerConflict))
    def put(self, body, account_id):
        """Create or update an account: its email and name, and the Paddle customer that
        pays for it when the product knows it already (a subscription Paddle has or makes
        for that customer, in its dashboard for instance, then links itself). 409
        `customer_conflict` when another account has that customer, or this one pays as
        another: moving a customer is an operator's decision."""
        if not is_account_id(account_id):
            raise ValidationFailed(
                "Not an account id.", errors={"account_id": ["must be printable, at most 128"]}
            )
        account = declare_with_customer(
            db.session,
            account_id,
            email=body.get("email"),
            name=body.get("name"),
            paddle_customer_id=body.get("paddle_customer_id"),
        )
        db.session.commit()
        return account
