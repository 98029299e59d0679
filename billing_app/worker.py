"""The webhook worker: claims due ledger rows and applies them, until asked to stop.

Web processes run one as a thread by default (`WEBHOOK_WORKER_IN_PROCESS`), so that one
process needs nothing else. Production runs `billing worker` processes instead (any number,
on any hosts: claims keep them from applying one row twice), woken by PostgreSQL's NOTIFY
for each new row, polling every WEBHOOK_WORKER_POLL_SECONDS in case one is missed. The
scheduler's `webhook-retry` job runs one pass of the same worker as a safety net.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from flask import Flask, current_app

from billing_app.extensions import db
from billing_app.notifications import INBOX_CHANNEL, Listener, ProcessThread, listener_of
from billing_app.services.locks import Heartbeat
from billing_app.services.webhooks import inbox

log = logging.getLogger(__name__)

LISTENING_POLL_SECONDS = 5.0


class Worker:
    def __init__(
        self,
        app: Flask,
        *,
        batch: int = 50,
        idle_wait: float = 1.0,
        visibility: timedelta | None = None,
        name: str | None = None,
        listener: Listener | None = None,
    ) -> None:
        self.app = app
        self.listener = listener
        self.batch = batch
        self.idle_wait = idle_wait
        self.visibility = visibility or timedelta(seconds=app.config["WEBHOOK_CLAIM_SECONDS"])
        self.name = name or inbox.worker_name()
        # A batch that failed (the database went away) left rows claimed by this worker:
        # they are let go before the next claim, or they would wait out the claim like a
        # dead worker's.
        self.holds_unsettled = False

    def run_once(self) -> dict[str, int]:
        """Claim one batch and apply it; the outcomes counted (empty when nothing was due)."""
        with self.app.app_context():
            try:
                if self.holds_unsettled:
                    inbox.release_claims(db.session, self.name)
                    self.holds_unsettled = False
                claimed = inbox.claim_due(
                    db.session, self.name, limit=self.batch, visibility=self.visibility
                )
                if not claimed:
                    return {}
                # Claims are short (a dead worker's rows go to another soon) and renewed
                # while this worker lives, so a slow batch never loses its rows.
                engine = db.engine  # the heartbeat's thread has no app context
                heartbeat = Heartbeat(
                    f"claims-{self.name}",
                    self.visibility.total_seconds() / 3,
                    lambda: inbox.renew_claims(engine, self.name, self.visibility),
                ).start()
                try:
                    outcomes = inbox.settle_batch(
                        db.session,
                        self.name,
                        claimed,
                        max_attempts=self.app.config["WEBHOOK_MAX_ATTEMPTS"],
                    )
                finally:
                    heartbeat.stop()
                log.info("worker %s applied %d event(s): %s", self.name, len(claimed), outcomes)
                return outcomes
            except Exception:
                self.holds_unsettled = True
                raise
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
                wake.wait(self._idle_wait())
                if wake is not stop:
                    wake.clear()
        self.release()
        log.info("worker %s stopped", self.name)

    def _idle_wait(self) -> float:
        """Listening, a poll now and then is only for retries coming due; else poll often."""
        listening = self.listener is not None and self.listener.connected.is_set()
        return max(self.idle_wait, LISTENING_POLL_SECONDS) if listening else self.idle_wait

    def release(self) -> None:
        """Hand back what this worker claimed and did not settle, for others to take now."""
        with self.app.app_context():
            try:
                released = inbox.release_claims(db.session, self.name)
                if released:
                    log.info("worker %s released %d claimed event(s)", self.name, released)
            except Exception as error:  # the claims run out by themselves
                log.error("worker %s could not release its claims: %s", self.name, error)
            finally:
                db.session.remove()


def run_workers(app: Flask, stop: threading.Event, *, batch: int, concurrency: int) -> None:
    """`billing worker`: `concurrency` workers in threads of this process, woken together
    by new rows, until `stop` is set; returns once each has finished its batch."""
    wake = threading.Event()
    listener = listen_for_deliveries(app, wake)
    if listener is not None:
        listener.ensure_running()
    idle_wait = app.config["WEBHOOK_WORKER_POLL_SECONDS"]
    workers = [
        Worker(app, batch=batch, idle_wait=idle_wait, listener=listener) for _ in range(concurrency)
    ]
    threads = [
        threading.Thread(target=worker.run, args=(stop, wake), name=f"webhook-worker-{n}")
        for n, worker in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    stop.wait()
    wake.set()  # wake the waiting ones, so that they see the stop
    for thread in threads:
        thread.join()
    if listener is not None:
        listener.stop()


class InProcessWorker:
    """A worker thread inside a web process, so that a one-process setup (SQLite, the demo)
    needs nothing else: started on the process's first request (after any fork), woken by
    every delivery this process accepts and, on PostgreSQL, by those of any process."""

    def __init__(self, app: Flask, *, idle_wait: float) -> None:
        self.stop = threading.Event()
        self._wake = threading.Event()
        self._thread = ProcessThread("webhook-worker", self._run)
        self.listener = listen_for_deliveries(app, self._wake)
        self.worker = Worker(app, idle_wait=idle_wait, listener=self.listener)

    def _run(self) -> None:
        self.worker.run(self.stop, self._wake)

    def ensure_running(self) -> None:
        self._thread.ensure_running()
        if self.listener is not None:
            self.listener.ensure_running()

    def wake(self) -> None:
        self._wake.set()


def listen_for_deliveries(app: Flask, wake: threading.Event) -> Listener | None:
    """On PostgreSQL, set `wake` whenever any process commits a new ledger row."""
    listener = listener_of(app)
    if listener is not None:
        listener.subscribe(INBOX_CHANNEL, lambda _payload: wake.set())
    return listener


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
