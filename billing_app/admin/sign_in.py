"""Signing in and out of the console, and recording what operators do."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from billing_app.admin import sessions
from billing_app.admin.blueprint import blp
from billing_app.admin.redirects import console_page
from billing_app.extensions import db
from billing_app.services.console import audit

MAX_NAME_LENGTH = 64


def record(action: str, result: str, *, actor: str | None = None, **facts) -> None:
    """An entry in the audit log for what the operator just did: the signed-in one, unless
    `actor` names who tried (a refused sign-in)."""
    audit.record(
        db.session,
        actor=actor or sessions.current_operator() or "unknown",
        action=action,
        result=result,
        address=request.remote_addr,
        **facts,
    )


def _safe_next(target: str | None) -> str:
    """A page of the console to land on after signing in (never the sign-in page)."""
    page = console_page(target)
    return url_for("admin.overview") if page.startswith("/admin/sign-in") else page


@blp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    next_page = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if sessions.current_operator():
            return redirect(next_page, code=303)
        return render_template("admin/sign_in.html", next_page=next_page)
    name = (request.form.get("name") or "").strip()[:MAX_NAME_LENGTH]
    password = request.form.get("password") or ""
    if not name or not sessions.password_matches(password):
        record("sign_in", "refused", actor=name or "unknown", detail="wrong name or password")
        message = (
            "Sign-in failed: give your name (it goes into the audit log)."
            if not name
            else "Sign-in failed: that is not the console's password."
        )
        return render_template(
            "admin/sign_in.html", next_page=next_page, message=message, name=name
        ), 401
    sessions.sign_in(name)
    record("sign_in", "ok")
    return redirect(next_page, code=303)


@blp.route("/sign-out", methods=["POST"])
def sign_out():
    record("sign_out", "ok")
    sessions.sign_out()
    return redirect(url_for("admin.sign_in"), code=303)
