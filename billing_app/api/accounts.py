"""Accounts, for the product's services (service token): `PUT /api/v1/accounts/<id>`
makes an account known before its first checkout, with the Paddle customer it already
knows pays for it; `GET .../export` and `POST .../erase` answer a customer's data
requests."""

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import SERVICE, checked_account_id, error_codes, operation
from billing_app.api.schemas import (
    AccountExportSchema,
    AccountRequestSchema,
    AccountSchema,
    ErasureRequestSchema,
    ErasureSchema,
)
from billing_app.auth import require_service_token
from billing_app.db import utcnow
from billing_app.errors import AccountInUse, AccountNotFound, CustomerConflict
from billing_app.extensions import db
from billing_app.services.customer_links import declare_with_customer
from billing_app.services.data_requests import erasure
from billing_app.services.data_requests.export import export

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
        account = declare_with_customer(
            db.session,
            checked_account_id(account_id),
            email=body.get("email"),
            name=body.get("name"),
            paddle_customer_id=body.get("paddle_customer_id"),
        )
        db.session.commit()
        return account


@blp.route("/accounts/<string:account_id>/export")
class AccountExport(MethodView):
    @blp.doc(security=SERVICE)
    @blp.response(200, AccountExportSchema)
    @operation(blp, "exportAccount", 401, 422, 503)
    def get(self, account_id):
        """Everything the service holds about the account, as one JSON document (a data
        request): its details, subscriptions, transactions, purchases, usage, Paddle's
        webhooks about it, the events told about it and the console's actions. Written as
        it is read: a large account streams."""
        checked_account_id(account_id)
        # Read from its own snapshot: the pieces need no request context as they stream.
        pieces = export(db.engine, account_id)
        headers = {"Content-Disposition": f'attachment; filename="{account_id}-export.json"'}
        return Response(pieces, mimetype="application/json", headers=headers)


@blp.route("/accounts/<string:account_id>/erase")
class AccountErasure(MethodView):
    @blp.doc(security=SERVICE)
    @blp.arguments(ErasureRequestSchema)
    @blp.response(200, ErasureSchema)
    @operation(
        blp,
        "eraseAccount",
        400,
        401,
        404,
        409,
        413,
        422,
        503,
        codes=error_codes(AccountNotFound, AccountInUse),
    )
    def post(self, body, account_id):
        """Erase the account's personal data, keeping what the books need (a data request;
        idempotent, audited). `dry_run` counts what would change. 409 `account_in_use`
        while a subscription still gives access; 404 `account_not_found` when nothing is
        held about it."""
        report = erasure.erase(
            db.session,
            checked_account_id(account_id),
            erased_by=body["requested_by"],
            now=utcnow(),
            dry_run=body["dry_run"],
        )
        if body["dry_run"]:
            db.session.rollback()
        else:
            db.session.commit()
        return {
            "account_id": report.account_id,
            "dry_run": report.dry_run,
            "changed": report.changed,
            "total": report.total,
        }
