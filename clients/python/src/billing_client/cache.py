"""Accounts' entitlements in memory: read once, then answered from memory until the
service says they changed (the events feed calls `forget`) or the clock may change them
(each answer's `recheck_at`).

Reads that miss are batched: while one fetch is on its way, every account missed meanwhile
waits for the next, which asks for all of them at once. A fetch that an event overtook
(the account changed while the answer was on its way) answers its caller but is not kept.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from billing_client.answers import Entitlements

BATCH_MAX = 500  # the service's batch read takes at most this many accounts
RECHECK_AT_LEAST_AFTER = 0.5  # seconds: a clock behind the service's is not a busy loop


@dataclass
class Entry:
    answer: Entitlements
    recheck: float  # time.monotonic() after which the answer may be out of date
    fetched_at: float = field(default_factory=time.monotonic)
    used_here: Counter[str] = field(default_factory=Counter)  # units added since it was read


def recheck_deadline(answer: Entitlements, now: float) -> float:
    if answer.recheck_at is None:
        return float("inf")
    left = (answer.recheck_at - datetime.now(UTC)).total_seconds()
    return now + max(left, RECHECK_AT_LEAST_AFTER)


@dataclass
class _Round:
    accounts: list[str] = field(default_factory=list)
    overtaken: set[str] = field(default_factory=set)
    everything_overtaken: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    answers: dict[str, Entitlements] = field(default_factory=dict)
    error: Exception | None = None


class EntitlementCache:
    def __init__(self, fetch: Callable[[list[str]], dict[str, Entitlements]]) -> None:
        self._fetch = fetch
        self.entries: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._one_fetch_at_a_time = threading.Lock()
        self._gathering: _Round | None = None
        self._in_flight: list[_Round] = []

    def fresh(self, account_id: str) -> Entry | None:
        """The entry, if it is not due for a recheck (the hot path: no lock)."""
        entry = self.entries.get(account_id)
        if entry is not None and time.monotonic() < entry.recheck:
            return entry
        return None

    def read(self, account_ids: Iterable[str], *, again: bool = False) -> dict[str, Entry]:
        """The accounts' entries, fetched (in batches) for those missing or due; `again`:
        fetched whatever is held (what is held can no longer be trusted)."""
        found: dict[str, Entry] = {}
        missing = []
        for account_id in dict.fromkeys(account_ids):
            entry = None if again else self.fresh(account_id)
            if entry is None:
                missing.append(account_id)
            else:
                found[account_id] = entry
        for start in range(0, len(missing), BATCH_MAX):
            found.update(self._fetched(missing[start : start + BATCH_MAX]))
        return found

    def _fetched(self, account_ids: list[str]) -> dict[str, Entry]:
        with self._lock:
            gathering = self._gathering
            if gathering is None or len(gathering.accounts) + len(account_ids) > BATCH_MAX:
                gathering = self._gathering = _Round()
                leads = True
            else:
                leads = False
            gathering.accounts.extend(a for a in account_ids if a not in gathering.accounts)
        if leads:
            self._run(gathering)
        else:
            gathering.done.wait()
        if gathering.error is not None:
            raise gathering.error
        return {
            account_id: self.entries.get(account_id)
            or Entry(gathering.answers[account_id], time.monotonic())  # overtaken: not kept
            for account_id in account_ids
        }

    def _run(self, batch: _Round) -> None:
        with self._one_fetch_at_a_time:  # misses meanwhile join `batch`
            with self._lock:
                if self._gathering is batch:
                    self._gathering = None
                self._in_flight.append(batch)
            try:
                batch.answers = self._fetch(batch.accounts)
            except Exception as error:
                batch.error = error
            finally:
                with self._lock:
                    self._in_flight.remove(batch)
                    if batch.error is None:
                        self._keep(batch)
                batch.done.set()

    def _keep(self, batch: _Round) -> None:
        now = time.monotonic()
        for account_id, answer in batch.answers.items():
            if batch.everything_overtaken or account_id in batch.overtaken:
                self.entries.pop(account_id, None)
            else:
                self.entries[account_id] = Entry(answer, recheck_deadline(answer, now))

    def forget(self, account_ids: Iterable[str]) -> None:
        """These accounts changed: their next read fetches them again."""
        accounts = set(account_ids)
        with self._lock:
            for account_id in accounts:
                self.entries.pop(account_id, None)
            for batch in self._in_flight:
                batch.overtaken |= accounts

    def forget_everything(self) -> None:
        with self._lock:
            self.entries = {}
            for batch in self._in_flight:
                batch.everything_overtaken = True

    def after_fork(self) -> None:
        self.entries = {}
        self._lock = threading.Lock()
        self._one_fetch_at_a_time = threading.Lock()
        self._gathering, self._in_flight = None, []
