"""Usage: what accounts used of each meter, and the overage charges with their status."""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import select

from billing_app.admin.blueprint import blp
from billing_app.admin.paging import read_id
from billing_app.extensions import db
from billing_app.models import CHARGE_STATUSES, UsageCharge, UsageCounter

PAGE_SIZE = 50


def _page(query, key, before: int | None):
    if before is not None:
        query = query.where(key < before)
    rows = list(db.session.scalars(query.order_by(key.desc()).limit(PAGE_SIZE + 1)))
    return rows[:PAGE_SIZE], (rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None)


@blp.route("/usage")
def usage():
    status = request.args.get("status") or ""
    account_id = (request.args.get("account_id") or "").strip()
    meter = (request.args.get("meter") or "").strip()
    charges_query = select(UsageCharge)
    if status in CHARGE_STATUSES:
        charges_query = charges_query.where(UsageCharge.status == status)
    if account_id:
        charges_query = charges_query.where(UsageCharge.account_id == account_id)
    charges, charges_before = _page(
        charges_query, UsageCharge.id, read_id(request.args.get("charges_before"))
    )
    counters, counters_before = [], None
    if account_id:
        counters_query = select(UsageCounter).where(UsageCounter.account_id == account_id)
        if meter:
            counters_query = counters_query.where(UsageCounter.meter == meter)
        counters, counters_before = _page(
            counters_query, UsageCounter.id, read_id(request.args.get("counters_before"))
        )
    return render_template(
        "admin/usage.html",
        charges=charges,
        counters=counters,
        filters={"status": status, "account_id": account_id, "meter": meter},
        statuses=CHARGE_STATUSES,
        charges_before=charges_before,
        counters_before=counters_before,
    )
