"""Leases in the database, so that a job runs in one process at a time across machines.

A lease is a row (`job_leases`) naming its holder, when it was taken and when it expires.
Taking it is one atomic upsert that succeeds only if nobody holds it or the holder's lease
has expired (a crashed holder's lease simply runs out). Leases are short (`JOB_LEASE_SECONDS`,
a minute by default) and a heartbeat thread renews them while the holder works, so a holder
killed with -9 frees its job within a minute. Works the same on PostgreSQL and SQLite.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from billing_app.db import utcnow
from billing_app.models import JobLease

log = logging.getLogger(__name__)


class LeaseHeld(Exception):
    """Another process holds the lease."""

    def __init__(self, name: str, holder: str | None = None, held_for: timedelta | None = None):
        self.name, self.holder, self.held_for = name, holder, held_for
        age = f" for {held_for.total_seconds():.0f}s" if held_for is not None else ""
        super().__init__(f"lease {name!r} is held by {holder or 'another process'}{age}")


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """A short lease, renewed by a heartbeat while its holder works (see `held`), so that a
    holder killed mid-work frees the job within one `ttl`."""

    def __init__(self, engine: Engine, name: str, ttl: timedelta, holder: str | None = None):
        self.engine = engine
        self.name = name
        self.ttl = ttl
        self.holder = holder or new_holder()
        self.expires_at: datetime | None = None
        self.lost = False  # set when a renewal found the lease taken, or could not renew in time

    def acquire(self) -> bool:
        now = utcnow()
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        values = {"holder": self.holder, "acquired_at": now, "expires_at": now + self.ttl}
        statement = insert(JobLease).values(name=self.name, **values)
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_=values,
            where=(JobLease.expires_at < now) | (JobLease.holder == self.holder),
        ).returning(JobLease.holder)
        with self.engine.begin() as connection:
            taken = connection.execute(statement).scalar() == self.holder
        if taken:
            self.expires_at = now + self.ttl
        return taken

    def current_holder(self) -> tuple[str | None, timedelta | None]:
        """Who holds the lease now, and for how long."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(JobLease.holder, JobLease.acquired_at).where(JobLease.name == self.name)
            ).first()
        if row is None:
            return None, None
        return row.holder, (utcnow() - row.acquired_at) if row.acquired_at else None

    def renew(self) -> bool:
        """Extend the lease; False if it was lost (expired and taken by someone else)."""
        expires_at = utcnow() + self.ttl
        with self.engine.begin() as connection:
            result = connection.execute(
                update(JobLease)
                .where(JobLease.name == self.name, JobLease.holder == self.holder)
                .values(expires_at=expires_at)
            )
        if result.rowcount == 1:
            self.expires_at = expires_at
            return True
        return False

    def release(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                delete(JobLease).where(JobLease.name == self.name, JobLease.holder == self.holder)
            )

    def keep(self) -> bool:
        """One beat of the heartbeat: renew; False once the lease is lost (taken by another
        process, or run out while the database would not answer)."""
        try:
            if self.renew():
                return True
            log.error("lease %r was taken by another process", self.name)
        except SQLAlchemyError as error:
            log.warning("could not renew lease %r: %s", self.name, type(error).__name__)
            if self.expires_at is not None and utcnow() < self.expires_at:
                return True
            log.error("lease %r ran out before it could be renewed", self.name)
        self.lost = True
        return False


class Heartbeat:
    """Calls `beat` every `every` seconds, in a thread of its own, while work goes on; until
    stopped, or until `beat` says False (what it kept alive is lost)."""

    def __init__(self, name: str, every: float, beat: Callable[[], bool]) -> None:
        self.every = every
        self.beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if not self.beat():
                return


@contextmanager
def held(engine: Engine, name: str, ttl: timedelta) -> Iterator[Lease]:
    """Hold the lease `name` for the block, renewed by a heartbeat, or raise LeaseHeld at
    once. Giving it back is best effort: if the database is gone, it lapses in `ttl`."""
    lease = Lease(engine, name, ttl)
    if not lease.acquire():
        raise LeaseHeld(name, *lease.current_holder())
    every = ttl.total_seconds() / 4
    heartbeat = Heartbeat(f"lease-heartbeat-{name}", every, lease.keep).start()
    try:
        yield lease
    finally:
        heartbeat.stop()
        try:
            lease.release()
        except SQLAlchemyError as error:
            log.warning(
                "could not give back lease %r (%s); it lapses within %ss",
                name,
                type(error).__name__,
                int(ttl.total_seconds()),
            )


def serialise_on(session: Session, key: str) -> None:
    """Wait until no other transaction is working under `key`, and hold it to the end of
    ours: two transactions that must each see the other's writes (a subscription and its
    customer, arriving together) then run one after the other. On PostgreSQL, an advisory
    transaction lock; SQLite already runs one writer at a time (`BEGIN IMMEDIATE`)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
