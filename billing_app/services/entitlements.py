"""May this account use the product now? Answered from our table alone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from billing_app.models import LIVE_STATUSES, Subscription
from billing_app.services.access import AccessPolicy, Entitlements, entitlements_for


def account_entitlements(
    session: Session, account_id: str, now: datetime, policy: AccessPolicy
) -> Entitlements:
    """One query: the account's live subscription (else its latest) with its plan."""
    rows = session.scalars(
        select(Subscription)
        .options(joinedload(Subscription.plan))
        .where(Subscription.account_id == account_id)
        .order_by(Subscription.status.in_(LIVE_STATUSES).desc(), Subscription.created_at.desc())
        .limit(1)
    ).all()
    return entitlements_for(rows[0] if rows else None, now, policy)
