"""The audit log: every operator action and sign-in, newest first."""

from __future__ import annotations

from flask import render_template, request

from billing_app.admin.blueprint import blp
from billing_app.admin.paging import read_id, split_page
from billing_app.extensions import db
from billing_app.services.console import audit

PAGE_SIZE = 100


@blp.route("/audit")
def audit_log():
    entries, last = split_page(
        audit.newest_entries(
            db.session, before_id=read_id(request.args.get("before")), limit=PAGE_SIZE + 1
        ),
        PAGE_SIZE,
    )
    return render_template(
        "admin/audit_log.html", entries=entries, next_before=last.id if last else None
    )
