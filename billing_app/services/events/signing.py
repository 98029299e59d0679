"""Signing a delivery to the Standard Webhooks spec (https://www.standardwebhooks.com).

The secret is `whsec_` + base64 of random bytes; the signature of a message is `v1,` +
base64(HMAC-SHA256(secret's bytes, "{webhook-id}.{webhook-timestamp}.{body}")). During a
rotation each secret signs, the signatures separated by spaces: a receiver that knows
either one verifies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 (the spec's prefix, not a secret)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def is_secret(value: str) -> bool:
    try:
        return value.startswith(SECRET_PREFIX) and len(_key(value)) >= 16
    except ValueError:
        return False


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(message_id: str, timestamp: int, body: str, secrets: list[str]) -> dict:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in secrets
        ),
        "content-type": "application/json",
        "user-agent": "billing-service-events/1",
    }
