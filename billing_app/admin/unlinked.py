"""Subscriptions no account owns yet, linking one to an account (the CLI's rule), and the
Paddle customers that pay for more than one account."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, request, url_for

from billing_app.admin.blueprint import blp
from billing_app.admin.paging import moment_cursor, read_moment_cursor, split_page
from billing_app.admin.sign_in import record
from billing_app.auth import is_account_id
from billing_app.extensions import db
from billing_app.models import Account, Subscription
from billing_app.services.console.customer_search import customer_emails
from billing_app.services.subscriptions import accounts, ownership

PAGE_SIZE = 50


@blp.route("/unlinked")
def unlinked():
    after = read_moment_cursor(request.args.get("after"), key=uuid.UUID)
    rows, last = split_page(
        ownership.unlinked_subscriptions(db.session, after=after, limit=PAGE_SIZE + 1),
        PAGE_SIZE,
    )
    emails = customer_emails(db.session, [row.paddle_customer_id for row in rows])
    next_after = moment_cursor(last.created_at, last.id) if last else None
    shared = ownership.shared_customers(db.session) if after is None else []
    reasons = {row.id: ownership.why_unlinked(db.session, row) for row in rows}
    return render_template(
        "admin/unlinked.html",
        rows=rows,
        reasons=reasons,
        emails=emails,
        next_after=next_after,
        shared=shared,
    )


def _unlinked_subscription(paddle_subscription_id: str) -> Subscription:
    subscription = ownership.subscription_known_as(db.session, paddle_subscription_id)
    if subscription is None:
        abort(404, description=f"No subscription {paddle_subscription_id} is known.")
    return subscription


@blp.route("/unlinked/<paddle_subscription_id>/link", methods=["GET"])
def link_subscription(paddle_subscription_id: str):
    """The confirmation: what would be linked to what, before anything changes."""
    subscription = _unlinked_subscription(paddle_subscription_id)
    account_id = (request.args.get("account_id") or "").strip()
    account = db.session.get(Account, account_id) if is_account_id(account_id) else None
    return render_template(
        "admin/link.html",
        subscription=subscription,
        email=customer_emails(db.session, [subscription.paddle_customer_id]).get(
            subscription.paddle_customer_id
        ),
        account_id=account_id,
        valid_account_id=is_account_id(account_id),
        account=account,
        live=accounts.live_subscription(db.session, account_id) if account else None,
    )


@blp.route("/unlinked/<paddle_subscription_id>/link", methods=["POST"])
def confirm_link(paddle_subscription_id: str):
    account_id = (request.form.get("account_id") or "").strip()
    if not is_account_id(account_id):
        flash("Give the account id to link to.", "error")
        return redirect(url_for("admin.unlinked"), code=303)
    try:
        ownership.link_subscription(db.session, paddle_subscription_id, account_id)
        db.session.commit()
    except ownership.LinkRefused as refusal:
        db.session.rollback()
        record("link_subscription", "refused", target=paddle_subscription_id, detail=str(refusal))
        flash(f"Not linked: {refusal}", "error")
        return redirect(url_for("admin.unlinked"), code=303)
    record("link_subscription", "ok", target=paddle_subscription_id, account_id=account_id)
    flash(f"{paddle_subscription_id} now belongs to {account_id}.", "ok")
    return redirect(url_for("admin.account", account_id=account_id), code=303)
