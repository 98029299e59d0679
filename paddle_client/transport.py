"""HTTP to Paddle: auth headers, the envelope, error mapping and the retry loop.

Retry rule. A request is retried, with exponential backoff and full jitter, bounded both in
attempts and in total time, when repeating it cannot do something twice:

- on 429: always. Paddle refused it before doing anything; we wait at least `Retry-After`.
- on a failure to connect (the request never left): always.
- on 5xx, read timeouts and dropped connections (the request may have reached Paddle): only
  when the request is *repeatable*. GET and PATCH are (a PATCH states the whole desired
  state). A POST is repeatable only when its caller says so: state transitions such as
  pause, resume and cancel are (a repeat fails with a 400, it never applies twice) and a
  customer create is (a repeat answers 409 with the existing id). Creating a transaction or
  a one-time charge is not: it raises `Unavailable`, and the caller looks for what it made
  (by its `custom_data`) before trying again. State transitions (pause, resume, cancel) are
  not repeated blindly either: a repeat of one that landed is refused (Paddle locks a
  subscription with pending changes), so the caller reads back what Paddle now holds
  (`confirm.confirmed_write`). `Unavailable.may_have_applied` says which case it was.

Deadline. `Client.deadline(seconds)` bounds every request made inside it, in this thread
(or task), attempts and sleeps together: each attempt's timeout is cut to the time left, no
sleep runs past it, and once it has passed a request raises `Unavailable` at once.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import requests

from paddle_client.errors import ApiError, RateLimited, Unavailable, parse_error_envelope

log = logging.getLogger(__name__)

BASE_URLS = {
    "sandbox": "https://sandbox-api.paddle.com",
    "live": "https://api.paddle.com",
}
API_VERSION = "1"
USER_AGENT = "billing-service-paddle-client/0.1"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. `max_elapsed` bounds the sleeping, whatever `Retry-After` asks."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_elapsed: float = 30.0


NO_RETRIES = RetryPolicy(max_attempts=1)

# When the current conversation with Paddle must be over, on the transport's clock.
_DEADLINE: ContextVar[float | None] = ContextVar("paddle_deadline", default=None)


def backoff_delay(attempt: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """Full jitter: a random wait up to base * 2^(attempt-1), capped. `attempt` counts from 1."""
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
    return ceiling * rand()


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def may_retry(*, status: int | None, reached_paddle: bool, repeatable: bool) -> bool:
    """Is it safe and useful to send this request again? See the module's docstring."""
    if status == 429:
        return True
    if not reached_paddle:
        return True
    if status is not None and status < 500:
        return False
    return repeatable


class Transport:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        requests_per_minute: float | None = None,
        before_send: Callable[[], None] | None = None,
        after_attempt: Callable[[str, str, str, float, int], None] | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("a Paddle API key is required")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.retry = retry
        self._sleep = sleep
        self._rand = rand
        self._clock = clock
        # A steady pace for bulk work (Paddle allows ~240 requests a minute per IP).
        self.min_interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._last_sent: float | None = None
        # Called before every attempt; may raise to refuse it (a shared budget, say).
        self._before_send = before_send
        self._after_attempt = after_attempt

    def _keep_pace(self) -> None:
        if self.min_interval and self._last_sent is not None:
            wait = self._last_sent + self.min_interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_sent = self._clock()

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Every request inside the block ends within `seconds` from now, retries included
        (an enclosing, earlier deadline still holds)."""
        at = self._clock() + seconds
        current = _DEADLINE.get()
        token = _DEADLINE.set(at if current is None else min(at, current))
        try:
            yield
        finally:
            _DEADLINE.reset(token)

    def _time_left(self) -> float | None:
        at = _DEADLINE.get()
        return None if at is None else at - self._clock()

    def __repr__(self) -> str:  # never show the key
        return f"Transport(base_url={self.base_url!r})"

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._api_key}",
            "Paddle-Version": API_VERSION,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        repeatable: bool | None = None,
    ) -> dict[str, Any]:
        """Send one API request (retrying where safe) and return Paddle's parsed JSON body."""
        if repeatable is None:
            repeatable = method.upper() in {"GET", "HEAD", "PATCH", "PUT", "DELETE"}
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            left = self._time_left()
            if left is not None and left <= 0:
                raise Unavailable("Paddle did not answer within this request's deadline")
            timeout = self.timeout if left is None else min(self.timeout, left)
            outcome = self._attempt(method, path, params, json, timeout, attempt)
            if isinstance(outcome, dict):
                return outcome
            error, status, reached, wait_at_least = outcome
            if isinstance(error, Unavailable):
                error.may_have_applied = reached and status != 429
            if attempt >= self.retry.max_attempts or not may_retry(
                status=status, reached_paddle=reached, repeatable=repeatable
            ):
                raise error
            delay = max(backoff_delay(attempt, self.retry, self._rand), wait_at_least or 0.0)
            if self._clock() - started + delay > self.retry.max_elapsed:
                raise error
            left = self._time_left()
            if left is not None and delay >= left:
                raise error
            log.warning(
                "paddle %s %s failed (%s); retry %d in %.2fs",
                method,
                path.split("?")[0],
                status or type(error).__name__,
                attempt,
                delay,
            )
            self._sleep(delay)

    def _attempt(self, method, path, params, json, timeout, attempt):
        """One try. Returns the body, or (error, status, reached_paddle, retry_after)."""
        if self._before_send is not None:
            self._before_send()
        self._keep_pace()
        started = self._clock()
        outcome = self._try(method, path, params, json, timeout)
        if self._after_attempt is not None:
            self._after_attempt(
                method, operation_of(path), outcome_of(outcome), self._clock() - started, attempt
            )
        return outcome

    def _try(self, method, path, params, json, timeout):
        try:
            response = self.session.request(
                method,
                self.url(path),
                params=params,
                json=json,
                headers=self._headers(),
                timeout=timeout,
            )
        except requests.exceptions.ConnectTimeout:
            return Unavailable("timed out connecting to Paddle"), None, False, None
        except requests.exceptions.Timeout:
            return Unavailable("Paddle did not answer in time"), None, True, None
        except requests.exceptions.ConnectionError as error:
            reached = not _failed_before_sending(error)
            return Unavailable("could not reach Paddle"), None, reached, None
        return self._read(response)

    def _read(self, response: requests.Response):
        if response.status_code == 204:
            return {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.ok and isinstance(body, dict):
            return body
        envelope = parse_error_envelope(body)
        status = response.status_code
        wait = retry_after_seconds(response)
        if status == 429:
            error = RateLimited(
                envelope.detail or "rate limited by Paddle",
                status=status,
                request_id=envelope.request_id,
                retry_after=wait,
            )
            return error, status, True, wait
        if status >= 500 or response.ok:
            error = Unavailable(
                f"Paddle answered {status}", status=status, request_id=envelope.request_id
            )
            return error, status, True, wait
        error = ApiError(
            status,
            code=envelope.code,
            detail=envelope.detail,
            type=envelope.type,
            field_errors=envelope.field_errors,
            request_id=envelope.request_id,
            documentation_url=envelope.documentation_url,
        )
        return error, status, True, None


_PADDLE_ID = re.compile(r"/[a-z]{2,4}_[0-9a-z]+")


def operation_of(path: str) -> str:
    """A request's path with Paddle's ids taken out: `/subscriptions/{id}/charge`."""
    return _PADDLE_ID.sub("/{id}", path.split("?")[0])


def outcome_of(attempt) -> str:
    """`2xx`, `429`, `5xx`, `4xx:<Paddle's code>`, `timeout` or `unreachable`."""
    if isinstance(attempt, dict):
        return "2xx"
    error, status = attempt[0], attempt[1]
    if status is None:
        return "timeout" if "in time" in str(error) else "unreachable"
    if status == 429:
        return "429"
    if status >= 500:
        return "5xx"
    return f"4xx:{getattr(error, 'code', '') or status}"


def _failed_before_sending(error: requests.exceptions.ConnectionError) -> bool:
    """A refused or unresolvable connection never carried our request."""
    text = repr(error).lower()
    return any(
        marker in text
        for marker in ("connection refused", "name or service not known", "newconnectionerror")
    )
