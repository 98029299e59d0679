"""The entry point: `Client(api_key, environment="sandbox")` and its resource sub-clients."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import requests

from paddle_client.resources.catalog import Prices, Products
from paddle_client.resources.customers import Customers
from paddle_client.resources.events import Events, Notifications
from paddle_client.resources.selling import Discounts, Pricing
from paddle_client.resources.subscriptions import Subscriptions
from paddle_client.resources.transactions import Transactions
from paddle_client.transport import BASE_URLS, RetryPolicy, Transport


class Client:
    """A Paddle Billing API client.

        client = Client(api_key, environment="sandbox")
        for subscription in client.subscriptions.list(status="active"):
            ...

    `base_url` overrides the environment (a simulator, tests). `session` is the seam for
    tests and connection pooling. `sleep` and `rand` make the retry schedule testable.
    `requests_per_minute` spaces requests evenly (bulk jobs; None means no pacing).
    `before_send` runs before every attempt and may raise to refuse it (a shared budget);
    `after_attempt(method, operation, outcome, seconds, attempt)` after each (metrics;
    `attempt` counts from 1, so above 1 it is a retry).
    The API key is sent as a Bearer token and never appears in a repr, log or error.
    """

    def __init__(
        self,
        api_key: str,
        *,
        environment: str = "sandbox",
        base_url: str | None = None,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        requests_per_minute: float | None = None,
        before_send: Callable[[], None] | None = None,
        after_attempt: Callable[[str, str, str, float, int], None] | None = None,
    ) -> None:
        if base_url is None:
            if environment not in BASE_URLS:
                raise ValueError(f"environment must be one of {sorted(BASE_URLS)}")
            base_url = BASE_URLS[environment]
        self.transport = Transport(
            api_key,
            base_url=base_url,
            timeout=timeout,
            session=session,
            retry=retry or RetryPolicy(),
            sleep=sleep,
            rand=rand,
            requests_per_minute=requests_per_minute,
            before_send=before_send,
            after_attempt=after_attempt,
        )
        self.products = Products(self.transport)
        self.prices = Prices(self.transport)
        self.customers = Customers(self.transport)
        self.transactions = Transactions(self.transport)
        self.subscriptions = Subscriptions(self.transport)
        self.events = Events(self.transport)
        self.notifications = Notifications(self.transport)
        self.pricing = Pricing(self.transport)
        self.discounts = Discounts(self.transport)

    def deadline(self, seconds: float):
        """A context manager: every request inside it (attempts, retries and their waits
        together) is over within `seconds`, or raises `Unavailable`. Per thread."""
        return self.transport.deadline(seconds)

    def __repr__(self) -> str:
        return f"Client(base_url={self.transport.base_url!r})"
