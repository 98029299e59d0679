"""Reconciliation runs, their drift, and starting one by hand."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from billing_app import jobs
from billing_app.admin.blueprint import blp
from billing_app.admin.paging import read_id, split_page
from billing_app.admin.sign_in import record
from billing_app.extensions import db
from billing_app.models import ReconcileRun
from billing_app.services import reconcile

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
    """Start a run now (or a dry run), under the same lease as the nightly one."""
    dry_run = request.form.get("dry_run") == "yes"
    action = "reconcile_dry_run" if dry_run else "reconcile"
    app = current_app._get_current_object()
    if not app.config["PADDLE_API_KEY"]:
        record(action, "refused", detail="Paddle is not configured")
        flash("Paddle is not configured (PADDLE_API_KEY): nothing to reconcile against.", "error")
        return redirect(url_for("admin.reconciliation"), code=303)
    db.session.close()  # the run works in sessions of its own; hold nothing meanwhile
    run = jobs.reconcile_in_background(app, dry_run=dry_run)
    app.extensions.setdefault("billing_console_runs", []).append(run)
    messages = {
        "started": ("ok", "Reconciliation started; it runs in the background."),
        "refused": ("error", "Refused: another reconciliation holds the lease. Try once it ends."),
        "failed": ("error", f"Reconciliation could not start: {run.error}."),
        "pending": ("ok", "Reconciliation is starting; reload to see it."),
    }
    category, message = messages[run.outcome]
    record(action, run.outcome, detail=run.error)
    flash(message, category)
    return redirect(url_for("admin.reconciliation"), code=303)
