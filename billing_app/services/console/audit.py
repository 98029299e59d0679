"""The operators' audit log: every state-changing action in the console, and every
sign-in, with who did it, when, to what, and how it ended."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_app.models import AuditEntry

MAX_DETAIL_LENGTH = 2000


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    result: str,
    target: str | None = None,
    account_id: str | None = None,
    detail: str | None = None,
    address: str | None = None,
) -> AuditEntry:
    """Add one entry and commit it: the action it records has already committed or
    rolled back, and the entry must outlive either."""
    entry = AuditEntry(
        actor=actor,
        action=action,
        result=result,
        target=target,
        account_id=account_id,
        detail=detail[:MAX_DETAIL_LENGTH] if detail else None,
        address=address,
    )
    session.add(entry)
    session.commit()
    return entry


def newest_entries(
    session: Session, *, before_id: int | None = None, limit: int = 50
) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(session.scalars(query))
