"""Entitlements: what an account may use now, for the frontend and for other services.

Answered from each process's cache of what the access rule reads (see
`billing_app.services.entitlements.cache`), computed against the clock at every read, with
an ETag so that callers can cache too (`If-None-Match` answers 304 while nothing changed).

The hot path of the service: the single reads write their JSON themselves (the answer is
plain data already; `EntitlementsSchema` documents it and a test holds the two equal) and
count against an in-process token bucket, not Flask-Limiter (see `billing_app.rate_limits`).
"""

import functools
import hashlib
import inspect

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from billing_app.api.common import (
    SERVICE,
    USER,
    USER_READ,
    as_json,
    checked_account_id,
    etag_documented,
    operation,
)
from billing_app.api.schemas import (
    EntitlementsBatchRequestSchema,
    EntitlementsBatchSchema,
    EntitlementsSchema,
)
from billing_app.auth import current_user, require_service_token
from billing_app.rate_limits import count_cached_read
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


def answer_of(account_id: str, headers: dict[str, str] | None = None):
    """The account's entitlements as JSON with an ETag; 304 when the caller has that one."""
    body = as_json(entitlement_answers([account_id])[account_id])
    etag = hashlib.blake2b(body, digest_size=16).hexdigest()
    headers = {**(headers or {}), "ETag": f'"{etag}"'}
    if request.if_none_match.contains(etag):
        return current_app.response_class(status=304, headers=headers)
    return current_app.response_class(body, mimetype="application/json", headers=headers)


@blp.route("/entitlements")
class OwnEntitlements(MethodView):
    @etag_documented
    @blp.doc(security=USER)
    @blp.response(200, EntitlementsSchema)
    @operation(blp, "getEntitlements", *USER_READ)
    def get(self):
        """The caller's access, plan, features and limits."""
        account_id = current_user().account_id
        taken = count_cached_read(account_id)
        return answer_of(account_id, taken.headers() if taken else None)


@blp.route("/accounts/<string:account_id>/entitlements")
class AccountEntitlements(MethodView):
    @etag_documented
    @blp.doc(security=SERVICE)
    @blp.response(200, EntitlementsSchema)
    @operation(blp, "getAccountEntitlements", 401, 422, 503)
    def get(self, account_id):
        """Any account's access, for backend services holding BILLING_SERVICE_TOKEN."""
        require_service_token()
        return answer_of(checked_account_id(account_id))


@blp.route("/entitlements/batch")
class BatchEntitlements(MethodView):
    @blp.doc(security=SERVICE)
    @blp.arguments(EntitlementsBatchRequestSchema)
    @blp.response(200, EntitlementsBatchSchema)
    @operation(blp, "getEntitlementsBatch", 400, 401, 413, 422, 503)
    def post(self, wanted):
        """Several accounts' access in one call (at most 500), for backend services holding
        BILLING_SERVICE_TOKEN; each account once, in the order asked. With
        `Cache-Control: no-cache` they are read from the database, not from the serving
        process's cache: a client that has just read of a change in the events feed gets
        the state after it, even before that process has heard of it."""
        account_ids = list(dict.fromkeys(wanted["account_ids"]))
        answers = entitlement_answers(account_ids, fresh=bool(request.cache_control.no_cache))
        batch = {
            "entitlements": [
                {"account_id": account_id, **answers[account_id]} for account_id in account_ids
            ]
        }
        # Written as the single reads are (up to 500 answers: the schema's dump would cost
        # more than reading them).
        return current_app.response_class(as_json(batch), mimetype="application/json")


def serve_without_the_wrappers(app) -> None:
    """Serve the single reads by their own functions. flask-smorest's decorators have done
    their work (the OpenAPI document, made when the blueprint was registered); at run time
    their wrappers would only pass the answer through, four times over, at a cost the hot
    path notices. Errors still go through the app's one error shape."""
    for view in (OwnEntitlements, AccountEntitlements):
        app.view_functions[f"{blp.name}.{view.__name__}"] = _served_by(inspect.unwrap(view.get))


def _served_by(get):
    @functools.wraps(get)  # a name, as Flask-Limiter looks for one
    def view(**view_args):
        return get(None, **view_args)

    return view
