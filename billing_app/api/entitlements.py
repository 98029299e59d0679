"""Entitlements: what an account may use now, for the frontend and for other services.

Answered from each process's cache of what the access rule reads (see
`billing_app.services.entitlements.cache`), computed against the clock at every read, with
an ETag so that callers can cache too (`If-None-Match` answers 304 while nothing changed).
"""

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import SERVICE, USER, USER_READ, operation
from billing_app.api.schemas import (
    EntitlementsBatchRequestSchema,
    EntitlementsBatchSchema,
    EntitlementsSchema,
)
from billing_app.auth import current_user, is_account_id, require_service_token
from billing_app.errors import ValidationFailed
from billing_app.services.entitlements.reads import entitlement_answers

blp = Blueprint(
    "entitlements",
    __name__,
    url_prefix="/api/v1",
    description="May this account use this feature now? From our table, never from Paddle.",
)


@blp.before_request
def service_token_before_the_body() -> None:
    # An anonymous batch request is a 401, whatever body it sends.
    if request.endpoint == f"{blp.name}.{BatchEntitlements.__name__}":
        require_service_token()


@blp.route("/entitlements")
class OwnEntitlements(MethodView):
    @blp.etag
    @blp.doc(security=USER)
    @blp.response(200, EntitlementsSchema)
    @operation(blp, "getEntitlements", *USER_READ)
    def get(self):
        """The caller's access, plan, features and limits."""
        account_id = current_user().account_id
        return entitlement_answers([account_id])[account_id]


@blp.route("/accounts/<string:account_id>/entitlements")
class AccountEntitlements(MethodView):
    @blp.etag
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
        return entitlement_answers([account_id])[account_id]


@blp.route("/entitlements/batch")
class BatchEntitlements(MethodView):
    @blp.doc(security=SERVICE)
    @blp.arguments(EntitlementsBatchRequestSchema)
    @blp.response(200, EntitlementsBatchSchema)
    @operation(blp, "getEntitlementsBatch", 400, 401, 413, 422, 503)
    def post(self, wanted):
        """Several accounts' access in one call (at most 500), for backend services holding
        BILLING_SERVICE_TOKEN; each account once, in the order asked."""
        account_ids = list(dict.fromkeys(wanted["account_ids"]))
        answers = entitlement_answers(account_ids)
        return {
            "entitlements": [
                {"account_id": account_id, **answers[account_id]} for account_id in account_ids
            ]
        }
