"""The front page: the state of the service at a glance."""

from __future__ import annotations

from flask import current_app, render_template

from billing_app.admin.blueprint import blp
from billing_app.db import utcnow
from billing_app.extensions import db
from billing_app.scheduler import next_runs
from billing_app.services import health
from billing_app.services.console import overview as figures
from billing_app.services.entitlements.reads import access_policy


@blp.route("/")
def overview():
    now = utcnow()
    return render_template(
        "admin/overview.html",
        figures=figures.overview(db.session, now, access_policy()),
        schedule=next_runs(current_app, now),
        scheduler=health.liveness(db.session, "scheduler", now),
        now=now,
        missing_settings={
            kind: health.missing_settings(current_app.config, kind) for kind in ("web", "scheduler")
        },
    )
