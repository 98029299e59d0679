"""Metering every request per account, before the handler runs: WSGI (Flask, Django) and
ASGI (FastAPI, Starlette).

Each request with an account adds `quantity` to `meter` through the background reporter.
With `refuse_past_limit`, a request whose meter this process knows to be past its hard limit
(see `BillingClient.exhausted`) is answered 402 `quota_exceeded` without running the
handler, and not counted. `account` picks the account from the request (None: not
metered).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from billing_client.client import BillingClient

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def refusal_body(meter: str) -> bytes:
    return json.dumps(
        {
            "error": "quota_exceeded",
            "message": f"The hard limit of {meter} for this billing period is reached.",
        }
    ).encode()


class _Metering:
    def __init__(
        self, client: BillingClient, meter: str, quantity: int, refuse_past_limit: bool
    ) -> None:
        self.client = client
        self.meter = meter
        self.quantity = quantity
        self.refuse_past_limit = refuse_past_limit

    def admit(self, account_id: str | None) -> bool:
        """Count the request, or refuse it (False) past the hard limit."""
        if account_id is None:
            return True
        if self.refuse_past_limit and self.client.exhausted(account_id, self.meter):
            self.client.stats.add("requests_refused")
            return False
        self.client.usage.add(account_id, self.meter, self.quantity)
        return True


class MeteringMiddleware(_Metering):
    """WSGI: `app.wsgi_app = MeteringMiddleware(app.wsgi_app, billing, "api_calls",
    account=lambda environ: environ.get("HTTP_X_ACCOUNT_ID"))`."""

    def __init__(
        self,
        app: WsgiApp,
        client: BillingClient,
        meter: str,
        *,
        account: Callable[[Environ], str | None],
        quantity: int = 1,
        refuse_past_limit: bool = True,
    ) -> None:
        super().__init__(client, meter, quantity, refuse_past_limit)
        self.app = app
        self.account = account

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.admit(self.account(environ)):
            return self.app(environ, start_response)
        body = refusal_body(self.meter)
        start_response(
            "402 Payment Required",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]


class AsgiMeteringMiddleware(_Metering):
    """ASGI: `app.add_middleware(AsgiMeteringMiddleware, client=billing, meter="api_calls",
    account=lambda scope: ...)`."""

    def __init__(
        self,
        app: AsgiApp,
        client: BillingClient,
        meter: str,
        *,
        account: Callable[[Scope], str | None],
        quantity: int = 1,
        refuse_past_limit: bool = True,
    ) -> None:
        super().__init__(client, meter, quantity, refuse_past_limit)
        self.app = app
        self.account = account

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.admit(self.account(scope)):
            await self.app(scope, receive, send)
            return
        body = refusal_body(self.meter)
        await send(
            {
                "type": "http.response.start",
                "status": 402,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
