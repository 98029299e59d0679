"""Who is signed in to the console: a signed session cookie, scoped to /admin, that holds
the operator's name, since when, a fingerprint of the password hash it was signed in with
(changing ADMIN_PASSWORD_HASH signs everyone out), and the id of its sign-in, kept in the
database (`console_sessions`) so that signing out revokes it for every copy of the cookie."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import delete
from werkzeug.security import check_password_hash

from billing_app.db import utcnow
from billing_app.extensions import db
from billing_app.models import ConsoleSession

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
    """A new sign-in, kept in the database, named in a fresh cookie. Commits."""
    session.clear()  # nothing from before the sign-in carries over
    session.permanent = True
    lifetime = timedelta(hours=current_app.config["ADMIN_SESSION_HOURS"])
    kept = ConsoleSession(
        id=secrets.token_urlsafe(32), operator=operator, expires_at=utcnow() + lifetime
    )
    db.session.add(kept)
    # Sign-ins long over are forgotten as new ones come (the table stays small).
    db.session.execute(
        delete(ConsoleSession).where(ConsoleSession.expires_at < utcnow() - lifetime)
    )
    db.session.commit()
    g.pop("console_operator", None)
    session.update(
        operator=operator,
        since=int(time.time()),
        key=_fingerprint(current_app.config["ADMIN_PASSWORD_HASH"]),
        sid=kept.id,
    )


def sign_out() -> None:
    """Revoke this sign-in (every copy of its cookie), then forget the cookie. Commits."""
    kept = db.session.get(ConsoleSession, session.get("sid") or "")
    if kept is not None and kept.revoked_at is None:
        kept.revoked_at = utcnow()
        db.session.commit()
    g.pop("console_operator", None)
    session.clear()


def current_operator() -> str | None:
    """The signed-in operator's name, or None (never signed in, signed out, expired, or
    signed in with a password that has since changed). Asked once per request."""
    if "console_operator" not in g:
        g.console_operator = _operator_of_cookie()
    return g.console_operator


def _operator_of_cookie() -> str | None:
    operator, since, sid = session.get("operator"), session.get("since"), session.get("sid")
    if not operator or not isinstance(since, int) or not isinstance(sid, str):
        return None
    if session.get("key") != _fingerprint(current_app.config["ADMIN_PASSWORD_HASH"]):
        return None
    if time.time() - since > current_app.config["ADMIN_SESSION_HOURS"] * 3600:
        return None
    kept = db.session.get(ConsoleSession, sid)
    if kept is None or kept.revoked_at is not None or kept.expires_at <= utcnow():
        return None
    return operator
