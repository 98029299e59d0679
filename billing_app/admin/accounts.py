"""Find a customer, and everything about its account on one page."""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template, request, url_for

from billing_app.admin.blueprint import blp
from billing_app.db import utcnow
from billing_app.extensions import db
from billing_app.models import Account
from billing_app.services.billing_history import transactions as transaction_service
from billing_app.services.billing_history.purchases import purchases_of
from billing_app.services.console.customer_search import find_customers
from billing_app.services.console.timeline import account_timeline
from billing_app.services.entitlements.access import judge_access
from billing_app.services.entitlements.reads import access_policy, entitlement_answers
from billing_app.services.subscriptions import actions as subscription_service
from billing_app.services.usage import overage
from billing_app.services.usage import recording as usage

PADDLE_DASHBOARDS = {
    "sandbox": "https://sandbox-vendors.paddle.com",
    "live": "https://vendors.paddle.com",
}
DASHBOARD_PAGES = {"sub_": "subscriptions-v2", "ctm_": "customers-v2", "txn_": "transactions-v2"}


@blp.app_template_global()
def dashboard_url(paddle_id: str | None) -> str | None:
    """The page of a Paddle id in Paddle's dashboard, for the configured environment."""
    if not paddle_id:
        return None
    page = DASHBOARD_PAGES.get(paddle_id[:4])
    if page is None:
        return None
    base = PADDLE_DASHBOARDS[current_app.config["PADDLE_ENVIRONMENT"]]
    return f"{base}/{page}/{paddle_id}"


@blp.route("/find")
def find():
    query = (request.args.get("q") or "").strip()
    matches = find_customers(db.session, query) if query else []
    if len(matches) == 1 and matches[0].account_id:
        return redirect(url_for("admin.account", account_id=matches[0].account_id), code=303)
    return render_template("admin/find.html", query=query, matches=matches)


RECENT_PERIODS = 12


@blp.route("/accounts/<path:account_id>")
def account(account_id: str):
    account = db.session.get(Account, account_id)
    if account is None:
        abort(404, description=f"No account {account_id} is known.")
    subscriptions = subscription_service.account_subscriptions(db.session, account.id)
    current = subscription_service.current_among(subscriptions)
    now = utcnow()
    history = transaction_service.history(
        db.session, account.id, cursor=request.args.get("transactions_after")
    )
    return render_template(
        "admin/account.html",
        account=account,
        subscription=current,
        earlier=[row for row in subscriptions if row is not current],
        verdict=judge_access(current, now, access_policy()),
        entitlements=entitlement_answers([account.id])[account.id],
        purchases=purchases_of(db.session, account.id),
        history=history,
        counters=usage.counters_of(db.session, account.id, limit=RECENT_PERIODS),
        charges=overage.newest_charges(db.session, account_id=account.id, limit=RECENT_PERIODS),
        timeline=account_timeline(db.session, account),
    )
