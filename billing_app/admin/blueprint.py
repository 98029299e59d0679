"""The console's blueprint: every page under /admin needs a signed-in operator (but the
sign-in page and the stylesheet), every form a CSRF token, and every answer the headers
that keep it out of other sites' frames and caches."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from billing_app.admin import sessions
from billing_app.extensions import csrf

blp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

OPEN_ENDPOINTS = ("admin.sign_in", "admin.static")

SECURITY_HEADERS = {
    # Everything the console shows comes from this host; no script runs at all.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@blp.context_processor
def operator_in_templates():
    return {"current_operator": sessions.current_operator}


@blp.before_request
def require_operator():
    if request.endpoint not in OPEN_ENDPOINTS and sessions.current_operator() is None:
        return redirect(url_for("admin.sign_in", next=request.full_path.rstrip("?")), code=303)
    if request.method == "POST":
        csrf.protect()
    return None


@blp.after_request
def secure_headers(response):
    response.headers.update(SECURITY_HEADERS)
    return response


@blp.errorhandler(CSRFError)
def form_not_ours(error: CSRFError):
    message = "This form expired or did not come from this console. Reload the page and try again."
    return render_template("admin/error.html", title="Form refused", message=message), 400


@blp.errorhandler(429)
def too_many_attempts(error):
    message = "Too many attempts from this address. Wait a minute, then try again."
    # An HTML page for a browser; the limiter adds its Retry-After and X-RateLimit headers.
    return render_template("admin/error.html", title="Too many attempts", message=message), 429


@blp.errorhandler(404)
def not_found(error):
    return render_template("admin/error.html", title="Not found", message=error.description), 404
