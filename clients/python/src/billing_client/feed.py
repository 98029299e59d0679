"""Following the service's events feed (`GET /api/v1/events`, long-polled): each event
about an account makes the cache forget it. The feed is durable and read by cursor, so a
follower that reconnects misses nothing; one whose cursor has expired (away longer than the
service keeps events: 410 `cursor_expired`) forgets everything and starts from the end.

`connected` says whether the cache can be trusted now: the follower has read up to the
feed's end at `caught_up_at` (time.monotonic()) and nothing has failed since.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from billing_client.cache import EntitlementCache
from billing_client.endpoints import EVENTS, EVENTS_CURSOR
from billing_client.errors import BillingError
from billing_client.stats import Stats
from billing_client.transport import Transport

log = logging.getLogger("billing_client")

# The events after which an account's answer may differ (its entitlements, its
# subscription's scheduled changes and so its recheck_at, its purchases, its meters).
CHANGE_TYPES = (
    "entitlements.changed",
    "subscription.created",
    "subscription.activated",
    "subscription.updated",
    "subscription.paused",
    "subscription.resumed",
    "subscription.canceled",
    "subscription.past_due",
    "purchase.completed",
    "purchase.revoked",
    "purchase.restored",
    "usage.threshold_reached",
)
PAGE = 500
RETRY_AFTER = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds between attempts while the feed fails


class FeedFollower:
    def __init__(
        self, transport: Transport, cache: EntitlementCache, stats: Stats, *, wait: int = 50
    ) -> None:
        self.transport = transport
        self.cache = cache
        self.stats = stats
        self.wait = wait
        self.cursor: str | None = None
        self.connected = False
        self.caught_up_at = float("-inf")
        self.lost_at: float | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="billing-client-feed", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._read_once()
                failures = 0
            except BillingError as error:
                if error.error == "cursor_expired":
                    log.warning("billing events feed: cursor expired, forgetting every account")
                    self.stats.add("cache_resets")
                    self.cursor = None
                    continue
                self._lost(error)
                self._stop.wait(RETRY_AFTER[min(failures, len(RETRY_AFTER) - 1)])
                failures += 1
            except Exception as error:  # a bug must not end the thread: keep trying
                log.exception("billing events feed failed")
                self._lost(error)
                self._stop.wait(RETRY_AFTER[-1])

    def _read_once(self) -> None:
        if self.cursor is None:
            # Start from the end; whatever was read before then may have missed a change.
            answer = self.transport.call("GET", EVENTS_CURSOR)
            self.cache.forget_everything()
            self.cursor = str(answer["cursor"])
        # Catching up: no waiting. Following: a wait of its own length, so that polls begun
        # together (a deploy, the service back after an outage) do not all end together.
        spread = random.randint(max(1, self.wait * 3 // 4), self.wait)  # noqa: S311 (not a secret)
        wait = spread if self.connected else 0
        page: dict[str, Any] = self.transport.call(
            "GET",
            EVENTS,
            params={
                "after": self.cursor,
                "types": ",".join(CHANGE_TYPES),
                "limit": PAGE,
                "wait": wait,
            },
            timeout=wait + self.transport.timeout,
        )
        events = page["data"]
        if events:
            self.cache.forget({event["account_id"] for event in events})
            self.stats.add("events", len(events))
        self.cursor = str(page["next_cursor"])
        if len(events) < PAGE:
            self._caught_up()

    def _caught_up(self) -> None:
        self.caught_up_at = time.monotonic()
        if not self.connected:
            if self.lost_at is not None:
                log.info("billing events feed: following again")
            self.connected, self.lost_at = True, None

    def _lost(self, error: Exception) -> None:
        if self.connected:
            log.warning("billing events feed lost: %s", error)
            self.stats.add("feed_lost")
            self.connected, self.lost_at = False, time.monotonic()
        elif self.lost_at is None:
            self.lost_at = time.monotonic()
