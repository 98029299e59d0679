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
from typing import Any, Generic, TypeVar

from billing_client.client import BillingClient

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]
AppT = TypeVar("AppT")
RequestT = TypeVar("RequestT")


def refusal_body(meter: str) -> bytes:
    return json.dumps(
        {
            "error": "quota_exceeded",
            "message": f"The hard limit of {meter} for this billing period is reached.",
        }
    ).encode()


class _Metering(Generic[AppT, RequestT]):
    def __init__(
        self,
        app: AppT,
        client: BillingClient,
        meter: str,
        *,
        account: Callable[[RequestT], str | None],
        quantity: int = 1,
        refuse_past_limit: bool = True,
    ) -> None:
        self.app = app
        self.client = client
        self.meter = meter
        self.account = account
        self.quantity = quantity
        self.refuse_past_limit = refuse_past_limit

    def admit(self, request: RequestT) -> bool:
        """Count the request, or refuse it (False) past the hard limit."""
        account_id = self.account(request)
        if account_id is None:
            return True
        if self.refuse_past_limit and self.client.exhausted(account_id, self.meter):
            self.client.stats.add("requests_refused")
            return False
        self.client.usage.add(account_id, self.meter, self.quantity)
        return True


class MeteringMiddleware(_Metering[WsgiApp, Environ]):
    """WSGI: `app.wsgi_app = MeteringMiddleware(app.wsgi_app, billing, "api_calls",
    account=lambda environ: environ.get("HTTP_X_ACCOUNT_ID"))`."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.admit(environ):
            return self.app(environ, start_response)
        body = refusal_body(self.meter)
        start_response(
            "402 Payment Required",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]


class AsgiMeteringMiddleware(_Metering[AsgiApp, Scope]):
    """ASGI: `app.add_middleware(AsgiMeteringMiddleware, client=billing, meter="api_calls",
    account=lambda scope: ...)`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.admit(scope):
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
