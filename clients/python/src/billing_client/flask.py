"""Flask: `requires_feature` in front of a view.

    billing = BillingClient(os.environ["BILLING_URL"], os.environ["BILLING_SERVICE_TOKEN"])

    @app.get("/exports")
    @requires_feature(billing, "exports", account=lambda: g.account_id)
    def exports(): ...

Not allowed: `PaymentRequired` (402) when the account pays for nothing (paying would help),
werkzeug's `Forbidden` (403) when it pays but its plan lacks the feature; the app's own
error handlers shape them (`@app.errorhandler(HTTPException)`), as any other abort.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import abort
from werkzeug.exceptions import Forbidden, HTTPException

from billing_client.client import BillingClient

P = ParamSpec("P")
R = TypeVar("R")


class PaymentRequired(HTTPException):
    code = 402
    description = "Payment is required to use this."


def requires_feature(
    client: BillingClient, feature: str, *, account: Callable[[], str | None]
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def gated(*args: P.args, **kwargs: P.kwargs) -> R:
            account_id = account()
            if account_id is None:
                abort(401)
            if not client.allowed(account_id, feature):
                refused = {402: PaymentRequired, 403: Forbidden}[client.refusal_status(account_id)]
                raise refused(f"Your plan does not include {feature}.")
            return view(*args, **kwargs)

        return gated

    return decorate
