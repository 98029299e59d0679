"""`BillingClient`: may this account use this feature, answered from memory, and usage
reported now or in the background."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from billing_client.answers import Entitlements, Meter
from billing_client.cache import EntitlementCache, Entry
from billing_client.endpoints import ACCOUNT_USAGE, ENTITLEMENTS_BATCH
from billing_client.errors import BillingUnavailable, QuotaExceeded
from billing_client.feed import FeedFollower
from billing_client.stats import Stats
from billing_client.transport import Transport
from billing_client.usage import Refusal, UsageReport, UsageReporter

log = logging.getLogger("billing_client")

# While the feed cannot be followed but the service answers reads, an answer just read is
# trusted this long (seconds): reads stay fresh within it without one per call.
UNFOLLOWED_TRUST = 1.0
# While the service cannot be read, one call a second tries again; the others answer from
# the fallback at once (a service that does not answer must not make every call wait).
RETRY_READS_EVERY = 1.0

# "deny", "allow", or a value per feature or limit name (True/False for features, an int
# or None for limits); names not in it are denied.
OnUnavailable = str | Mapping[str, bool | int | None]


class Fallback:
    """What to answer when the service cannot say: past `max_stale`, or never read."""

    def __init__(self, on_unavailable: OnUnavailable) -> None:
        if isinstance(on_unavailable, str) and on_unavailable not in {"deny", "allow"}:
            raise ValueError('on_unavailable is "deny", "allow" or a mapping per feature')
        self.on_unavailable = on_unavailable

    def allows(self, feature: str) -> bool:
        if isinstance(self.on_unavailable, str):
            return self.on_unavailable == "allow"
        return self.on_unavailable.get(feature) not in (None, False, 0)

    def limit(self, name: str) -> int | None:
        if isinstance(self.on_unavailable, str):
            return None if self.on_unavailable == "allow" else 0
        value = self.on_unavailable.get(name, 0)
        if value is True or value is None:
            return None
        return 0 if value is False else int(value)


class BillingClient:
    """One per process (it follows the service's events feed in a thread of its own).

    `allowed`, `limit` and `entitlements` answer from memory; the first read of an account
    fetches it. While the feed cannot be followed, what is in memory serves for `max_stale`
    seconds, then `on_unavailable` answers (logged, and counted in `stats`).
    """

    def __init__(
        self,
        base_url: str,
        service_token: str,
        *,
        max_stale: float = 60.0,
        on_unavailable: OnUnavailable = "deny",
        timeout: float = 5.0,
        feed_url: str | None = None,
        feed_wait: int = 50,
        usage_batch_size: int = 500,
        usage_interval: float = 1.0,
        usage_max_buffer: int = 100_000,
        usage_when_full: str = "block",
        on_usage_refused: Callable[[Refusal], None] | None = None,
    ) -> None:
        self.max_stale = max_stale
        self.fallback = Fallback(on_unavailable)
        self.stats = Stats()
        self._transport = Transport(base_url, service_token, timeout=timeout)
        self._cache = EntitlementCache(self._fetch)
        feed_transport = Transport(feed_url or base_url, service_token, timeout=timeout)
        self._feed = FeedFollower(feed_transport, self._cache, self.stats, wait=feed_wait)
        self._on_usage_refused = on_usage_refused
        self._exhausted: dict[tuple[str, str], float] = {}  # refused past a hard limit, until
        self.usage = UsageReporter(
            self._transport,
            self.stats,
            batch_size=usage_batch_size,
            interval=usage_interval,
            max_buffer=usage_max_buffer,
            when_full=usage_when_full,
            on_refused=self._usage_refused,
            on_added=self._count_here,
        )
        self._started_in: int | None = None
        self._start_lock = threading.Lock()
        self._unavailable_since: float | None = None
        self._tried_at = float("-inf")
        self._closed = False
        atexit.register(self.close)
        forked = weakref.WeakMethod(self._forked)
        os.register_at_fork(after_in_child=lambda: (method := forked()) and method())

    # --- entitlements ----------------------------------------------------------------

    def allowed(self, account_id: str, feature: str) -> bool:
        """May the account use `feature` now (its plan's features and what it bought)?"""
        # The hot path: `_trusted`, written out (a call costs more than the rest of it).
        entry = self._cache.entries.get(account_id)
        now = time.monotonic()
        feed = self._feed
        if (
            entry is not None
            and now < entry.recheck
            and (
                feed.connected
                or now - feed.caught_up_at < self.max_stale
                or now - entry.fetched_at < UNFOLLOWED_TRUST
            )
        ):
            return feature in entry.answer.features
        entry = self._entry(account_id)
        return self.fallback.allows(feature) if entry is None else feature in entry.answer.features

    def limit(self, account_id: str, name: str) -> int | None:
        """The plan's limit `name` (None: the plan sets none)."""
        entry = self._trusted(account_id) or self._entry(account_id)
        if entry is None:
            return self.fallback.limit(name)
        value = entry.answer.limits.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def entitlements(self, account_id: str) -> Entitlements:
        """Everything the service answers of the account (access, plan, status, features,
        limits, seats, meters as of the read, grants); BillingUnavailable when it cannot."""
        entry = self._trusted(account_id) or self._entry(account_id)
        if entry is None:
            raise BillingUnavailable(None, "unavailable", "the billing service cannot be read")
        return entry.answer

    def refusal_status(self, account_id: str) -> int:
        """The HTTP status for a feature refused: 402 when the account has no paid access
        (paying would help), 403 when it pays but its plan lacks the feature."""
        try:
            return 403 if self.entitlements(account_id).access else 402
        except BillingUnavailable:
            return 402

    def prefetch(self, account_ids: Iterable[str]) -> None:
        """Read these accounts now, in batches (a process warming up)."""
        self._ensure_started()
        self._cache.read(account_ids)

    def _trusted(self, account_id: str) -> Entry | None:
        """The account's entry if memory can answer for it now: not due for a recheck, and
        the feed followed (or lost less than `max_stale` ago, or the entry just read)."""
        entry = self._cache.fresh(account_id)
        feed, now = self._feed, time.monotonic()
        if entry is not None and (
            feed.connected
            or now - feed.caught_up_at < self.max_stale
            or now - entry.fetched_at < UNFOLLOWED_TRUST
        ):
            return entry
        return None

    def _entry(self, account_id: str) -> Entry | None:
        """Fetched now; None when the service cannot be read (the fallback answers)."""
        self._ensure_started()
        recently_tried = time.monotonic() - self._tried_at < RETRY_READS_EVERY
        if self._unavailable_since is not None and recently_tried:
            self.stats.add("fallback_answers")
            return None
        self._tried_at = time.monotonic()
        try:
            entry = self._cache.read([account_id], again=True)[account_id]
        except BillingUnavailable as error:
            self.stats.add("fallback_answers")
            if self._unavailable_since is None:
                self._unavailable_since = time.monotonic()
                log.warning(
                    "billing service unavailable (%s): answering on_unavailable=%r",
                    error,
                    self.fallback.on_unavailable,
                )
            return None
        if self._unavailable_since is not None:
            log.info("billing service available again")
            self._unavailable_since = None
        return entry

    def _fetch(self, account_ids: list[str]) -> dict[str, Entitlements]:
        self.stats.add("fetches")
        answer = self._transport.call(
            "POST",
            ENTITLEMENTS_BATCH,
            json={"account_ids": account_ids},
            headers={"Cache-Control": "no-cache"},  # the state after any event seen
        )
        return {item["account_id"]: Entitlements.of(item) for item in answer["entitlements"]}

    # --- usage -----------------------------------------------------------------------

    def report_usage(
        self,
        account_id: str,
        meter: str,
        quantity: int = 1,
        *,
        key: str,
        subject: str | None = None,
        occurred_at: datetime | None = None,
        attempts: int = 3,
    ) -> Meter:
        """Record usage now and return the meter's figures; QuotaExceeded (402) when it
        would pass the hard limit. A lost answer is asked again with the same key, which
        the service counts once."""
        body: dict[str, Any] = {
            "meter": meter,
            "quantity": quantity,
            "idempotency_key": key,
            "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
        }
        if subject is not None:
            body["subject"] = subject
        path = ACCOUNT_USAGE.format(account_id=quote(account_id, safe=""))
        for attempt in range(attempts):
            try:
                answer = self._transport.call("POST", path, json=body)
                break
            except QuotaExceeded:
                self._mark_exhausted(account_id, meter, None)
                raise
            except BillingUnavailable:
                if attempt + 1 == attempts:
                    raise
                time.sleep(0.2 * (attempt + 1))
        self._count_here_units(account_id, meter, quantity)
        return Meter.of(answer)

    def exhausted(self, account_id: str, meter: str) -> bool:
        """Is the meter past its hard limit, as far as this process knows: the service
        refused a report of it this period, or its `remaining` at the last read is used up
        by what this process added since?"""
        until = self._exhausted.get((account_id, meter))
        if until is not None:
            if time.monotonic() < until:
                return True
            self._exhausted.pop((account_id, meter), None)
        entry = self._trusted(account_id) or self._entry(account_id)
        if entry is None:
            return False
        figures = entry.answer.meters.get(meter)
        if figures is None or figures.remaining is None:
            return False
        return figures.remaining - entry.used_here[meter] <= 0

    def _count_here(self, report: UsageReport) -> None:
        self._count_here_units(report.account_id, report.meter, report.quantity)

    def _count_here_units(self, account_id: str, meter: str, quantity: int) -> None:
        entry = self._cache.entries.get(account_id)
        if entry is not None:
            entry.used_here[meter] += quantity

    def _usage_refused(self, refusal: Refusal) -> None:
        if refusal.error == "quota_exceeded":
            self._mark_exhausted(refusal.report.account_id, refusal.report.meter, None)
        if self._on_usage_refused is not None:
            self._on_usage_refused(refusal)

    def _mark_exhausted(self, account_id: str, meter: str, until: datetime | None) -> None:
        entry = self._cache.entries.get(account_id)
        figures = entry.answer.meters.get(meter) if entry is not None else None
        period_end = until or (figures.period_end if figures is not None else None)
        left = 60.0  # no period known: look again in a minute
        if period_end is not None:
            left = (period_end - datetime.now(UTC)).total_seconds()
        self._exhausted[(account_id, meter)] = time.monotonic() + max(left, 1.0)

    # --- the process -----------------------------------------------------------------

    def _ensure_started(self) -> None:
        """Follow the feed from this process."""
        if self._started_in == os.getpid():
            return
        with self._start_lock:
            if self._started_in != os.getpid():
                self._feed.start()
                self._started_in = os.getpid()

    def _forked(self) -> None:
        """In a child forked from a process that used the client (gunicorn's workers): the
        parent's threads are not here, so nothing it held can be trusted; the child
        follows the feed itself from its first read, and sends only its own usage."""
        self._start_lock = threading.Lock()
        self._cache.after_fork()
        self._feed = FeedFollower(
            self._feed.transport, self._cache, self.stats, wait=self._feed.wait
        )
        self.usage.after_fork()
        self._started_in = None

    def wait_until_following(self, timeout: float = 10.0) -> bool:
        """Start following the feed and wait until it has caught up."""
        self._ensure_started()
        deadline = time.monotonic() + timeout
        while not self._feed.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._feed.connected

    @property
    def following(self) -> bool:
        """Is the feed followed up to its end now (so memory is current)?"""
        return self._feed.connected

    @property
    def stale_for(self) -> float:
        """Seconds since the feed was last followed to its end (0 while it is)."""
        return 0.0 if self._feed.connected else time.monotonic() - self._feed.caught_up_at

    def close(self, timeout: float = 10.0) -> None:
        """Send the usage still buffered, stop following the feed (at exit, by atexit;
        once)."""
        if self._closed:
            return
        self._closed = True
        self.usage.close(timeout)
        self._feed.stop()
