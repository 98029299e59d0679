"""The operator console at /admin: server-rendered pages for support and operations.

Off unless ADMIN_PASSWORD_HASH is set. Each module holds one room of it; the queries it
shows live in billing_app.services, shared with the CLI where the CLI does the same."""

from __future__ import annotations

from flask import Flask


def register_admin(app: Flask) -> None:
    if not app.config["ADMIN_PASSWORD_HASH"]:
        return
    from billing_app.admin import (  # noqa: F401  (each module adds its pages to the blueprint)
        accounts,
        audit_log,
        data_requests,
        events,
        inbox,
        overview,
        reconciliation,
        sign_in,
        unlinked,
        usage,
    )
    from billing_app.admin.blueprint import blp
    from billing_app.admin.formatting import register_filters
    from billing_app.admin.sessions import configure_sessions
    from billing_app.extensions import csrf

    configure_sessions(app)
    csrf.init_app(app)
    register_filters(app)
    app.register_blueprint(blp)
