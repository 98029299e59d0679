"""User tokens as the identity provider signs them (HS256, the suite's secret)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from tests.helpers.config import JWT_SECRET, SERVICE_TOKEN


def user_token(subject: str = "acct_1", /, *, secret: str = JWT_SECRET, **claims: Any) -> str:
    now = datetime.now(UTC)
    payload = {
        "sub": subject,
        "email": f"{subject}@example.com",
        "email_verified": True,  # as most identity providers say; tests of the rest say False
        "exp": now + timedelta(hours=1),
    }
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


def auth(subject: str = "acct_1", /, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(subject, **claims)}"}


def service_auth() -> dict[str, str]:
    """The product's backend services' header (BILLING_SERVICE_TOKEN)."""
    return {"Authorization": f"Bearer {SERVICE_TOKEN}"}
