"""Who is signed in to the console: a signed session cookie, scoped to /admin, that holds
the operator's name, since when, and a fingerprint of the password hash it was signed in
with (changing ADMIN_PASSWORD_HASH signs everyone out)."""

from __future__ import annotations

import hashlib
import time

from flask import Flask, current_app, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.security import check_password_hash

COOKIE_NAME = "billing_console"


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, marked Secure whenever the request came over HTTPS
    (or always, with ADMIN_COOKIE_SECURE behind a proxy that terminates TLS)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def configure_sessions(app: Flask) -> None:
    password_hash = app.config["ADMIN_PASSWORD_HASH"]
    app.secret_key = app.config["ADMIN_SESSION_SECRET"] or _derived_secret(password_hash)
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_PATH="/admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["ADMIN_COOKIE_SECURE"],
        PERMANENT_SESSION_LIFETIME=app.config["ADMIN_SESSION_HOURS"] * 3600,
        WTF_CSRF_CHECK_DEFAULT=False,  # the console's blueprint asks for it (the API has none)
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the session that holds it
    )


def _derived_secret(password_hash: str) -> str:
    # Every process that knows the password hash signs alike, with no extra setting.
    return hashlib.sha256(b"billing-console-session\0" + password_hash.encode()).hexdigest()


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def password_matches(password: str) -> bool:
    return check_password_hash(current_app.config["ADMIN_PASSWORD_HASH"], password)


def sign_in(operator: str) -> None:
    session.clear()  # nothing from before the sign-in carries over
    session.permanent = True
    session.update(
        operator=operator,
        since=int(time.time()),
        key=_fingerprint(current_app.config["ADMIN_PASSWORD_HASH"]),
    )


def sign_out() -> None:
    session.clear()


def current_operator() -> str | None:
    """The signed-in operator's name, or None (never signed in, expired, or signed in
    with a password that has since changed)."""
    operator, since = session.get("operator"), session.get("since")
    if not operator or not isinstance(since, int):
        return None
    if session.get("key") != _fingerprint(current_app.config["ADMIN_PASSWORD_HASH"]):
        return None
    if time.time() - since > current_app.config["ADMIN_SESSION_HOURS"] * 3600:
        return None
    return operator
