"""Usage: what accounts used of each meter, and the overage charges with their status."""

from __future__ import annotations

from flask import render_template, request

from billing_app.admin.blueprint import blp
from billing_app.admin.paging import read_id, split_page
from billing_app.extensions import db
from billing_app.models import CHARGE_STATUSES
from billing_app.services.usage import overage
from billing_app.services.usage import recording as usage_service

PAGE_SIZE = 50


@blp.route("/usage")
def usage():
    status = request.args.get("status") or ""
    account_id = (request.args.get("account_id") or "").strip()
    meter = (request.args.get("meter") or "").strip()
    charges, last_charge = split_page(
        overage.newest_charges(
            db.session,
            statuses=[status] if status in CHARGE_STATUSES else [],
            account_id=account_id or None,
            before_id=read_id(request.args.get("charges_before")),
            limit=PAGE_SIZE + 1,
        ),
        PAGE_SIZE,
    )
    counters, last_counter = [], None
    if account_id:
        counters, last_counter = split_page(
            usage_service.counters_of(
                db.session,
                account_id,
                meter=meter or None,
                before_id=read_id(request.args.get("counters_before")),
                limit=PAGE_SIZE + 1,
            ),
            PAGE_SIZE,
        )
    return render_template(
        "admin/usage.html",
        charges=charges,
        counters=counters,
        filters={"status": status, "account_id": account_id, "meter": meter},
        statuses=CHARGE_STATUSES,
        charges_before=last_charge.id if last_charge else None,
        counters_before=last_counter.id if last_counter else None,
    )
