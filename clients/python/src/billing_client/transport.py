"""The service's HTTP API as this client uses it: JSON in and out, the service token, a
timeout on every call, and the error shape turned into exceptions."""

from __future__ import annotations

import threading
from typing import Any

import requests

from billing_client.errors import BillingError, BillingUnavailable, QuotaExceeded

USER_AGENT = "billing-client/1.0"


class Transport:
    def __init__(self, base_url: str, service_token: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {service_token}", "User-Agent": USER_AGENT}
        self._local = threading.local()  # a requests.Session per thread

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self._headers)
        return session

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The answer's JSON; BillingUnavailable when there is none to be had (connection,
        timeout, 5xx), BillingError (QuotaExceeded for a 402) for the service's refusals."""
        try:
            response = self._session().request(
                method,
                self.base_url + path,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout or self.timeout,
            )
        except requests.RequestException as failure:
            raise BillingUnavailable(None, "unreachable", type(failure).__name__) from None
        if response.status_code < 400:
            return response.json() if response.content else None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        error = str(body.get("error") or f"http_{response.status_code}")
        message = str(body.get("message") or response.reason or "")
        if response.status_code >= 500 or response.status_code == 429:
            raise BillingUnavailable(response.status_code, error, message, body)
        if response.status_code == 402 and error == "quota_exceeded":
            raise QuotaExceeded(response.status_code, error, message, body)
        raise BillingError(response.status_code, error, message, body)
