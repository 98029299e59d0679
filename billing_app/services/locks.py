"""Leases in the database, so that a job runs in one process at a time across machines.

A lease is a row (`job_leases`) naming its holder and when it expires. Taking it is one
atomic upsert that succeeds only if nobody holds it or the holder's lease has expired (a
crashed holder's lease simply runs out). The holder renews it while it works. Works the
same on PostgreSQL and SQLite.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from billing_app.db import utcnow
from billing_app.models import JobLease


class LeaseHeld(Exception):
    """Another process holds the lease."""


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(self, engine: Engine, name: str, ttl: timedelta, holder: str | None = None):
        self.engine = engine
        self.name = name
        self.ttl = ttl
        self.holder = holder or new_holder()

    def acquire(self) -> bool:
        now = utcnow()
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement = insert(JobLease).values(
            name=self.name, holder=self.holder, expires_at=now + self.ttl
        )
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": self.holder, "expires_at": now + self.ttl},
            where=(JobLease.expires_at < now) | (JobLease.holder == self.holder),
        ).returning(JobLease.holder)
        with self.engine.begin() as connection:
            return connection.execute(statement).scalar() == self.holder

    def renew(self) -> bool:
        """Extend the lease; False if it was lost (expired and taken by someone else)."""
        with self.engine.begin() as connection:
            result = connection.execute(
                update(JobLease)
                .where(JobLease.name == self.name, JobLease.holder == self.holder)
                .values(expires_at=utcnow() + self.ttl)
            )
            return result.rowcount == 1

    def release(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                delete(JobLease).where(JobLease.name == self.name, JobLease.holder == self.holder)
            )


@contextmanager
def held(engine: Engine, name: str, ttl: timedelta) -> Iterator[Lease]:
    """Hold the lease `name` for the block, or raise LeaseHeld at once."""
    lease = Lease(engine, name, ttl)
    if not lease.acquire():
        raise LeaseHeld(name)
    try:
        yield lease
    finally:
        lease.release()


def serialise_on(session: Session, key: str) -> None:
    """Wait until no other transaction is working under `key`, and hold it to the end of
    ours: two transactions that must each see the other's writes (a subscription and its
    customer, arriving together) then run one after the other. On PostgreSQL, an advisory
    transaction lock; SQLite already runs one writer at a time (`BEGIN IMMEDIATE`)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
