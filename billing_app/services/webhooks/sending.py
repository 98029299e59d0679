"""`billing webhooks send`: a notification signed as Paddle signs it, posted to a service,
so that trying a handler needs neither Paddle's dashboard nor its signing scheme by heart.

Paddle signs `ts:body` (the unix time, a colon, the raw bytes) with HMAC-SHA256 and the
endpoint's secret, and sends `Paddle-Signature: ts=<time>;h1=<hex digest>`."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from paddle_client import Client
from paddle_client.webhooks import HEADER, sign

# The entity a notification carries, by the first word of its type.
ENTITY_OF_TYPE = {"subscription": "subscriptions", "transaction": "transactions"}


def _paddle_like_id(prefix: str) -> str:
    # Time first, so that ids made later sort later, as Paddle's do.
    return f"{prefix}_{time.time_ns():x}{secrets.token_hex(5)}"


def notification(event_type: str, entity: dict[str, Any]) -> bytes:
    """A new notification of `event_type` carrying `entity`, as Paddle would send it."""
    envelope = {
        "event_id": _paddle_like_id("evt"),
        "event_type": event_type,
        "occurred_at": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "notification_id": _paddle_like_id("ntf"),
        "data": entity,
    }
    return json.dumps(envelope).encode("utf-8")


def entity_from_paddle(paddle: Client, event_type: str, entity_id: str) -> dict[str, Any]:
    """What Paddle holds now for the entity a notification of `event_type` is about."""
    kind = event_type.split(".", 1)[0]
    resource = getattr(paddle, ENTITY_OF_TYPE[kind])
    return resource.get(entity_id)


@dataclass(frozen=True)
class Sent:
    status: int
    body: str


def post_signed(url: str, body: bytes, secret: str, *, timeout: float = 10.0) -> Sent:
    response = requests.post(
        url,
        data=body,
        headers={"Content-Type": "application/json", HEADER: sign(body, secret)},
        timeout=timeout,
    )
    return Sent(response.status_code, response.text)
