"""Paddle webhook signatures (`Paddle-Signature: ts=...;h1=...`) and the notification envelope.

The signed message is the `ts` value as written, `:`, then the raw body bytes exactly as
received; `h1` is its hex HMAC-SHA256 keyed with the destination's secret (the whole
`pdl_ntfset_...` string as UTF-8). Several `h1` and several secrets may be in play during a
rotation: any match verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from paddle_client.timestamps import parse_timestamp

HEADER = "Paddle-Signature"
DEFAULT_TOLERANCE_SECONDS = 5
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII digits only (str.isdigit takes "²")


class SignatureError(Exception):
    """The request is not a verified Paddle notification."""


class MissingSignature(SignatureError):
    pass


class MalformedSignature(SignatureError):
    pass


class SignatureExpired(SignatureError):
    """The timestamp is older (or further in the future) than the tolerance allows."""


class SignatureMismatch(SignatureError):
    """No `h1` matches any configured secret."""


@dataclass(frozen=True)
class ParsedSignature:
    timestamp: str
    signatures: tuple[str, ...]


def parse_signature_header(header: str | None) -> ParsedSignature:
    if header is None or not header.strip():
        raise MissingSignature(f"no {HEADER} header")
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if not sep or not value:
            raise MalformedSignature(f"{HEADER}: expected key=value pairs")
        if key == "ts":
            if timestamp is not None or not _UNIX_SECONDS.fullmatch(value):
                raise MalformedSignature(f"{HEADER}: ts must appear once, as unix seconds")
            timestamp = value
        elif key == "h1":
            signatures.append(value)
        else:
            raise MalformedSignature(f"{HEADER}: unknown key {key!r}")
    if timestamp is None or not signatures:
        raise MalformedSignature(f"{HEADER}: needs ts and at least one h1")
    return ParsedSignature(timestamp=timestamp, signatures=tuple(signatures))


def compute_signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    message = timestamp.encode("ascii") + b":" + raw_body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(
    header: str | None,
    raw_body: bytes,
    secrets: Iterable[str],
    *,
    tolerance: float | None = DEFAULT_TOLERANCE_SECONDS,
    now: Callable[[], float] = time.time,
) -> None:
    """Raise a `SignatureError` unless `header` signs `raw_body` with one of `secrets`.

    `tolerance` (seconds) bounds the timestamp's distance from `now()` in both directions;
    `None` skips the time check (for replaying recorded vectors, never in production).
    """
    parsed = parse_signature_header(header)
    secrets = [secret for secret in secrets if secret]
    if not secrets:
        raise SignatureMismatch("no webhook secret configured")
    if tolerance is not None and abs(now() - int(parsed.timestamp)) > tolerance:
        raise SignatureExpired(f"{HEADER} timestamp is outside the {tolerance:g}s tolerance")
    matched = False
    for secret in secrets:
        expected = compute_signature(secret, parsed.timestamp, raw_body)
        for candidate in parsed.signatures:
            # Keep comparing after a match, so timing says nothing about which matched.
            # As bytes: compare_digest refuses str with non-ASCII characters.
            matched |= hmac.compare_digest(expected.encode(), candidate.encode("utf-8", "replace"))
    if not matched:
        raise SignatureMismatch(f"{HEADER} does not match the body")


def sign(raw_body: bytes, secrets: str | Iterable[str], *, timestamp: int | None = None) -> str:
    """A `Paddle-Signature` header for `raw_body`, as Paddle would send it (tests, simulator)."""
    if isinstance(secrets, str):
        secrets = [secrets]
    ts = str(int(time.time()) if timestamp is None else timestamp)
    parts = [f"ts={ts}"] + [f"h1={compute_signature(s, ts, raw_body)}" for s in secrets]
    return ";".join(parts)


class MalformedNotification(ValueError):
    """A verified body that is not a Paddle notification envelope."""


@dataclass(frozen=True)
class Notification:
    event_id: str
    event_type: str
    occurred_at: datetime
    notification_id: str | None
    data: dict[str, Any]


MAX_ID_LENGTH = 64
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _identifier(
    body: dict[str, Any], key: str, *, required: bool = True, name: str | None = None
) -> str | None:
    value, name = body.get(key), name or key
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise MalformedNotification(f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH or not value.isascii() or not value.isprintable():
        raise MalformedNotification(f"{name} must be printable ASCII, at most {MAX_ID_LENGTH}")
    return value


def parse_notification(raw_body: bytes | str) -> Notification:
    """The envelope `{event_id, event_type, occurred_at, notification_id, data}`, checked
    so that whatever a (verified) body holds, storing it cannot fail."""
    try:
        text = raw_body.decode("utf-8") if isinstance(raw_body, bytes) else raw_body
    except UnicodeDecodeError:
        raise MalformedNotification("body is not UTF-8") from None
    try:
        body = json.loads(text)
    except ValueError:
        raise MalformedNotification("body is not JSON") from None
    except RecursionError:
        raise MalformedNotification("body is nested too deeply") from None
    if not isinstance(body, dict):
        raise MalformedNotification("body is not a JSON object")
    missing = [key for key in ("event_id", "event_type", "occurred_at", "data") if key not in body]
    if missing:
        raise MalformedNotification(f"missing {', '.join(missing)}")
    event_id = _identifier(body, "event_id")
    event_type = _identifier(body, "event_type")
    notification_id = _identifier(body, "notification_id", required=False)
    if not isinstance(body["occurred_at"], str):
        raise MalformedNotification("occurred_at must be a non-empty string")
    if not isinstance(body["data"], dict):
        raise MalformedNotification("data must be an object")
    _identifier(body["data"], "id", name="data.id")  # the entity's id, as every handler reads it
    try:
        occurred_at = parse_timestamp(body["occurred_at"])
    except (ValueError, OverflowError):
        raise MalformedNotification("occurred_at is not an RFC 3339 timestamp") from None
    if occurred_at is None or not _EARLIEST <= occurred_at < _LATEST:
        raise MalformedNotification("occurred_at is not a plausible time")
    return Notification(
        event_id=event_id,
        event_type=event_type,
        occurred_at=occurred_at,
        notification_id=notification_id,
        data=body["data"],
    )
