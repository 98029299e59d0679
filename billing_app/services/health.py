"""Is the service whole: its database answers, a scheduler is alive, and the settings that
turn features on are there."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from billing_app.errors import DatabaseUnavailable
from billing_app.extensions import db
from billing_app.models import ProcessHeartbeat
from billing_app.services.events.signing import is_secret

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = timedelta(seconds=30)
# Three missed beats: a process that is busy for a moment is not reported dead.
ALIVE_WITHIN = 3 * HEARTBEAT_EVERY
FORGET_AFTER = timedelta(days=1)


def check_database() -> None:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        raise DatabaseUnavailable() from None


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(session: Session, kind: str, started_at: datetime, now: datetime) -> None:
    """Say this process is alive; forget processes not heard from in a day."""
    process = this_process()
    updated = session.execute(
        update(ProcessHeartbeat).where(ProcessHeartbeat.process == process).values(seen_at=now)
    )
    if updated.rowcount == 0:
        session.add(
            ProcessHeartbeat(process=process, kind=kind, started_at=started_at, seen_at=now)
        )
    session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.seen_at < now - FORGET_AFTER))


@dataclass(frozen=True)
class Liveness:
    kind: str
    alive: bool
    last_seen_at: datetime | None
    process: str | None


def liveness(session: Session, kind: str, now: datetime) -> Liveness:
    """Whether any process of `kind` has beaten lately, and the latest one that did."""
    latest = session.scalars(
        select(ProcessHeartbeat)
        .where(ProcessHeartbeat.kind == kind)
        .order_by(ProcessHeartbeat.seen_at.desc())
        .limit(1)
    ).first()
    if latest is None:
        return Liveness(kind, False, None, None)
    return Liveness(kind, now - latest.seen_at <= ALIVE_WITHIN, latest.seen_at, latest.process)


# What stops working without each setting, by the kind of process that needs it.
NEEDED_SETTINGS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    "web": (
        (("PADDLE_API_KEY",), "checkout, subscription actions and the portal answer 503"),
        (("PADDLE_WEBHOOK_SECRETS",), "every webhook from Paddle is refused (401)"),
        (("AUTH_JWT_SECRET", "AUTH_JWKS_URL"), "every user endpoint answers 401"),
        (("BILLING_SERVICE_TOKEN",), "service endpoints and /metrics answer 401"),
    ),
    "worker": (),
    "scheduler": (
        (("PADDLE_API_KEY",), "nightly reconciliation and usage billing cannot reach Paddle"),
    ),
}


def missing_settings(config: dict[str, Any], kind: str) -> list[str]:
    """One line per missing setting that turns something off in a process of `kind`."""
    lines = []
    for names, consequence in NEEDED_SETTINGS[kind]:
        if not any(config.get(name) for name in names):
            lines.append(f"{' or '.join(names)} is not set: {consequence}")
    if config.get("EVENTS_ENDPOINT_URL") and not is_secret(
        config.get("EVENTS_ENDPOINT_SECRET") or ""
    ):
        lines.append(
            "EVENTS_ENDPOINT_SECRET is not a whsec_ secret (`billing events new-secret`):"
            " events to EVENTS_ENDPOINT_URL are not sent"
        )
    return lines


def warn_about_missing_settings(config: dict[str, Any], kind: str) -> None:
    for line in missing_settings(config, kind):
        log.warning("%s process: %s", kind, line)
