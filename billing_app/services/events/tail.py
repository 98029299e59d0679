"""The feed's tail: the newest event a long poll could read, looked up for every waiting
poll of a process by one thread, so that a thousand idle polls cost the database nothing.

A poll that found nothing waits until the tail moves, then reads again. The thread looks:
- when told that events were written (this process's commits; on PostgreSQL, any
  process's, by NOTIFY), and every `look_every` seconds for `SETTLE` seconds after that (an
  event may be readable only once an older transaction has ended: see `feed`);
- every `look_every` seconds while nothing tells it (SQLite's other processes; PostgreSQL
  with the listener disconnected);
- otherwise every `IDLE_LOOK` seconds, in case;
and not at all while no poll waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from billing_app.notifications import ProcessThread
from billing_app.services.events.feed import Cursor

log = logging.getLogger(__name__)

SETTLE = 10.0
IDLE_LOOK = 30.0


class FeedTail:
    def __init__(
        self,
        latest: Callable[[], Cursor],
        *,
        listening: Callable[[], bool] = lambda: False,
        look_every: float = 0.25,
    ) -> None:
        self._latest = latest
        self._listening = listening
        self.look_every = look_every
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)  # the polls wait on it
        self._wake = threading.Condition(self._lock)  # the looking thread waits on it
        self._tail: Cursor | None = None
        self._waiting = 0
        self._announced_at = float("-inf")
        self._looked_at = float("-inf")  # when the last look began
        self._thread = ProcessThread("events-feed-tail", self._run)

    def current(self) -> Cursor | None:
        """The tail as last looked up (the first time: looked up now)."""
        if self._tail is None:
            began = time.monotonic()
            try:
                latest = self._latest()
            except Exception:
                return None  # the poll's own read says what is wrong
            with self._lock:
                if self._tail is None:
                    self._tail, self._looked_at = latest, began
        return self._tail

    def is_current(self) -> bool:
        """Is the tail known to be the feed's end: looked up since the last time anything
        was written, and told of every write (listening)? A poll whose cursor is the
        current tail then has nothing to read, and need not look."""
        return self._listening() and self._looked_at > self._announced_at

    def announce(self, *_payload) -> None:
        """Events were written (or may have been, unheard): look now."""
        with self._lock:
            self._announced_at = time.monotonic()
            self._wake.notify()

    def wait_past(self, seen: Cursor | None, seconds: float) -> None:
        """Return once the tail is other than `seen`, or after `seconds`."""
        self._thread.ensure_running()
        with self._lock:
            self._waiting += 1
            if self._waiting == 1:
                self._wake.notify()  # it was idle, with no poll to look for
            try:
                self._moved.wait_for(lambda: self._tail != seen, timeout=seconds)
            finally:
                self._waiting -= 1

    def _quiet(self) -> bool:
        """Listening, and told of nothing for `SETTLE` seconds: only being told is worth a
        look (or `IDLE_LOOK` passing)."""
        return self._listening() and time.monotonic() - self._announced_at > SETTLE

    def _run(self) -> None:
        while True:
            with self._lock:
                self._wake.wait_for(lambda: self._waiting > 0)
                if self._quiet():  # until told of a write (or in case, IDLE_LOOK)
                    self._wake.wait_for(lambda: not self._quiet(), timeout=IDLE_LOOK)
            began = time.monotonic()
            try:
                latest = self._latest()
            except Exception:
                log.exception("looking up the events feed's tail failed")
                latest, began = self._tail, self._looked_at
            with self._lock:
                self._looked_at = began
                if latest != self._tail:
                    self._tail = latest
                    self._moved.notify_all()
                if not self._quiet():
                    self._wake.wait(self.look_every)
