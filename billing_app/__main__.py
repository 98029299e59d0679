"""`billing-service` (and `python -m billing_app`): Flask's command line for the app the
environment configures: `billing-service db upgrade`, `billing-service billing plans import
FILE`, `billing-service admin hash-password`, ...

A problem with the database or the configuration is one `Error:` line that says what is
wrong and what to do, and a non-zero exit; never a traceback."""

from __future__ import annotations

import os
import sqlite3

import click
from flask.cli import FlaskGroup
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from billing_app import create_app
from billing_app.config import ConfigError

UPGRADE = "run `billing-service db upgrade`"
URL_SHAPE = "postgresql+psycopg://USER@HOST:5432/NAME or sqlite:///PATH"


def _where() -> str:
    """The database's host and port (or SQLite file): never the user or password."""
    try:
        url = make_url(os.environ.get("DATABASE_URL") or "")
    except ArgumentError:
        return "DATABASE_URL"
    if url.get_backend_name() == "sqlite":
        return f"the SQLite file {url.database}"
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _database(driver_error: Exception) -> str:
    text = str(driver_error).lower()
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return f"the database has no schema, or an older one: {UPGRADE}"
    if "database" in text and "does not exist" in text:
        name = make_url(os.environ["DATABASE_URL"]).database
        return f'database "{name}" does not exist on {_where()}: create it, then {UPGRADE}'
    if "unable to open database file" in text:
        return f"cannot open {_where()}: does its directory exist, and may we write there?"
    reasons = {
        "refused": "connection refused (is the server running?)",
        "password authentication failed": "the server refused the user or password",
        "translate host name": "unknown host",
        "name or service not known": "unknown host",
        "timeout": "no answer in time",
        "timed out": "no answer in time",
        "too many clients": "the server has no connection to spare",
    }
    reason = next((why for clue, why in reasons.items() if clue in text), None)
    if reason:
        return f"cannot connect to the database at {_where()}: {reason}"
    return f"the database at {_where()} failed: {type(driver_error).__name__}"


def explain(error: Exception) -> str | None:
    """One line for a problem an operator can fix; None for a bug (its traceback helps)."""
    if isinstance(error, ConfigError):
        return f"{error}; fix the environment variable"
    if isinstance(error, (ArgumentError, NoSuchModuleError)):
        return f"DATABASE_URL is not a database URL we can use: give {URL_SHAPE}"
    if isinstance(error, DBAPIError) and error.orig is not None:
        return _database(error.orig)
    if isinstance(error, sqlite3.Error):  # the entitlement cache's own connection
        return _database(error)
    return None


OPERATORS_PROBLEMS = (ConfigError, ArgumentError, NoSuchModuleError, DBAPIError, sqlite3.Error)


class BillingCommands(FlaskGroup):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OPERATORS_PROBLEMS as error:
            message = explain(error)
            if message is None:
                raise
            raise click.ClickException(message) from None


main = BillingCommands(create_app=lambda: create_app())

if __name__ == "__main__":
    main()
