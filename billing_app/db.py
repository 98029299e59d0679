"""The declarative base, the constraint naming convention and the column types we share."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, String, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

# Alembic needs named constraints to alter them (SQLite batch migrations above all).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# A Paddle id that Paddle lists in order: compared byte by byte, as Paddle sorts them, so
# that a range of ids is an index range. SQLite's default collation already is bytes; on
# PostgreSQL a database's locale collation would force a COLLATE into every range query,
# and the unique index, built in the locale's order, could not serve it.
PaddleListedId = String(64).with_variant(String(64, collation="C"), "postgresql")


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database.

    PostgreSQL stores `timestamptz`; SQLite has no time zones and hands back naive values,
    which we mark as UTC on the way out. Naive values are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def is_postgresql(connection: Connection | Session) -> bool:
    bind = connection.get_bind() if hasattr(connection, "get_bind") else connection  # a Session
    return bind.dialect.name == "postgresql"


def upsert_insert(connection: Connection | Session):
    """The dialect's INSERT, the one that knows ON CONFLICT (PostgreSQL's or SQLite's)."""
    return postgresql.insert if is_postgresql(connection) else sqlite.insert


def lock_or_create(session: Session, model, key: str, value: Any, **placeholder: Any):
    """The `model` row whose unique `key` is `value`, created from `placeholder` on first
    sight (two sessions creating it at once both end with the one row), locked for update."""
    column = getattr(model, key)
    now = utcnow()
    session.execute(
        upsert_insert(session)(model)
        .values({key: value, "created_at": now, "updated_at": now, **placeholder})
        .on_conflict_do_nothing(index_elements=[key])
    )
    return session.scalars(
        select(model)
        .where(column == value)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


# What a database answers when two transactions got in each other's way: nothing is wrong
# with the work, and it succeeds if done again a moment later.
_CONFLICT_STATES = {
    "40P01",  # deadlock_detected
    "40001",  # serialization_failure
    "55P03",  # lock_not_available
}


def is_conflict(error: BaseException) -> bool:
    """A deadlock, a serialisation failure or a lock not granted (PostgreSQL), or the
    database locked (SQLite): worth trying again at once rather than after a backoff."""
    reason = getattr(error, "orig", None) or error
    if getattr(reason, "sqlstate", None) in _CONFLICT_STATES:
        return True
    return type(reason).__module__.startswith("sqlite3") and "database is locked" in str(reason)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@contextmanager
def single_statement(engine: Engine) -> Iterator[Connection]:
    """A connection whose every statement commits on its own: no BEGIN, no COMMIT, two
    round trips saved on the hottest paths (an entitlement read, a webhook's insert)."""
    with engine.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def one_snapshot(engine: Engine) -> Iterator[Session]:
    """A session for a long read that blocks no writer: on PostgreSQL one repeatable-read,
    read-only transaction (every statement sees the same moment); on SQLite statements
    that take no write lock (a transaction there would hold it for the whole read)."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        else:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        with Session(bind=connection) as session:
            yield session


def ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """Before a connection that sat idle in the pool for `idle_seconds` is used, ask the
    database whether it is still there; a dead one is replaced (the pool tries another),
    so a database restart while the service was quiet costs no request. A busy
    connection skips the round trip: if the database dies under load, the first
    statement's disconnect error invalidates the whole pool at once."""

    @event.listens_for(engine, "checkin")
    def remember_checkin(dbapi_connection, record) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, record, proxy) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return  # new, or in use a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:
            alive = False
        if not alive:
            raise DisconnectionError("connection lost while idle in the pool")
