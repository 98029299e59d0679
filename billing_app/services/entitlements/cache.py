"""Each process keeps the `AccessFacts` of the accounts it was asked about, and forgets them
the moment the database says they changed.

The guarantee: an answer is never older than the last change that committed before the
read, plus the time an announcement takes to arrive (milliseconds), and never older than
ENTITLEMENTS_CACHE_TTL_SECONDS even if an announcement were lost.

How a process learns of changes:
- PostgreSQL: triggers on `subscriptions` and `plans` NOTIFY the accounts whose facts
  changed (or all of them, for a plan), when the change commits, whichever process or
  code made it; each process's listener evicts them. While the listener is not connected
  (not yet, or its connection dropped), the cache is empty and bypassed: every read goes
  to the database until the listener is back.
- SQLite (one host): `PRAGMA data_version` on a connection of the cache's own changes when
  any other connection commits; a read that sees it changed empties the cache first.

A read that misses takes a ticket before it reads the database, and its facts are only
kept if nothing was evicted meanwhile: a change announced while the read was under way
must not be overwritten by what the read saw before it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from billing_app.db import single_statement
from billing_app.metrics import ENTITLEMENT_CACHE_EVICTIONS, count_cache_lookups
from billing_app.services.entitlements.facts import (
    AccessFacts,
    Grant,
    read_free_plan,
    read_many_access_facts,
)

# The free plan is kept beside the accounts, under a key no account id can be (they are
# printable), so that it ages, and is evicted on a plan change, as they are.
FREE_PLAN_KEY = "\x00free-plan"

ACCOUNTS_CHANNEL = "billing_entitlements_accounts"  # payload: an account id
ALL_CHANNEL = "billing_entitlements_all"  # a plan changed: every account's facts may have


class EntitlementCache:
    """A bounded LRU of account id -> (facts, time kept), safe across threads."""

    def __init__(self, size: int, ttl: float, *, clock: Callable[[], float] = time.monotonic):
        self.size = size
        self.ttl = ttl
        self.clock = clock
        self.enabled = size > 0
        self._entries: OrderedDict[str, tuple[AccessFacts, float]] = OrderedDict()
        self._evictions = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def ticket(self) -> int:
        """Taken before reading the database; `put` keeps the read only if still valid."""
        return self._evictions

    def get(self, account_id: str) -> AccessFacts | None:
        if not self.enabled:
            return None
        with self._lock:
            entry = self._entries.get(account_id)
            if entry is None:
                return None
            facts, kept_at = entry
            if self.clock() - kept_at >= self.ttl:
                del self._entries[account_id]
                ENTITLEMENT_CACHE_EVICTIONS.labels("expired").inc()
                return None
            self._entries.move_to_end(account_id)
            return facts

    def put(self, account_id: str, facts: AccessFacts, ticket: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            if ticket != self._evictions:
                return  # something changed while the read was under way
            self._entries[account_id] = (facts, self.clock())
            self._entries.move_to_end(account_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
                ENTITLEMENT_CACHE_EVICTIONS.labels("capacity").inc()

    def evict(self, account_ids: Iterable[str]) -> None:
        with self._lock:
            self._evictions += 1
            dropped = sum(
                self._entries.pop(account_id, None) is not None for account_id in account_ids
            )
        ENTITLEMENT_CACHE_EVICTIONS.labels("changed").inc(dropped)

    def clear(self) -> None:
        with self._lock:
            self._evictions += 1
            dropped = len(self._entries)
            self._entries.clear()
        ENTITLEMENT_CACHE_EVICTIONS.labels("cleared").inc(dropped)

    def suspend(self) -> None:
        """Bypass and empty: changes may go unannounced until `resume`."""
        self.enabled = False
        self.clear()

    def resume(self) -> None:
        self.clear()  # whatever happened while suspended
        self.enabled = self.size > 0


class SqliteChangeCheck:
    """Empties the cache whenever another connection has committed since the last look."""

    def __init__(self, database_path: str, cache: EntitlementCache) -> None:
        self.cache = cache
        self._connection = sqlite3.connect(database_path, check_same_thread=False)
        self._lock = threading.Lock()
        self._seen = self._data_version()

    def _data_version(self) -> int:
        return self._connection.execute("PRAGMA data_version").fetchone()[0]

    def __call__(self) -> None:
        with self._lock:
            version = self._data_version()
            if version != self._seen:
                self._seen = version
                self.cache.clear()


def listen_for_changes(listener, cache: EntitlementCache) -> None:
    """Wire a PostgreSQL `Listener` to the cache: evict what is announced, and bypass the
    cache while not listening."""
    cache.suspend()
    listener.subscribe(ACCOUNTS_CHANNEL, lambda account_id: cache.evict((account_id,)))
    listener.subscribe(ALL_CHANNEL, lambda _payload: cache.clear())
    listener.watch(lambda listening: cache.resume() if listening else cache.suspend())


class CachedAccessFacts:
    """Accounts' `AccessFacts`: from the cache when it has them, else one read for all the
    missing ones, kept for next time."""

    def __init__(
        self,
        engine: Engine,
        cache: EntitlementCache,
        change_check: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.cache = cache
        self.change_check = change_check

    def free_plan(self) -> Grant | None:
        """The free plan, if the catalogue has one (call after `of`, which checks for
        changes first)."""
        kept = self.cache.get(FREE_PLAN_KEY)
        if kept is None:
            ticket = self.cache.ticket()
            with single_statement(self.engine) as connection:
                kept = AccessFacts(None, read_free_plan(connection))
            self.cache.put(FREE_PLAN_KEY, kept, ticket)
        return kept.plan

    def of(self, account_ids: list[str], *, fresh: bool = False) -> dict[str, AccessFacts]:
        """`fresh`: read them all from the database (kept for next time too)."""
        if self.change_check is not None:
            self.change_check()
        found = {
            account_id: None if fresh else self.cache.get(account_id) for account_id in account_ids
        }
        missing = [account_id for account_id, facts in found.items() if facts is None]
        count_cache_lookups(len(found) - len(missing), len(missing))
        if missing:
            ticket = self.cache.ticket()
            with single_statement(self.engine) as connection:
                read = read_many_access_facts(connection, missing)
            for account_id, facts in read.items():
                self.cache.put(account_id, facts, ticket)
            found.update(read)
        return found
