"""The webhook worker: claims due ledger rows and applies them, until asked to stop.

Run as `billing worker` (any number, on any hosts: claims keep them from applying one row
twice). The scheduler's `webhook-retry` job runs one pass of the same worker, so failed
events are retried on our schedule even where no worker process is deployed.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from flask import Flask

from billing_app.extensions import db
from billing_app.services import inbox

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        app: Flask,
        *,
        batch: int = 50,
        idle_wait: float = 1.0,
        visibility: timedelta = inbox.VISIBILITY,
        name: str | None = None,
    ) -> None:
        self.app = app
        self.batch = batch
        self.idle_wait = idle_wait
        self.visibility = visibility
        self.name = name or inbox.worker_name()

    def run_once(self) -> dict[str, int]:
        """Claim one batch and apply it; the outcomes counted (empty when nothing was due)."""
        with self.app.app_context():
            try:
                claimed = inbox.claim_due(
                    db.session, self.name, limit=self.batch, visibility=self.visibility
                )
                if not claimed:
                    return {}
                outcomes = inbox.settle_batch(
                    db.session,
                    self.name,
                    claimed,
                    max_attempts=self.app.config["WEBHOOK_MAX_ATTEMPTS"],
                )
                log.info("worker %s applied %d event(s): %s", self.name, len(claimed), outcomes)
                return outcomes
            finally:
                db.session.remove()

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: a batch at a time, waiting `idle_wait` when nothing is due.
        A stop lets the current batch finish; its unapplied claims simply run out."""
        log.info("worker %s started", self.name)
        while not stop.is_set():
            try:
                worked = self.run_once()
            except Exception as error:  # the database blinked: wait, and try again
                log.error("worker %s: %s", self.name, type(error).__name__)
                worked = {}
            if not worked:
                stop.wait(self.idle_wait)
        log.info("worker %s stopped", self.name)
