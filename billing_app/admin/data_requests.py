"""A customer's data on request, from the account page: download what is held about the
account, or erase its personal data after typing the account id to confirm."""

from __future__ import annotations

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from billing_app.admin import sessions
from billing_app.admin.blueprint import blp
from billing_app.admin.sign_in import record
from billing_app.db import utcnow
from billing_app.errors import BillingError
from billing_app.extensions import db
from billing_app.models import Account
from billing_app.services.data_requests import erasure
from billing_app.services.data_requests.export import export


@blp.route("/accounts/<path:account_id>/export")
def export_account(account_id: str):
    _known(account_id)
    record("export_account", "ok", target=account_id, account_id=account_id)
    headers = {"Content-Disposition": f'attachment; filename="{account_id}-export.json"'}
    pieces = export(db.engine, account_id)
    return Response(pieces, mimetype="application/json", headers=headers)


@blp.route("/accounts/<path:account_id>/erase", methods=["GET"])
def erase_account(account_id: str):
    """The confirmation: what the erasure would change, counted by a dry run."""
    _known(account_id)
    try:
        preview = erasure.erase(
            db.session, account_id, erased_by="preview", now=utcnow(), dry_run=True
        )
        refusal = None
    except BillingError as refused:
        preview, refusal = None, refused.message
    db.session.rollback()
    return render_template(
        "admin/erase.html", account_id=account_id, preview=preview, refusal=refusal
    )


@blp.route("/accounts/<path:account_id>/erase", methods=["POST"])
def confirm_erase(account_id: str):
    _known(account_id)
    if (request.form.get("confirm") or "").strip() != account_id:
        flash("Type the account id exactly to confirm the erasure; nothing was erased.", "error")
        return redirect(url_for("admin.erase_account", account_id=account_id), code=303)
    operator = sessions.current_operator() or "unknown"
    try:
        report = erasure.erase(db.session, account_id, erased_by=operator, now=utcnow())
        db.session.commit()
    except BillingError as refused:
        db.session.rollback()
        record(
            "erase_account",
            "refused",
            target=account_id,
            account_id=account_id,
            detail=refused.message,
        )
        flash(f"Not erased: {refused.message}", "error")
        return redirect(url_for("admin.account", account_id=account_id), code=303)
    flash(f"{account_id}: personal data erased ({report.total} rows changed).", "ok")
    return redirect(url_for("admin.account", account_id=account_id), code=303)


def _known(account_id: str) -> None:
    if db.session.get(Account, account_id) is None:
        abort(404, description=f"No account {account_id} is known.")
