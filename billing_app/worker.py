"""The workers: one design for both queues, Paddle's webhooks coming in (the inbox: claim
due ledger rows, apply them) and our events going out (the outbox's deliveries: claim due
ones, send them), until asked to stop.

Web processes run one of each as threads by default (`WEBHOOK_WORKER_IN_PROCESS`), so that
one process needs nothing else. Production runs `billing worker` processes instead (any
number, on any hosts: claims keep them from taking one row twice), woken by PostgreSQL's
NOTIFY for each new row, polling every WEBHOOK_WORKER_POLL_SECONDS in case one is missed.
The scheduler's `webhook-retry` job runs one pass of the inbox's worker as a safety net.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Protocol

import requests
from flask import Flask, current_app
from requests.adapters import HTTPAdapter

from billing_app.extensions import db
from billing_app.notifications import (
    EVENTS_CHANNEL,
    INBOX_CHANNEL,
    Listener,
    ProcessThread,
    listener_of,
)
from billing_app.services.events import delivery, outbox
from billing_app.services.events.endpoints import ensure_environment_endpoint
from billing_app.services.locks import Heartbeat
from billing_app.services.webhooks import inbox

log = logging.getLogger(__name__)

LISTENING_POLL_SECONDS = 5.0


class Queue(Protocol):
    """What a worker works through: rows it claims for a while, settles, renews its claims
    on while it works, and lets go of."""

    kind: str  # how its log lines name it
    done: str  # what its log lines say was done to a batch
    channel: str  # the NOTIFY channel that announces new work (PostgreSQL)

    def claim(self, session, worker: str, limit: int, visibility: timedelta) -> list: ...

    def settle(self, session, worker: str, batch: list) -> dict[str, int]: ...

    def renew(self, engine, worker: str, visibility: timedelta) -> bool: ...

    def release(self, session, worker: str) -> int: ...


class WebhookInbox:
    """Paddle's notifications, applied."""

    kind, done, channel = "webhook", "applied", INBOX_CHANNEL

    def __init__(self, app: Flask) -> None:
        self.max_attempts = app.config["WEBHOOK_MAX_ATTEMPTS"]

    def claim(self, session, worker, limit, visibility):
        return inbox.claim_due(session, worker, limit=limit, visibility=visibility)

    def settle(self, session, worker, batch):
        return inbox.settle_batch(session, worker, batch, max_attempts=self.max_attempts)

    def renew(self, engine, worker, visibility):
        return inbox.renew_claims(engine, worker, visibility)

    def release(self, session, worker):
        return inbox.release_claims(session, worker)


class EventOutbox:
    """Our events, sent to the product's endpoints: a batch at once, settled together."""

    kind, done, channel = "event", "sent", EVENTS_CHANNEL

    def __init__(self, app: Flask) -> None:
        self.settings = delivery.Settings.of(app.config)
        self.environment = (app.config["EVENTS_ENDPOINT_URL"], app.config["EVENTS_ENDPOINT_SECRET"])
        self.environment_known = False
        self.pool = delivery.new_pool()
        self.http = requests.Session()
        adapter = HTTPAdapter(pool_maxsize=delivery.SENDING_THREADS)  # a connection per thread
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)

    def claim(self, session, worker, limit, visibility):
        if not self.environment_known:
            ensure_environment_endpoint(session, *self.environment)
            self.environment_known = True
        return delivery.claim_due(
            session, worker, limit=limit, visibility=visibility, settings=self.settings
        )

    def settle(self, session, worker, batch):
        outcomes = delivery.send_all(self.http, batch, self.settings, self.pool)
        return delivery.settle(session, worker, outcomes, self.settings)

    def renew(self, engine, worker, visibility):
        return delivery.renew_claims(engine, worker, visibility)

    def release(self, session, worker):
        return delivery.release_claims(session, worker)


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
        queue: Queue | None = None,
    ) -> None:
        self.app = app
        self.queue = queue or WebhookInbox(app)
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
                    self.queue.release(db.session, self.name)
                    self.holds_unsettled = False
                claimed = self.queue.claim(db.session, self.name, self.batch, self.visibility)
                if not claimed:
                    return {}
                # Claims are short (a dead worker's rows go to another soon) and renewed
                # while this worker lives, so a slow batch never loses its rows.
                engine = db.engine  # the heartbeat's thread has no app context
                heartbeat = Heartbeat(
                    f"claims-{self.name}",
                    self.visibility.total_seconds() / 3,
                    lambda: self.queue.renew(engine, self.name, self.visibility),
                ).start()
                try:
                    outcomes = self.queue.settle(db.session, self.name, claimed)
                finally:
                    heartbeat.stop()
                queue = self.queue
                log.info(
                    "%s worker %s %s %d: %s",
                    queue.kind,
                    self.name,
                    queue.done,
                    len(claimed),
                    outcomes,
                )
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
                released = self.queue.release(db.session, self.name)
                if released:
                    log.info("worker %s released %d claimed row(s)", self.name, released)
            except Exception as error:  # the claims run out by themselves
                log.error("worker %s could not release its claims: %s", self.name, error)
            finally:
                db.session.remove()


def run_workers(
    app: Flask, stop: threading.Event, *, batch: int, concurrency: int, senders: int = 1
) -> None:
    """`billing worker`: `concurrency` inbox workers and `senders` event workers in threads
    of this process, each kind woken together by its new rows, until `stop` is set; returns
    once each has finished its batch."""
    listener = listener_of(app)
    idle_wait = app.config["WEBHOOK_WORKER_POLL_SECONDS"]
    threads, wakes = [], []
    for queue, count in ((WebhookInbox(app), concurrency), (EventOutbox(app), senders)):
        wake = wake_on(listener, queue.channel)
        wakes.append(wake)
        for n in range(count):
            worker = Worker(app, batch=batch, idle_wait=idle_wait, listener=listener, queue=queue)
            name = f"{queue.kind}-worker-{n}"
            threads.append(threading.Thread(target=worker.run, args=(stop, wake), name=name))
    if listener is not None:
        listener.ensure_running()
    for thread in threads:
        thread.start()
    stop.wait()
    for wake in wakes:
        wake.set()  # wake the waiting ones, so that they see the stop
    for thread in threads:
        thread.join()
    if listener is not None:
        listener.stop()


class InProcessWorker:
    """A worker thread inside a web process, so that a one-process setup (SQLite, the demo)
    needs nothing else: started on the process's first request (after any fork), woken by
    what this process writes and, on PostgreSQL, by what any process writes."""

    def __init__(self, app: Flask, queue: Queue, *, idle_wait: float) -> None:
        self.stop = threading.Event()
        self._thread = ProcessThread(f"{queue.kind}-worker", self._run)
        self.listener = listener_of(app)
        self._wake = wake_on(self.listener, queue.channel)
        self.worker = Worker(app, idle_wait=idle_wait, listener=self.listener, queue=queue)

    def _run(self) -> None:
        self.worker.run(self.stop, self._wake)

    def ensure_running(self) -> None:
        self._thread.ensure_running()
        if self.listener is not None:
            self.listener.ensure_running()

    def wake(self) -> None:
        self._wake.set()

    def shutdown(self, timeout: float = 10) -> None:
        """Stop the thread (if it runs) once its batch is done: for whoever discards an app
        while its process goes on (the tests)."""
        self.stop.set()
        self._wake.set()
        thread = self._thread.thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)


IN_PROCESS_WORKERS = ("billing_webhook_worker", "billing_event_worker")


def wake_on(
    listener: Listener | None, channel: str, wake: threading.Event | None = None
) -> threading.Event:
    """`wake` (or a new event), set whenever any process commits a row announced on
    `channel` (PostgreSQL)."""
    wake = wake or threading.Event()
    if listener is not None:
        listener.subscribe(channel, lambda _payload: wake.set())
    return wake


def register_in_process_worker(app: Flask) -> None:
    if not app.config["WEBHOOK_WORKER_IN_PROCESS"]:
        return
    idle_wait = app.config["WEBHOOK_WORKER_POLL_SECONDS"]
    inbox_worker = InProcessWorker(app, WebhookInbox(app), idle_wait=idle_wait)
    event_worker = InProcessWorker(app, EventOutbox(app), idle_wait=idle_wait)
    app.extensions[IN_PROCESS_WORKERS[0]] = inbox_worker
    app.extensions[IN_PROCESS_WORKERS[1]] = event_worker
    app.before_request(inbox_worker.ensure_running)
    app.before_request(event_worker.ensure_running)
    app.extensions.setdefault(outbox.WRITTEN, []).append(
        lambda: _wake_in_process(app, "billing_event_worker")
    )


def _wake_in_process(app: Flask, name: str) -> None:
    in_process = app.extensions.get(name)
    if in_process is not None:
        in_process.ensure_running()
        in_process.wake()


def wake_worker() -> None:
    """An accepted delivery: the in-process worker (if any) looks at once."""
    _wake_in_process(current_app, "billing_webhook_worker")
