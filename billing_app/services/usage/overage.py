"""Billing overage through Paddle, exactly once per (subscription, meter, closed period).

Paddle has no meters: overage is a one-time charge on the subscription
(`POST /subscriptions/{id}/charge` with the meter's one-time `overage_price_id`). A period
is billed once it has closed for late usage (USAGE_LATE_SECONDS after its end): one
`UsageCharge` row per (subscription, meter, period), made once (a unique key), of
`Meter.charge_quantity` of the price (units bought as credits for the period are not
overage). Sending it:

- the row is marked `submitting` and committed before Paddle is asked, with no transaction
  open while Paddle answers;
- Paddle's 201: `confirmed`. Paddle's refusal: `failed`, with the error, tried again after a
  backoff, `dead` after USAGE_CHARGE_MAX_ATTEMPTS;
- no usable answer (a timeout, a 5xx: the charge may have been applied): the row stays
  `submitting`; before anything is sent again, Paddle is asked whether it holds the charge
  (the subscription's next transaction for `next_billing_period`, its `subscription_charge`
  transactions for `immediately`), and if it does the row is `confirmed` without a second
  request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from billing_app.db import upsert_insert, utcnow
from billing_app.errors import describe_failure
from billing_app.models import Plan, UsageCharge, UsageCounter
from billing_app.models.usage import OPEN_CHARGE_STATUSES
from billing_app.services.billing_history.purchases import credits_in
from billing_app.services.usage.meters import plan_meters
from billing_app.services.usage.periods import Period
from billing_app.services.webhooks.ledger import retry_delay
from paddle_client import Client
from paddle_client.errors import ApiError, PaddleError, Unavailable
from paddle_client.timestamps import parse_timestamp

log = logging.getLogger(__name__)

_CHARGES = UsageCharge.__table__
MAX_ERROR = 2000


def open_charges(session: Session, now: datetime, late: timedelta, effective_from: str) -> int:
    """A `pending` charge for each closed period with overage on a billed meter that has
    none yet; how many were made. The caller commits."""
    closed = session.execute(
        select(UsageCounter, Plan)
        .join(Plan, Plan.id == UsageCounter.plan_id)
        .outerjoin(
            UsageCharge,
            and_(
                UsageCharge.paddle_subscription_id == UsageCounter.paddle_subscription_id,
                UsageCharge.meter == UsageCounter.meter,
                UsageCharge.period_start == UsageCounter.period_start,
            ),
        )
        .where(
            UsageCounter.paddle_subscription_id.is_not(None),
            UsageCounter.period_end <= now - late,
            UsageCharge.id.is_(None),
        )
    ).all()
    made = 0
    for counter, plan in closed:
        meter = plan_meters(plan.meters).get(counter.meter)
        if meter is None or meter.overage_price_id is None:
            continue
        period = Period(counter.period_start, counter.period_end)
        meter = meter.with_credits(credits_in(session, counter.account_id, period)[meter.name])
        quantity = meter.charge_quantity(counter.used)
        if quantity == 0:
            continue
        made += (
            session.execute(
                upsert_insert(session)(_CHARGES)
                .values(
                    account_id=counter.account_id,
                    paddle_subscription_id=counter.paddle_subscription_id,
                    meter=counter.meter,
                    period_start=counter.period_start,
                    period_end=counter.period_end,
                    used=counter.used,
                    price_id=meter.overage_price_id,
                    quantity=quantity,
                    effective_from=effective_from,
                    status="pending",
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(
                    index_elements=["paddle_subscription_id", "meter", "period_start"]
                )
                .returning(_CHARGES.c.id)
            ).scalar()
            is not None
        )
    return made


@dataclass(frozen=True)
class ChargeToSend:
    id: int
    paddle_subscription_id: str
    price_id: str
    quantity: int
    effective_from: str
    status: str
    submitted_at: datetime | None
    attempts: int


def due_charges(session: Session, now: datetime) -> list[ChargeToSend]:
    """Charges to send (or to look for at Paddle first, when an answer was lost)."""
    rows = session.scalars(
        select(UsageCharge)
        .where(
            UsageCharge.status.in_(OPEN_CHARGE_STATUSES),
            (UsageCharge.next_attempt_at.is_(None)) | (UsageCharge.next_attempt_at <= now),
        )
        .order_by(UsageCharge.id)
    ).all()
    return [
        ChargeToSend(
            row.id,
            row.paddle_subscription_id,
            row.price_id,
            row.quantity,
            row.effective_from,
            row.status,
            row.submitted_at,
            row.attempts,
        )
        for row in rows
    ]


def paddle_holds(paddle: Client, charge: ChargeToSend) -> bool:
    """Does Paddle hold this charge already (its answer to us having been lost)?"""
    if charge.effective_from == "next_billing_period":
        subscription = paddle.subscriptions.get(
            charge.paddle_subscription_id, includes=["next_transaction"]
        )
        upcoming = (subscription.get("next_transaction") or {}).get("details") or {}
        return any(_is_ours(line, charge) for line in upcoming.get("line_items") or [])
    since = charge.submitted_at - timedelta(minutes=5) if charge.submitted_at else None
    for transaction in paddle.transactions.list(
        subscription_id=charge.paddle_subscription_id, origin="subscription_charge"
    ):
        created = parse_timestamp(transaction["created_at"])
        if since is not None and created < since:
            continue
        lines = (transaction.get("details") or {}).get("line_items") or []
        if any(_is_ours(line, charge) for line in lines):
            return True
    return False


def _is_ours(line: dict, charge: ChargeToSend) -> bool:
    price_id = line.get("price_id") or (line.get("price") or {}).get("id")
    return price_id == charge.price_id and int(line.get("quantity") or 0) == charge.quantity


def _update(session: Session, charge_id: int, **values) -> None:
    session.execute(
        _CHARGES.update().where(_CHARGES.c.id == charge_id).values(updated_at=utcnow(), **values)
    )
    session.commit()


def send_charge(
    session: Session, paddle: Client, charge: ChargeToSend, *, max_attempts: int
) -> str:
    """Send one charge (or find it at Paddle); its new status. No transaction is open
    while Paddle is asked."""
    session.commit()
    if charge.status == "submitting":
        try:
            held = paddle_holds(paddle, charge)
        except PaddleError as error:
            _update(session, charge.id, error=_describe(error, "looking for it"))
            return "submitting"
        if held:
            _update(session, charge.id, status="confirmed", confirmed_at=utcnow(), error=None)
            log.info("overage charge %s found at Paddle after a lost answer", charge.id)
            return "confirmed"
    attempts = charge.attempts + 1
    _update(session, charge.id, status="submitting", attempts=attempts, submitted_at=utcnow())
    try:
        paddle.subscriptions.charge(
            charge.paddle_subscription_id,
            [{"price_id": charge.price_id, "quantity": charge.quantity}],
            effective_from=charge.effective_from,
        )
    except ApiError as refused:
        dead = attempts >= max_attempts
        status = "dead" if dead else "failed"
        retry_at = None if dead else utcnow() + retry_delay(attempts)
        _update(
            session, charge.id, status=status, error=_describe(refused), next_attempt_at=retry_at
        )
        (log.error if dead else log.warning)("overage charge %s %s: %s", charge.id, status, refused)
        return status
    except Unavailable as lost:
        # It may have been applied: it stays `submitting`, and is looked for before any resend.
        _update(session, charge.id, error=_describe(lost, "answer lost"), next_attempt_at=None)
        log.warning("overage charge %s: no answer from Paddle (%s)", charge.id, lost)
        return "submitting"
    _update(session, charge.id, status="confirmed", confirmed_at=utcnow(), error=None)
    return "confirmed"


def _describe(error: Exception, context: str = "") -> str:
    prefix = f"{context}: " if context else ""
    return prefix + describe_failure(error, MAX_ERROR - len(prefix))


def newest_charges(
    session: Session,
    *,
    statuses: tuple[str, ...] | list[str] = (),
    account_id: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[UsageCharge]:
    """Overage charges newest first, for an operator (the CLI's list and the console's)."""
    query = select(UsageCharge).order_by(UsageCharge.id.desc()).limit(limit)
    if statuses:
        query = query.where(UsageCharge.status.in_(list(statuses)))
    if account_id:
        query = query.where(UsageCharge.account_id == account_id)
    if before_id is not None:
        query = query.where(UsageCharge.id < before_id)
    return list(session.scalars(query))
