"""Shared fixtures: the app on a migrated database, isolation between tests, and Paddle's
API faked at the HTTP edge. What tests build with is in `tests/helpers/`.

The database is `TEST_DATABASE_URL` (a throwaway SQLite file when unset). Its schema is
built once per session by running the migrations, and every table is emptied after each
test, so tests may commit, and may race each other's connections, as production does.
"""

from __future__ import annotations

import os

import pytest
import responses
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from billing_app import create_app
from billing_app.extensions import db
from billing_app.worker import IN_PROCESS_WORKERS
from tests.helpers.config import (
    IN_CI,
    JWT_SECRET,
    PADDLE_API_KEY,
    PADDLE_BASE,
    SERVICE_TOKEN,
    WEBHOOK_SECRET,
)
from tests.helpers.stack import serving


def _database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return _database_url(tmp_path_factory)


def base_config(database_url: str) -> dict:
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "PADDLE_API_KEY": PADDLE_API_KEY,
        "PADDLE_API_BASE_URL": PADDLE_BASE,
        "PADDLE_WEBHOOK_SECRETS": [WEBHOOK_SECRET],
        "AUTH_JWT_SECRET": JWT_SECRET,
        "BILLING_SERVICE_TOKEN": SERVICE_TOKEN,
        "CHECKOUT_URL": "https://app.example.com/checkout",
        # Reconciliation's walk of recent transactions is tested on its own
        # (test_reconcile_transactions); Paddle fakes of the subscription walk list none.
        "RECONCILE_TRANSACTION_DAYS": 0,
    }


@pytest.fixture(scope="session")
def _migrated(database_url):
    app = create_app(base_config(database_url))
    with app.app_context():
        if is_postgres(database_url):
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()
    return database_url


@pytest.fixture
def make_app(_migrated):
    """Build an app on the test database with some settings overridden."""
    apps = []

    def build(**overrides):
        app = create_app({**base_config(_migrated), **overrides})
        apps.append(app)
        return app

    yield build
    for app in apps:
        for name in IN_PROCESS_WORKERS:  # threads of a discarded app stop with it
            if name in app.extensions:
                app.extensions[name].shutdown()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    app = make_app()
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    return db.session


@pytest.fixture
def paddle():
    """Paddle's API at `PADDLE_BASE`, answering only what the test registers; a call it did
    not expect fails the test, and so does a registered call never made."""
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def served(app):
    with serving(app) as url:
        yield url


@pytest.fixture(scope="session")
def _cleanup_engine(_migrated):
    engine = create_engine(_migrated, pool_pre_ping=True)  # survives tests that kill backends
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _empty_tables(request):
    uses_database = "_migrated" in request.fixturenames
    engine = request.getfixturevalue("_cleanup_engine") if uses_database else None
    yield
    if engine is None:
        return
    tables = [table.name for table in reversed(db.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (our own names)


def pytest_collection_modifyitems(config, items):
    if is_postgres(os.environ.get("TEST_DATABASE_URL", "")):
        return
    for item in items:
        if "postgres" not in item.keywords:
            continue
        if IN_CI:
            # In CI a PostgreSQL test never passes by skipping.
            item.add_marker(pytest.mark.usefixtures("_require_postgres"))
        else:
            item.add_marker(pytest.mark.skip(reason="set TEST_DATABASE_URL to a PostgreSQL URL"))


@pytest.fixture
def _require_postgres():
    pytest.fail("this test needs PostgreSQL: set TEST_DATABASE_URL to a postgresql+psycopg URL")
