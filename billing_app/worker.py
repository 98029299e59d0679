"""The webhook worker: claims due ledger rows and applies them, until asked to stop.

Web processes run one as a thread by default (`WEBHOOK_WORKER_IN_PROCESS`), woken by each
delivery they accept. Production may also run `billing worker` processes (any number, on
any hosts: claims keep them from applying one row twice). The scheduler's `webhook-retry`
job runs one pass of the same worker as a safety net.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta

from flask import Flask, current_app

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
        visibility: timedelta | None = None,
        name: str | None = None,
    ) -> None:
        self.app = app
        self.batch = batch
        self.idle_wait = idle_wait
        self.visibility = visibility or timedelta(seconds=app.config["WEBHOOK_CLAIM_SECONDS"])
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

    def run(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Until `stop` is set: a batch at a time, waiting `idle_wait` when nothing is due
        (or until `wake` is set). A stop lets the current batch finish; its unapplied
        claims simply run out."""
        wake = wake or stop
        log.info("worker %s started", self.name)
        while not stop.is_set():
            try:
                worked = self.run_once()
            except Exception as error:  # the database blinked: wait, and try again
                log.error("worker %s: %s", self.name, type(error).__name__)
                worked = {}
            if not worked:
                wake.wait(self.idle_wait)
                if wake is not stop:
                    wake.clear()
        log.info("worker %s stopped", self.name)


class InProcessWorker:
    """A worker thread inside a web process, so that a one-process setup (SQLite, the demo)
    needs nothing else: started on the process's first request (after any fork), woken by
    every accepted delivery, polling in case another process accepted one."""

    def __init__(self, app: Flask, *, idle_wait: float) -> None:
        self.worker = Worker(app, idle_wait=idle_wait)
        self.stop = threading.Event()
        self.pid: int | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def ensure_running(self) -> None:
        if self.pid == os.getpid():
            return
        with self._lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            thread = threading.Thread(
                target=self.worker.run,
                args=(self.stop, self._wake),
                name="webhook-worker",
                daemon=True,
            )
            thread.start()

    def wake(self) -> None:
        self._wake.set()


def register_in_process_worker(app: Flask) -> None:
    if not app.config["WEBHOOK_WORKER_IN_PROCESS"]:
        return
    in_process = app.extensions["billing_webhook_worker"] = InProcessWorker(
        app, idle_wait=app.config["WEBHOOK_WORKER_POLL_SECONDS"]
    )
    app.before_request(in_process.ensure_running)


def wake_worker() -> None:
    """An accepted delivery: the in-process worker (if any) looks at once."""
    in_process = current_app.extensions.get("billing_webhook_worker")
    if in_process is not None:
        in_process.ensure_running()
        in_process.wake()
