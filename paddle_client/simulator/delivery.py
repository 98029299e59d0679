"""Webhook delivery, signed exactly as Paddle signs, with retries and test faults.

Faults (set through `/_sim/faults`) let tests see the service's guards work end to end:
`duplicate` (deliver each notification twice), `reverse_next` (hold the next N notifications
and deliver them newest first), `delay_seconds` (deliver late), `drop_next` (never deliver
the next N).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from paddle_client.webhooks import sign

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds; Paddle's are minutes, a simulator's need not be


@dataclass
class Delivery:
    notification_id: str
    event_id: str
    event_type: str
    body: bytes
    attempts: list[dict[str, Any]] = field(default_factory=list)
    status: str = "pending"  # pending, delivered, failed, dropped

    def summary(self) -> dict[str, Any]:
        return {
            "notification_id": self.notification_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status,
            "attempts": self.attempts,
        }


@dataclass
class Faults:
    duplicate: bool = False
    reverse_next: int = 0
    delay_seconds: float = 0.0
    drop_next: int = 0
    rate_limit_next: int = 0  # API answers (handled by the app), kept here with the rest
    fail_api_next: int = 0
    lose_answer_next: int = 0  # writes carried out whose answer is replaced by a 503

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if not hasattr(self, key):
                raise ValueError(f"unknown fault {key!r}")
            setattr(self, key, type(getattr(self, key))(value))


class Deliverer:
    """A background thread that POSTs notifications to the webhook URL."""

    def __init__(
        self, url: str | None, secret: str | None, session: requests.Session | None = None
    ):
        self.url = url
        self.secret = secret
        self.session = session or requests.Session()
        self.faults = Faults()
        self.deliveries: list[Delivery] = []
        self._held: list[Delivery] = []
        self._queue: list[tuple[float, int, Delivery, int]] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._in_flight = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="sim-webhooks", daemon=True)
        self._thread.start()

    def submit(self, delivery: Delivery) -> None:
        with self._condition:
            self.deliveries.append(delivery)
            if self.faults.drop_next > 0:
                self.faults.drop_next -= 1
                delivery.status = "dropped"
                return
            if self.faults.reverse_next > 0:
                self.faults.reverse_next -= 1
                self._held.append(delivery)
                if self.faults.reverse_next == 0:
                    for held in reversed(self._held):
                        self._schedule(held, 0.0)
                    self._held.clear()
                return
            self._schedule(delivery, self.faults.delay_seconds)
            if self.faults.duplicate:
                self._schedule(delivery, self.faults.delay_seconds)

    def _schedule(self, delivery: Delivery, delay: float, attempt: int = 0) -> None:
        heapq.heappush(
            self._queue, (time.monotonic() + delay, next(self._sequence), delivery, attempt)
        )
        self._condition.notify_all()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped and (
                    not self._queue or self._queue[0][0] > time.monotonic()
                ):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._condition.wait(timeout)
                if self._stopped:
                    return
                _, _, delivery, attempt = heapq.heappop(self._queue)
                self._in_flight += 1
            try:
                self._send(delivery, attempt)
            finally:
                with self._condition:
                    self._in_flight -= 1
                    self._condition.notify_all()

    def _send(self, delivery: Delivery, attempt: int) -> None:
        if not self.url:
            delivery.status = "failed"
            delivery.attempts.append({"response_code": None, "error": "no webhook URL configured"})
            return
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers["Paddle-Signature"] = sign(delivery.body, self.secret)
        try:
            response = self.session.post(self.url, data=delivery.body, headers=headers, timeout=5)
            code, body = response.status_code, response.text[:500]
        except requests.RequestException as error:
            code, body = None, f"{type(error).__name__}"
        delivery.attempts.append(
            {"response_code": code, "response_body": body, "attempted_at": time.time()}
        )
        if code is not None and 200 <= code < 300:
            delivery.status = "delivered"
            return
        if attempt < len(RETRY_DELAYS):
            with self._condition:
                self._schedule(delivery, RETRY_DELAYS[attempt], attempt + 1)
        else:
            delivery.status = "failed"

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is queued or being sent (held deliveries excepted)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
        return True

    def release_held(self) -> None:
        with self._condition:
            for held in reversed(self._held):
                self._schedule(held, 0.0)
            self._held.clear()
            self.faults.reverse_next = 0

    def reset(self) -> None:
        with self._condition:
            self._queue.clear()
            self._held.clear()
            self.deliveries.clear()
            self.faults = Faults()

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()
        self._thread.join(timeout=10)


def notification_body(event: dict[str, Any], notification_id: str) -> bytes:
    return json.dumps({**event, "notification_id": notification_id}).encode("utf-8")
