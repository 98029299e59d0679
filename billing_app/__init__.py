"""The Flask application factory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from billing_app.api.docs import API_SETTINGS
from billing_app.config import load_config
from billing_app.db import ping_idle_connections


def migrations_dir() -> Path:
    """The Alembic scripts: `migrations/` in the repository, `billing_app/migrations` once
    installed from a wheel (see setup.cfg's package_dir)."""
    installed = Path(__file__).resolve().parent / "migrations"
    return (
        installed if installed.is_dir() else Path(__file__).resolve().parent.parent / "migrations"
    )


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment; `config` overrides any setting (tests)."""
    app = Flask(__name__)
    register_config(app, config)
    register_proxies(app)
    register_logging(app)
    register_extensions(app)
    register_api(app)
    register_admin(app)
    register_rate_limits(app)
    register_cli(app)
    register_scheduler(app)
    register_entitlement_cache(app)
    register_webhook_worker(app)
    return app


def register_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    app.config.update(load_config())
    app.config.update(overrides or {})
    database_url = app.config["DATABASE_URL"] or default_sqlite_url()
    app.config["DATABASE_URL"] = database_url
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(database_url)
    # The API's bodies are tiny; the webhook endpoint sets its own limit per request.
    app.config["MAX_CONTENT_LENGTH"] = app.config["API_MAX_BODY_BYTES"]
    app.config.update(API_SETTINGS)


def register_proxies(app: Flask) -> None:
    """Behind `TRUSTED_PROXIES` proxies, a request's address (the per-address limits, the
    pricing page's location) and scheme are what the nearest of them was told; with none,
    forwarded headers are ignored (anyone can send them)."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)


def default_sqlite_url() -> str:
    # In the directory the service is started from, installed or not: Flask's own instance
    # folder would be inside the virtual environment once the package is installed.
    directory = Path.cwd() / "instance"
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / 'billing.db'}"


POOL_PING_IDLE_SECONDS = 1.0


def engine_options(database_url: str) -> dict[str, Any]:
    if database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    # No pre-ping on every checkout (a round trip each): `ping_idle_connections` pings only
    # connections that sat idle, see `register_extensions`.
    return {"pool_size": 10, "max_overflow": 10, "pool_recycle": 1800}


def _is_sqlite(dbapi_connection) -> bool:
    return type(dbapi_connection).__module__.startswith("sqlite3")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite enforces foreign keys only when asked, per connection; and Python's driver
    must leave transactions to SQLAlchemy (`_sqlite_begin`), or a SAVEPOINT's release would
    commit."""
    if _is_sqlite(dbapi_connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection) -> None:
    # IMMEDIATE takes SQLite's write lock up front: a transaction that reads and then writes
    # waits its turn (busy timeout) instead of failing when another process wrote meanwhile.
    autocommit = connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    if connection.dialect.name == "sqlite" and not autocommit:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def register_logging(app: Flask) -> None:
    from billing_app.metrics import COUNTING
    from billing_app.request_log import configure_logging, register_request_log

    COUNTING["per_request"] = app.config["METRICS_ENABLED"]
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    register_request_log(app)


def register_extensions(app: Flask) -> None:
    from billing_app import models  # noqa: F401  (the tables must be known to the metadata)
    from billing_app.extensions import db, migrate
    from billing_app.services.events import outbox

    db.init_app(app)
    outbox.install()
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            ping_idle_connections(db.engine, POOL_PING_IDLE_SECONDS)
    migrate.init_app(app, db, directory=str(migrations_dir()), render_as_batch=True)

    @app.teardown_request
    def discard_uncommitted(exception: BaseException | None) -> None:
        # A request that failed leaves nothing behind, even inside a longer app context.
        # (A request that never used the ORM session, the hot reads, has none to roll back.)
        if db.session.registry.has():
            db.session.rollback()


def register_admin(app: Flask) -> None:
    from billing_app.admin import register_admin as register_console

    register_console(app)


def register_rate_limits(app: Flask) -> None:
    from billing_app import rate_limits

    app.extensions["billing_limiter"] = rate_limits.register_rate_limits(app)


def register_api(app: Flask) -> None:
    from billing_app.api import docs, register_blueprints
    from billing_app.extensions import api
    from billing_app.paddle import register_paddle

    api.init_app(app)
    register_blueprints(app)
    app.register_blueprint(docs.blp)
    register_paddle(app)


def register_scheduler(app: Flask) -> None:
    """One-process setups run the schedule inside the web process."""
    if app.config["SCHEDULER_ENABLED"] and not app.config.get("TESTING"):
        from billing_app.scheduler import start_in_background

        app.extensions["billing_scheduler"] = start_in_background(app)


def register_entitlement_cache(app: Flask) -> None:
    """Each process caches what entitlement reads need, and learns of changes from the
    database: PostgreSQL's announcements (a listener thread per process; tests start it
    themselves, and until it listens the cache is bypassed), or SQLite's data version."""
    from billing_app.extensions import db
    from billing_app.notifications import listener_of
    from billing_app.services.entitlements import cache as caching

    cache = caching.EntitlementCache(
        app.config["ENTITLEMENTS_CACHE_SIZE"], app.config["ENTITLEMENTS_CACHE_TTL_SECONDS"]
    )
    with app.app_context():
        engine = db.engine
    change_check = None
    if engine.dialect.name == "postgresql":
        listener = listener_of(app)
        caching.listen_for_changes(listener, cache)
        if not app.config.get("TESTING"):
            app.before_request(listener.ensure_running)
    elif engine.url.database and engine.url.database != ":memory:":
        change_check = caching.SqliteChangeCheck(engine.url.database, cache)
    else:
        cache.suspend()  # an in-memory database: no other connection sees it anyway
    app.extensions["billing_entitlements"] = caching.CachedAccessFacts(engine, cache, change_check)


def register_webhook_worker(app: Flask) -> None:
    """Tests apply deliveries themselves (deterministically), so no thread under TESTING."""
    if not app.config.get("TESTING"):
        from billing_app.worker import register_in_process_worker

        register_in_process_worker(app)


def register_cli(app: Flask) -> None:
    from billing_app.accounts_cli import accounts_cli
    from billing_app.cli import admin_cli, billing_cli
    from billing_app.events_cli import events_cli

    billing_cli.add_command(events_cli)
    billing_cli.add_command(accounts_cli)
    app.cli.add_command(billing_cli)
    app.cli.add_command(admin_cli)
