"""Reconciliation runs, their drift, and starting one by hand."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from billing_app.admin.blueprint import blp
from billing_app.admin.paging import read_id, split_page
from billing_app.admin.sessions import current_operator
from billing_app.admin.sign_in import record
from billing_app.db import utcnow
from billing_app.extensions import db
from billing_app.models import ReconcileRun
from billing_app.services import health, reconcile

PAGE_SIZE = 30
DRIFT_PAGE_SIZE = 200


@blp.route("/reconciliation")
def reconciliation():
    runs, last = split_page(
        reconcile.newest_runs(
            db.session, before_id=read_id(request.args.get("before")), limit=PAGE_SIZE + 1
        ),
        PAGE_SIZE,
    )
    return render_template(
        "admin/reconciliation.html",
        runs=runs,
        next_before=last.id if last else None,
        paddle_configured=bool(current_app.config["PADDLE_API_KEY"]),
        waiting=reconcile.waiting_requests(db.session),
    )


@blp.route("/reconciliation/<int:run_id>")
def reconcile_run(run_id: int):
    run = db.session.get(ReconcileRun, run_id)
    if run is None:
        abort(404, description=f"No reconciliation run #{run_id}.")
    drifts, last = split_page(
        reconcile.drifts_of(
            db.session,
            run.id,
            after_id=read_id(request.args.get("after")) or 0,
            limit=DRIFT_PAGE_SIZE + 1,
        ),
        DRIFT_PAGE_SIZE,
    )
    return render_template(
        "admin/reconcile_run.html",
        run=run,
        drifts=drifts,
        next_after=last.id if last else None,
    )


@blp.route("/reconciliation", methods=["POST"])
def reconcile_now():
    """Ask for a run now (or a dry run): a scheduler process takes it within seconds and
    runs it under the nightly run's lease (a web process may be restarted at any time)."""
    dry_run = request.form.get("dry_run") == "yes"
    action = "reconcile_dry_run" if dry_run else "reconcile"
    if not current_app.config["PADDLE_API_KEY"]:
        record(action, "refused", detail="Paddle is not configured")
        flash("Paddle is not configured (PADDLE_API_KEY): nothing to reconcile against.", "error")
        return redirect(url_for("admin.reconciliation"), code=303)
    asked = reconcile.request_run(db.session, dry_run=dry_run, operator=current_operator())
    db.session.commit()
    record(action, "requested", target=str(asked.id))
    kind = "A dry run" if dry_run else "A reconciliation"
    if health.liveness(db.session, "scheduler", utcnow()).alive:
        flash(
            f"{kind} was requested: a scheduler process starts it within seconds, once no"
            " other run holds the lease.",
            "ok",
        )
    else:
        flash(
            f"{kind} was requested, but no scheduler is running: it starts once one does"
            " (`billing-service billing scheduler`).",
            "error",
        )
    return redirect(url_for("admin.reconciliation"), code=303)
