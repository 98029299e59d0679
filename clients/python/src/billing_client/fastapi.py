"""FastAPI: `requires_feature` as a dependency.

    exports_allowed = requires_feature(billing, "exports", account=account_id)

    @app.get("/exports")
    def exports(account: str = Depends(exports_allowed)): ...

`account` is a dependency giving the account id (from the caller's token, say). Not
allowed: HTTPException 402 (no paid access) or 403 (the plan lacks the feature).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, HTTPException

from billing_client.client import BillingClient

__all__ = ["requires_feature"]


def requires_feature(
    client: BillingClient, feature: str, *, account: Callable[..., Any]
) -> Callable[..., str]:
    def dependency(account_id: str | None = Depends(account)) -> str:
        if account_id is None:
            raise HTTPException(401, "Not signed in.")
        if not client.allowed(account_id, feature):
            raise HTTPException(
                client.refusal_status(account_id), f"Your plan does not include {feature}."
            )
        return account_id

    return dependency
