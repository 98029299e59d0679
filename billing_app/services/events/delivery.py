"""Deliveries as a work queue, claimed as the webhook inbox is (`billing_app.worker` runs
both): a claim marks a batch of due deliveries as one worker's until a visibility timeout,
picked `FOR UPDATE SKIP LOCKED` on PostgreSQL; the worker sends them, at once, and settles
them in one transaction.

Order: per endpoint and account only the lowest sequence still pending is due, so an
account's events arrive in the order they happened, and one that is being retried holds
back the ones after it, until it has failed for EVENTS_ORDER_HOLD_SECONDS (default six
hours). Then the later ones go ahead: an endpoint that refuses one event for good must not
lose the account every later one for the three days of its retries, and the receiver can
tell an older event arriving late by its `sequence`.

Retries follow the spec's schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h)
with a tenth of jitter, later if the endpoint's `Retry-After` asks for it; then the delivery
is `failed` (an operator may redeliver it). A 410 disables the endpoint at once; an endpoint
that has failed every delivery for EVENTS_DISABLE_AFTER_HOURS (or EVENTS_DISABLE_AFTER_FAILURES
times, when set) is disabled, logged at ERROR and counted. Its deliveries stay pending:
enabling it delivers them.
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from sqlalchemy import (
    Boolean,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, aliased

from billing_app.db import is_postgresql, utcnow
from billing_app.metrics import EVENT_DELIVERIES, EVENT_DELIVERY_LAG, EVENT_ENDPOINTS_DISABLED
from billing_app.models import (
    EventDelivery,
    EventDeliveryAttempt,
    EventEndpoint,
    OutboundEvent,
)
from billing_app.services.claims import Claims
from billing_app.services.events import outbox
from billing_app.services.events.endpoints import refused_address, signing_secrets
from billing_app.services.events.signing import signed_headers

log = logging.getLogger(__name__)

RETRY_SCHEDULE = tuple(
    timedelta(seconds=seconds)
    for seconds in (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
)
TIMEOUT_SECONDS = 15.0
_RECORDED_ERROR = 500  # characters of an answer or error kept per attempt


@dataclass(frozen=True)
class Settings:
    """What deliveries are told by the configuration (`Settings.of(app.config)`)."""

    allow_private: bool = False
    order_hold: timedelta = timedelta(hours=6)
    disable_after: timedelta = timedelta(days=5)
    disable_after_failures: int = 0  # 0: by time only
    timeout: float = TIMEOUT_SECONDS

    @classmethod
    def of(cls, config) -> Settings:
        return cls(
            allow_private=config["EVENTS_ALLOW_PRIVATE_URLS"],
            order_hold=timedelta(seconds=config["EVENTS_ORDER_HOLD_SECONDS"]),
            disable_after=timedelta(hours=config["EVENTS_DISABLE_AFTER_HOURS"]),
            disable_after_failures=config["EVENTS_DISABLE_AFTER_FAILURES"],
            timeout=config["EVENTS_TIMEOUT_SECONDS"],
        )


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    endpoint: EventEndpoint
    event_id: str
    body: str
    attempts: int
    written_at: datetime


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None = None
    retry_after: timedelta | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


_DELIVERIES = EventDelivery.__table__
_EARLIER = aliased(EventDelivery)


def _due(now: datetime, hold: timedelta):
    """Pending, due, unclaimed, to an enabled endpoint, and first in its account's line."""
    waits_on_earlier = exists().where(
        _EARLIER.endpoint_id == EventDelivery.endpoint_id,
        _EARLIER.account_id == EventDelivery.account_id,
        _EARLIER.status == "pending",
        _EARLIER.sequence < EventDelivery.sequence,
        or_(_EARLIER.first_failed_at.is_(None), _EARLIER.first_failed_at > now - hold),
    )
    enabled = select(EventEndpoint.id).where(EventEndpoint.disabled_at.is_(None))
    return and_(
        EventDelivery.status == "pending",
        EventDelivery.next_attempt_at <= now,
        or_(EventDelivery.claimed_until.is_(None), EventDelivery.claimed_until < now),
        EventDelivery.endpoint_id.in_(enabled),
        ~waits_on_earlier,
    )


def claim_due(
    session: Session,
    worker: str,
    *,
    limit: int,
    visibility: timedelta,
    settings: Settings,
    now: datetime | None = None,
) -> list[Claimed]:
    """Mark up to `limit` due deliveries as `worker`'s and return them. Commits."""
    now = now or utcnow()
    pick = (
        select(EventDelivery.id)
        .where(_due(now, settings.order_hold))
        .order_by(EventDelivery.next_attempt_at, EventDelivery.id)
        .limit(limit)
    )
    if is_postgresql(session):
        pick = pick.with_for_update(skip_locked=True, of=EventDelivery)
        # A plan for this `now`: the generic plan PostgreSQL settles on for a statement
        # prepared again and again (psycopg prepares after five) sorts every due row behind
        # the heads' anti-join, and takes a second where this one takes milliseconds.
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    claimed_ids = (
        session.execute(
            update(EventDelivery)
            .where(EventDelivery.id.in_(pick.scalar_subquery()))
            .values(claimed_by=worker, claimed_until=now + visibility)
            .returning(EventDelivery.id)
        )
        .scalars()
        .all()
    )
    session.commit()
    if not claimed_ids:
        return []
    rows = session.execute(
        select(
            EventDelivery.id,
            EventDelivery.attempts,
            OutboundEvent.id.label("event_id"),
            OutboundEvent.body,
            OutboundEvent.occurred_at,
            EventEndpoint,
        )
        .join(OutboundEvent, OutboundEvent.position == EventDelivery.event_position)
        .join(EventEndpoint, EventEndpoint.id == EventDelivery.endpoint_id)
        .where(EventDelivery.id.in_(claimed_ids))
        .order_by(EventDelivery.id)
    ).all()
    session.commit()
    for endpoint in {row.EventEndpoint for row in rows}:
        session.expunge(endpoint)  # read by the sending threads, outside any session
    return [
        Claimed(row.id, row.EventEndpoint, row.event_id, row.body, row.attempts, row.occurred_at)
        for row in rows
    ]


# --- sending -------------------------------------------------------------------------


def _retry_after(response: requests.Response) -> timedelta | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return timedelta(seconds=max(0, int(value)))
    except ValueError:
        try:
            return max(parsedate_to_datetime(value) - utcnow(), timedelta(0))
        except (TypeError, ValueError):
            return None


def send(http: requests.Session, claimed: Claimed, settings: Settings) -> Outcome:
    """POST one delivery, signed; what the endpoint answered (never raises)."""
    now = utcnow()
    started = time.perf_counter()
    if not settings.allow_private and (why := refused_address(claimed.endpoint.url)):
        return Outcome(claimed, now, None, 0, f"not sent: {why}")
    secrets = signing_secrets(claimed.endpoint, now)
    if not secrets:
        return Outcome(claimed, now, None, 0, "not sent: the endpoint has no signing secret")
    try:
        headers = signed_headers(claimed.event_id, int(now.timestamp()), claimed.body, secrets)
    except ValueError:
        return Outcome(claimed, now, None, 0, "not sent: the signing secret is not whsec_ base64")
    try:
        response = http.post(
            claimed.endpoint.url,
            data=claimed.body.encode(),
            headers=headers,
            timeout=settings.timeout,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        latency = int((time.perf_counter() - started) * 1000)
        return Outcome(claimed, now, None, latency, type(error).__name__)
    latency = int((time.perf_counter() - started) * 1000)
    ok = 200 <= response.status_code < 300
    error = None if ok else (response.text or "")[:_RECORDED_ERROR] or None
    return Outcome(claimed, now, response.status_code, latency, error, _retry_after(response))


def send_all(http: requests.Session, batch: list[Claimed], settings: Settings, pool) -> list:
    """Every delivery of a batch at once (each endpoint's slowness is its own)."""
    return list(pool.map(lambda claimed: send(http, claimed, settings), batch))


# --- settling ------------------------------------------------------------------------


def retry_delay(attempts: int, retry_after: timedelta | None = None) -> timedelta | None:
    """After `attempts` failed tries, the wait before the next (None: the schedule is over)."""
    if attempts > len(RETRY_SCHEDULE):
        return None
    planned = RETRY_SCHEDULE[attempts - 1]
    planned *= 1 + random.uniform(-0.1, 0.1)  # noqa: S311 (jitter, not secrecy)
    return max(planned, retry_after) if retry_after else planned


_SETTLE = (
    update(EventDelivery)
    .where(
        EventDelivery.id == bindparam("delivery_id"),
        EventDelivery.claimed_by == bindparam("worker"),
    )
    .values(
        status=bindparam("status"),
        attempts=EventDelivery.attempts + 1,
        next_attempt_at=bindparam("next_attempt_at"),
        # Cleared by a success; else the first failure keeps its time.
        first_failed_at=case(
            (bindparam("delivered", type_=Boolean), None),
            else_=func.coalesce(EventDelivery.first_failed_at, bindparam("first_failed_at")),
        ),
        last_status_code=bindparam("status_code"),
        last_error=bindparam("error"),
        last_latency_ms=bindparam("latency_ms"),
        delivered_at=bindparam("delivered_at"),
        claimed_by=None,
        claimed_until=None,
    )
)


def settle(
    session: Session, worker: str, outcomes: list[Outcome], settings: Settings
) -> dict[str, int]:
    """Record each outcome (an attempt row, the delivery's state, its endpoint's health)
    in one transaction; the outcomes counted."""
    now = utcnow()
    params, attempts, counted = [], [], {}
    gone: dict[str, EventEndpoint] = {}
    health: dict[str, bool] = {}  # endpoint: did any delivery succeed
    for outcome in outcomes:
        claimed = outcome.claimed
        endpoint_id = claimed.endpoint.id
        tries = claimed.attempts + 1
        first_failed = None
        if outcome.delivered:
            status, next_at, kind = "delivered", now, "delivered"
            EVENT_DELIVERY_LAG.observe((now - claimed.written_at).total_seconds())
        elif outcome.status_code == 410:
            status, next_at, kind = "pending", now, "gone"
            gone[endpoint_id] = claimed.endpoint
        else:
            delay = retry_delay(tries, outcome.retry_after)
            status = "pending" if delay is not None else "failed"
            next_at = now + delay if delay is not None else now
            kind = "retrying" if delay is not None else "failed"
            first_failed = now
        health[endpoint_id] = health.get(endpoint_id, False) or outcome.delivered
        counted[kind] = counted.get(kind, 0) + 1
        EVENT_DELIVERIES.labels(kind).inc()
        params.append(
            {
                "delivery_id": claimed.delivery_id,
                "worker": worker,
                "status": status,
                "next_attempt_at": next_at,
                "first_failed_at": first_failed,
                "status_code": outcome.status_code,
                "error": outcome.error,
                "latency_ms": outcome.latency_ms,
                "delivered_at": now if outcome.delivered else None,
                "delivered": outcome.delivered,
            }
        )
        attempts.append(
            {
                "delivery_id": claimed.delivery_id,
                "attempted_at": outcome.attempted_at,
                "status_code": outcome.status_code,
                "latency_ms": outcome.latency_ms,
                "error": outcome.error,
            }
        )
    if not params:
        return counted
    connection = session.connection()
    connection.execute(_SETTLE, params)
    connection.execute(insert(EventDeliveryAttempt), attempts)
    _keep_endpoint_health(session, health, gone, now, settings)
    session.commit()
    return counted


def _keep_endpoint_health(session, health, gone, now, settings: Settings) -> None:
    for endpoint_id, any_delivered in sorted(health.items()):
        if any_delivered:
            session.execute(
                update(EventEndpoint)
                .where(EventEndpoint.id == endpoint_id)
                .values(failures=0, failing_since=None, last_success_at=now)
            )
            continue
        endpoint = session.get(EventEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None or endpoint.disabled_at is not None:
            continue
        endpoint.failures += 1
        endpoint.failing_since = endpoint.failing_since or now
        reason = None
        if endpoint_id in gone:
            reason = "the endpoint answered 410 Gone"
        elif now - endpoint.failing_since >= settings.disable_after:
            reason = f"every delivery failed since {endpoint.failing_since.isoformat()}"
        elif settings.disable_after_failures and (
            endpoint.failures >= settings.disable_after_failures
        ):
            reason = f"{endpoint.failures} deliveries in a row failed"
        if reason:
            endpoint.disabled_at, endpoint.disabled_reason = now, reason
            EVENT_ENDPOINTS_DISABLED.inc()
            log.error("event endpoint %s (%s) disabled: %s", endpoint.id, endpoint.url, reason)


# --- an operator's redelivery --------------------------------------------------------


def _again(session: Session, *criteria) -> int:
    return session.execute(
        update(EventDelivery)
        .where(*criteria)
        .values(
            status="pending",
            next_attempt_at=utcnow(),
            first_failed_at=None,
            claimed_by=None,
            claimed_until=None,
        )
    ).rowcount


def redeliver(session: Session, event_id: str) -> int:
    """Send the event again to every endpoint that takes it (those added since too); how
    many deliveries. The caller commits."""
    position = session.scalar(select(OutboundEvent.position).where(OutboundEvent.id == event_id))
    if position is None:
        raise LookupError(f"no event {event_id} (events are kept EVENTS_RETENTION_DAYS)")
    again = _again(session, EventDelivery.event_position == position)
    return again + outbox.fan_out(session, [position], utcnow())


def redeliver_since(session: Session, endpoint_id: str, since: datetime) -> int:
    """Send `endpoint_id` every event since `since` it takes, again; how many."""
    positions = list(
        session.scalars(select(OutboundEvent.position).where(OutboundEvent.occurred_at >= since))
    )
    if not positions:
        return 0
    again = _again(
        session,
        EventDelivery.endpoint_id == endpoint_id,
        EventDelivery.event_position.in_(positions),
    )
    return again + outbox.fan_out(session, positions, utcnow(), endpoint_id=endpoint_id)


# --- the worker's other duties -------------------------------------------------------


CLAIMS = Claims(_DELIVERIES, _DELIVERIES.c.status == "pending")
renew_claims = CLAIMS.renew
release_claims = CLAIMS.release


def backlog(session: Session) -> tuple[int, float | None, int]:
    """Deliveries waiting, the age in seconds of the oldest, and endpoints disabled."""
    count, oldest = session.execute(
        select(func.count(), func.min(EventDelivery.created_at)).where(
            EventDelivery.status == "pending"
        )
    ).one()
    disabled = session.scalar(select(func.count()).where(EventEndpoint.disabled_at.is_not(None)))
    return count, (utcnow() - oldest).total_seconds() if oldest else None, disabled


SENDING_THREADS = 16  # per worker: a batch's deliveries are sent this many at once


def new_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=SENDING_THREADS, thread_name_prefix="event-send")
