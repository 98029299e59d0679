"""Where events are sent: adding an endpoint (its secret shown once), listing, disabling,
enabling (which delivers what it missed), rotating its secret, and the one endpoint the
environment names (EVENTS_ENDPOINT_URL, signed with EVENTS_ENDPOINT_SECRET)."""

from __future__ import annotations

import ipaddress
import logging
import socket
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billing_app.db import upsert_insert, utcnow
from billing_app.models import EventDelivery, EventEndpoint
from billing_app.services.events.catalogue import EVENT_TYPES
from billing_app.services.events.signing import new_secret

log = logging.getLogger(__name__)

ENVIRONMENT_ENDPOINT = "ep_environment"
# How long the secret before a rotation still signs, so receivers can move over.
PREVIOUS_SECRET_KEPT = timedelta(hours=24)


class EndpointRefused(ValueError):
    """An endpoint that cannot be added or changed as asked; the message says why."""


def refused_address(url: str) -> str | None:
    """Why `url` may not receive events (a loopback, private, link-local or otherwise
    non-public address, or no address at all), or None if it may."""
    host = urlsplit(url).hostname
    if not host:
        return "it names no host"
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return f"{host} does not resolve"
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            return f"{host} resolves to a non-public address ({ip})"
    return None


def check_url(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointRefused(f"{url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise EndpointRefused("an endpoint URL may not hold credentials")
    if not allow_private and (why := refused_address(url)):
        raise EndpointRefused(
            f"refused: {why} (EVENTS_ALLOW_PRIVATE_URLS=true allows it, for development)"
        )


def types_column(types: list[str] | None) -> str | None:
    """The types an endpoint takes, as stored (None: every type)."""
    if not types:
        return None
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise EndpointRefused(f"unknown event type(s): {', '.join(unknown)}")
    return "," + ",".join(sorted(set(types))) + ","


def types_of(endpoint: EventEndpoint) -> list[str] | None:
    return [kind for kind in endpoint.types.split(",") if kind] if endpoint.types else None


def add_endpoint(
    session: Session,
    url: str,
    *,
    types: list[str] | None = None,
    description: str | None = None,
    allow_private: bool = False,
    source: str = "cli",
) -> tuple[EventEndpoint, str]:
    """A new endpoint and its secret (shown once: only the endpoint's signatures show it
    afterwards). Flushes; the caller commits."""
    stored_types = types_column(types)
    check_url(url, allow_private=allow_private)
    secret = new_secret()
    endpoint = EventEndpoint(
        id=f"ep_{uuid.uuid4().hex[:24]}",
        url=url,
        description=description,
        types=stored_types,
        secret=secret,
        source=source,
        failures=0,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def endpoint_named(session: Session, endpoint_id: str) -> EventEndpoint:
    endpoint = session.get(EventEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None:
        raise EndpointRefused(f"no endpoint {endpoint_id}")
    return endpoint


def list_endpoints(session: Session) -> list[EventEndpoint]:
    return list(session.scalars(select(EventEndpoint).order_by(EventEndpoint.created_at)))


def disable_endpoint(session: Session, endpoint_id: str, reason: str) -> EventEndpoint:
    endpoint = endpoint_named(session, endpoint_id)
    if endpoint.disabled_at is None:
        endpoint.disabled_at, endpoint.disabled_reason = utcnow(), reason
    return endpoint


def enable_endpoint(session: Session, endpoint_id: str) -> int:
    """Enable it again and deliver its backlog now; how many deliveries wait."""
    endpoint = endpoint_named(session, endpoint_id)
    endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
    endpoint.failures = 0
    return session.execute(
        update(EventDelivery)
        .where(EventDelivery.endpoint_id == endpoint_id, EventDelivery.status == "pending")
        .values(next_attempt_at=utcnow(), first_failed_at=None)
    ).rowcount


def rotate_secret(session: Session, endpoint_id: str, *, now: datetime | None = None) -> str:
    """A new secret; the one before it signs too for PREVIOUS_SECRET_KEPT."""
    endpoint = endpoint_named(session, endpoint_id)
    if endpoint.source == "environment":
        raise EndpointRefused("the environment's endpoint is rotated in EVENTS_ENDPOINT_SECRET")
    now = now or utcnow()
    endpoint.previous_secret, endpoint.previous_secret_until = (
        endpoint.secret,
        now + (PREVIOUS_SECRET_KEPT),
    )
    endpoint.secret = new_secret()
    return endpoint.secret


def signing_secrets(endpoint, now: datetime) -> list[str]:
    """The secrets a delivery to `endpoint` is signed with now (newest first)."""
    secrets = [endpoint.secret] if endpoint.secret else []
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_until
        and (endpoint.previous_secret_until > now)
    ):
        secrets.append(endpoint.previous_secret)
    return secrets


def ensure_environment_endpoint(session: Session, url: str | None, secret: str | None) -> None:
    """EVENTS_ENDPOINT_URL (signed with EVENTS_ENDPOINT_SECRET) as an endpoint row, made or
    brought up to date; kept in the database like any endpoint's, so that every worker
    signs alike. A process without the variable leaves the row as it is (disable it with
    `billing events endpoints disable ep_environment`). Commits."""
    if url is None:
        return
    now = utcnow()
    values = {"url": url, "secret": secret, "updated_at": now}
    session.execute(
        upsert_insert(session)(EventEndpoint)
        .values(id=ENVIRONMENT_ENDPOINT, source="environment", failures=0, created_at=now, **values)
        .on_conflict_do_update(
            index_elements=["id"],
            set_=values,
            where=(EventEndpoint.url != url) | EventEndpoint.secret.is_distinct_from(secret),
        )
    )
    session.commit()
