"""Usage reported in the background: `add` buffers in memory (bounded), a thread sends
batches to `POST /api/v1/usage/batch` every `interval` seconds or `batch_size` reports,
and retries a batch that got no answer with the same idempotency keys, so a retry never
counts twice. What the service refuses (402 past a hard limit; 409 and 422) is not retried:
it is counted, logged, and told to `on_refused`."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billing_client.endpoints import USAGE_BATCH
from billing_client.errors import BillingError, BillingUnavailable
from billing_client.stats import Stats
from billing_client.transport import Transport

log = logging.getLogger("billing_client")

RETRY_AFTER = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class UsageReport:
    account_id: str
    meter: str
    quantity: int
    idempotency_key: str
    occurred_at: datetime
    subject: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "account_id": self.account_id,
            "meter": self.meter,
            "quantity": self.quantity,
            "idempotency_key": self.idempotency_key,
            "occurred_at": self.occurred_at.isoformat(),
        }
        if self.subject is not None:
            body["subject"] = self.subject
        return body


@dataclass(frozen=True)
class Refusal:
    report: UsageReport
    status: int
    error: str
    message: str


class BufferFull(Exception):
    """The buffer is full and the policy is "raise"."""


class UsageReporter:
    def __init__(
        self,
        transport: Transport,
        stats: Stats,
        *,
        batch_size: int = 500,
        interval: float = 1.0,
        max_buffer: int = 100_000,
        when_full: str = "block",
        on_refused: Callable[[Refusal], None] | None = None,
        on_added: Callable[[UsageReport], None] | None = None,
    ) -> None:
        if when_full not in {"block", "drop", "raise"}:
            raise ValueError('when_full is "block", "drop" or "raise"')
        self.transport = transport
        self.stats = stats
        self.batch_size = min(batch_size, 1000)  # the batch endpoint takes 1,000 at most
        self.interval = interval
        self.max_buffer = max_buffer
        self.when_full = when_full
        self.on_refused = on_refused
        self.on_added = on_added
        self._buffer: deque[UsageReport] = deque()
        self._sending: list[UsageReport] = []  # the batch on its way (or to try again)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._flush_asked = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def add(
        self,
        account_id: str,
        meter: str,
        quantity: int = 1,
        *,
        key: str | None = None,
        subject: str | None = None,
        occurred_at: datetime | None = None,
    ) -> bool:
        """Buffer a report (sent within `interval` seconds); False if it was dropped."""
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValueError("quantity is a whole number of at least 1")
        report = UsageReport(
            account_id,
            meter,
            quantity,
            key or uuid.uuid4().hex,
            occurred_at or datetime.now(UTC),  # the period is picked by when
            subject,
        )
        with self._lock:
            self._ensure_running()
            while len(self._buffer) >= self.max_buffer:
                if self.when_full == "drop":
                    self.stats.add("usage_dropped")
                    return False
                if self.when_full == "raise":
                    raise BufferFull(f"{self.max_buffer} usage reports are waiting to be sent")
                self.stats.add("usage_blocked")
                self._changed.wait()
            self._buffer.append(report)
            if len(self._buffer) >= self.batch_size:
                self._changed.notify_all()
        if self.on_added is not None:
            self.on_added(report)
        return True

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer) + len(self._sending)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send everything buffered now; True once it has all been answered."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if not self._buffer and not self._sending:
                return True
            self._ensure_running()
            self._flush_asked = True
            self._changed.notify_all()
            while self._buffer or self._sending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush, then stop the thread (at exit)."""
        sent = self.flush(timeout)
        with self._lock:
            self._stopping = True
            self._changed.notify_all()
        if not sent:
            log.error("billing usage: %d reports not sent at exit", self.pending())

    def after_fork(self) -> None:
        """A forked child: what is buffered is the parent's to send."""
        self._buffer, self._sending = deque(), []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._flush_asked = self._stopping = False
        self._thread = None

    def _ensure_running(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="billing-usage", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        failures = 0
        while True:
            with self._lock:
                if not self._sending:
                    self._wait_for_a_batch()
                    if self._stopping and not self._buffer:
                        return
                    count = min(self.batch_size, len(self._buffer))
                    self._sending = [self._buffer.popleft() for _ in range(count)]
                    self._changed.notify_all()  # room in the buffer
                batch = self._sending
            try:
                answered = self._send(batch)
            except Exception:  # an answer not as documented: keep the batch, try again
                log.exception("billing usage: sending a batch failed")
                answered = False
            if answered:
                failures = 0
                with self._lock:
                    self._sending = []
                    self._changed.notify_all()
            else:
                self.stats.add("usage_retries")
                time.sleep(RETRY_AFTER[min(failures, len(RETRY_AFTER) - 1)])
                failures += 1

    def _wait_for_a_batch(self) -> None:
        """Until a batch is full, `interval` has passed since the oldest report came, or a
        flush asks (called holding the lock)."""
        while not self._buffer and not self._stopping:
            self._changed.wait()
        deadline = time.monotonic() + self.interval
        while (
            len(self._buffer) < self.batch_size
            and not self._flush_asked
            and not self._stopping
            and (left := deadline - time.monotonic()) > 0
        ):
            self._changed.wait(left)
        if len(self._buffer) <= self.batch_size:
            self._flush_asked = False

    def _send(self, batch: list[UsageReport]) -> bool:
        """True when the service answered for every report (whatever it answered)."""
        try:
            answer = self.transport.call(
                "POST", USAGE_BATCH, json={"reports": [r.body() for r in batch]}
            )
        except BillingUnavailable as error:
            log.warning("billing usage: %d reports not sent yet (%s)", len(batch), error)
            return False
        except BillingError as error:  # the whole batch refused (401, 413): not retried
            log.error("billing usage: %d reports refused: %s", len(batch), error)
            for report in batch:
                self._refused(Refusal(report, error.status or 0, error.error, error.message))
            return True
        for report, result in zip(batch, answer["results"], strict=True):
            status = result["status"]
            if status == 200:
                self.stats.add("usage_duplicates" if result["duplicate"] else "usage_sent")
            else:
                self._refused(
                    Refusal(report, status, str(result["error"]), str(result["message"] or ""))
                )
        return True

    def _refused(self, refusal: Refusal) -> None:
        self.stats.add("usage_refused")
        log.warning(
            "billing usage refused (%s) for %s %s: %s",
            refusal.error,
            refusal.report.account_id,
            refusal.report.meter,
            refusal.message,
        )
        if self.on_refused is not None:
            try:
                self.on_refused(refusal)
            except Exception:
                log.exception("billing usage: on_refused failed")
