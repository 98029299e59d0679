"""Changes at the end of the period: "keep what I paid for until the period ends, then
switch". Paddle cannot hold such a change (API-NOTES 7.4: a PATCH of items takes effect at
once, whatever its billing mode), so the service holds it and carries it out.

When: shortly before the renewal (`SEND_AHEAD`, outside Paddle's 30-minute renewal lock),
the new items are sent with `do_not_bill`: no proration charge or credit, and the renewal,
minutes later, bills the new items at their full price. From then until the new period
begins, the subscription holds the plan and seats it had (`held_*`): the account keeps what
it paid for to the end.

Safe when late or killed (the scheduler runs it under a lease, once a minute):
- each run asks Paddle what it holds first: a change that reached Paddle before a crash is
  recorded, never sent again;
- a change that missed the renewal (the scheduler was down across it, so Paddle billed the
  old items) is still made, at once, without a proration charge: a cheaper change is sent
  `prorated_immediately` (the customer is credited the unused part of what they paid for),
  a dearer one `do_not_bill` (our lateness must not cost them);
- Paddle unreachable, or its renewal lock: tried again on the next run.

Reconciliation never sees a drift: the subscription row changes only with Paddle's answer.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from billing_app.errors import InvalidState, describe_failure
from billing_app.models import Plan, Subscription, SubscriptionChange
from billing_app.services.subscriptions.sync import store_answer
from paddle_client import ApiError, Client, Unavailable
from paddle_client.confirm import confirmed_write
from paddle_client.timestamps import parse_timestamp

log = logging.getLogger(__name__)

SEND_AHEAD = timedelta(minutes=45)  # Paddle refuses item changes 30 minutes before renewal
OPEN = ("scheduled", "sending")
# Paddle's refusals that pass: its locks around a renewal, and a past-due subscription's.
TRY_AGAIN = {
    "subscription_locked_renewal",
    "subscription_locked_processing",
    "subscription_update_when_past_due",
}


def open_changes(session: Session, subscription_id: uuid.UUID) -> list[SubscriptionChange]:
    """The changes waiting for the subscription's period end: its plan's (one at most)
    first, then add-ons' removals."""
    return list(
        session.scalars(
            select(SubscriptionChange)
            .where(
                SubscriptionChange.subscription_id == subscription_id,
                SubscriptionChange.status.in_(OPEN),
            )
            .order_by(SubscriptionChange.kind, SubscriptionChange.id)
        )
    )


def withdraw(
    session: Session,
    subscription_id: uuid.UUID,
    why: str,
    *,
    kind: str | None = None,
    price_id: str | None = None,
) -> bool:
    """Withdraw the subscription's waiting changes (all of them: a cancellation, a pause,
    `/resume`; of one `kind` or `price_id`: another change of the same); whether there
    was one."""
    criteria = [
        SubscriptionChange.subscription_id == subscription_id,
        SubscriptionChange.status.in_(OPEN),
    ]
    if kind is not None:
        criteria.append(SubscriptionChange.kind == kind)
    if price_id is not None:
        criteria.append(SubscriptionChange.price_id == price_id)
    withdrawn = session.execute(
        update(SubscriptionChange).where(*criteria).values(status="withdrawn", last_error=why[:500])
    )
    return bool(withdrawn.rowcount)


def schedule(
    session: Session,
    subscription: Subscription,
    *,
    plan: Plan | None,
    price_id: str,
    quantity: int,
) -> SubscriptionChange:
    """Hold a change of the subscription's main item until its period ends, in place of
    any plan change waiting already. The caller holds the row's lock."""
    return _hold(
        session,
        subscription,
        "replaced by another change",
        {"kind": "plan"},
        kind="plan",
        plan_id=plan.id if plan is not None else subscription.plan_id,
        price_id=price_id,
        quantity=quantity,
        from_price_id=subscription.price_id,
        from_plan_id=subscription.plan_id,
        from_quantity=subscription.quantity,
    )


def schedule_removal(
    session: Session, subscription: Subscription, price_id: str
) -> SubscriptionChange:
    """Hold an add-on's removal until the period ends. The caller holds the row's lock."""
    return _hold(
        session,
        subscription,
        "asked again",
        {"price_id": price_id},
        kind="remove_addon",
        price_id=price_id,
        quantity=1,
        from_price_id=price_id,
    )


def _hold(
    session: Session, subscription: Subscription, why: str, replacing: dict, **fields
) -> SubscriptionChange:
    """A new change waiting for the period's end, in place of the ones `replacing` names."""
    effective_at = subscription.next_billed_at or subscription.current_period_end
    if effective_at is None:
        raise InvalidState("This subscription has no period end to change at.")
    withdraw(session, subscription.id, why, **replacing)
    session.flush()
    change = SubscriptionChange(
        subscription_id=subscription.id,
        account_id=subscription.account_id,
        effective_at=effective_at,
        status="scheduled",
        attempts=0,
        **fields,
    )
    session.add(change)
    session.flush()
    return change


def due_changes(session: Session, now: datetime) -> list[int]:
    """The changes whose time to be sent has come (or passed), oldest first."""
    return list(
        session.scalars(
            select(SubscriptionChange.id)
            .where(
                SubscriptionChange.status.in_(OPEN),
                SubscriptionChange.effective_at <= now + SEND_AHEAD,
            )
            .order_by(SubscriptionChange.effective_at, SubscriptionChange.id)
        )
    )


@dataclass(frozen=True)
class Claimed:
    """A change taken to be sent, as read before Paddle is asked (nothing is held then)."""

    id: int
    subscription_id: uuid.UUID
    paddle_id: str
    kind: str
    price_id: str
    quantity: int
    from_price_id: str | None
    effective_at: datetime
    new_amount: int | None  # the new price's amount per unit, from our catalogue
    held_plan_id: int | None
    held_quantity: int


def carry_out(session: Session, paddle: Client, change_id: int, now: datetime) -> str:
    """Send one due change to Paddle, if it is time; commits. Its outcome: `done`,
    `waiting` (not yet, or tried again next run), `withdrawn` or `failed`."""
    claimed = _claim(session, change_id)
    if isinstance(claimed, str):
        return claimed
    try:
        entity = paddle.subscriptions.get(claimed.paddle_id)  # what Paddle holds now
        if not _holds(entity, claimed):
            if claimed.kind == "plan" and not any(
                _price_of(item) == claimed.from_price_id for item in _items(entity)
            ):
                return _settle(session, claimed, "withdrawn", "the plan changed at Paddle since")
            moment = _moment(entity, claimed, now)
            if moment == "early":
                return _settle(session, claimed, "scheduled", None, effective_at=_renewal(entity))
            mode = "do_not_bill" if moment == "on_time" else _late_mode(entity, claimed)
            entity = _send(paddle, claimed, _items_after(entity, claimed), mode)
            _record_mode(session, claimed, mode)
    except Unavailable as error:
        return _settle(session, claimed, "scheduled", describe_failure(error))
    except ApiError as error:
        status = "scheduled" if error.code in TRY_AGAIN else "failed"
        if status == "failed":
            log.warning("scheduled change %s refused by Paddle: %s", claimed.id, error.code)
        return _settle(session, claimed, status, describe_failure(error))
    return _finish(session, claimed, entity, now)


def _claim(session: Session, change_id: int) -> Claimed | str:
    change = session.get(SubscriptionChange, change_id, with_for_update=True)
    if change is None or change.status not in OPEN:
        session.rollback()
        return "gone"
    subscription = session.get(Subscription, change.subscription_id)
    stopping = subscription.status in ("canceled", "paused") or subscription.scheduled_action in (
        "cancel",
        "pause",
    )
    if stopping or not subscription.paddle_subscription_id:
        change.status = "withdrawn"
        change.last_error = f"the subscription is {subscription.status}"
        session.commit()
        return "withdrawn"
    plan = session.get(Plan, change.plan_id) if change.plan_id else None
    claimed = Claimed(
        id=change.id,
        subscription_id=subscription.id,
        paddle_id=subscription.paddle_subscription_id,
        kind=change.kind,
        price_id=change.price_id,
        quantity=change.quantity,
        from_price_id=change.from_price_id,
        effective_at=change.effective_at,
        new_amount=int(plan.amount) if plan is not None and plan.amount else None,
        held_plan_id=change.from_plan_id,
        held_quantity=change.from_quantity or 1,
    )
    # Visible before Paddle is asked: a crash from here on leaves it `sending`, and the
    # next run asks Paddle what it holds before anything is sent again.
    change.status = "sending"
    change.attempts += 1
    session.commit()
    return claimed


def _items(entity: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in entity.get("items") or [] if item.get("recurring", True)]


def _price_of(item: dict[str, Any]) -> str | None:
    return (item.get("price") or {}).get("id") or item.get("price_id")


def _holds(entity: dict[str, Any], claimed: Claimed) -> bool:
    """Whether Paddle's subscription already has the change."""
    items = {_price_of(item): int(item.get("quantity") or 0) for item in _items(entity)}
    if claimed.kind == "remove_addon":
        return claimed.price_id not in items
    moved_off = claimed.from_price_id == claimed.price_id or claimed.from_price_id not in items
    return items.get(claimed.price_id) == claimed.quantity and moved_off


def _renewal(entity: dict[str, Any]) -> datetime | None:
    return parse_timestamp(entity.get("next_billed_at"))


def _moment(entity: dict[str, Any], claimed: Claimed, now: datetime) -> str:
    """`early` (the renewal is further off than `SEND_AHEAD`), `on_time`, or `late` (Paddle
    renewed on the old items: the period that began at or after the change's time)."""
    period_start = parse_timestamp((entity.get("current_billing_period") or {}).get("starts_at"))
    if period_start is not None and period_start >= claimed.effective_at:
        return "late"
    renewal = _renewal(entity)
    if renewal is not None and now < renewal - SEND_AHEAD:
        return "early"
    return "on_time"


def _late_mode(entity: dict[str, Any], claimed: Claimed) -> str:
    """A change that missed the renewal: a cheaper one (an add-on's removal is) credits
    the unused part of the period paid at the old price; a dearer one (or one we cannot
    price) bills nothing."""
    if claimed.kind == "remove_addon":
        return "prorated_immediately"
    old = next((item for item in _items(entity) if _price_of(item) == claimed.from_price_id), None)
    if old is None or claimed.new_amount is None:
        return "do_not_bill"
    old_amount = int(((old.get("price") or {}).get("unit_price") or {}).get("amount") or 0)
    cheaper = claimed.new_amount * claimed.quantity <= old_amount * int(old.get("quantity") or 1)
    return "prorated_immediately" if cheaper else "do_not_bill"


def _items_after(entity: dict[str, Any], claimed: Claimed) -> list[dict[str, Any]]:
    """Paddle's complete item list with the main item changed (add-ons as they are), or
    without the add-on removed."""
    if claimed.kind == "remove_addon":
        return [
            {"price_id": _price_of(item), "quantity": int(item.get("quantity") or 1)}
            for item in _items(entity)
            if _price_of(item) != claimed.price_id
        ]
    kept = [
        {"price_id": _price_of(item), "quantity": int(item.get("quantity") or 1)}
        for item in _items(entity)
        if _price_of(item) not in (claimed.from_price_id, claimed.price_id)
    ]
    return [{"price_id": claimed.price_id, "quantity": claimed.quantity}, *kept]


def _send(paddle: Client, claimed: Claimed, items: list[dict[str, Any]], mode: str) -> dict:
    return confirmed_write(
        lambda: paddle.subscriptions.update(
            claimed.paddle_id, items=items, proration_billing_mode=mode
        ),
        lambda: paddle.subscriptions.get(claimed.paddle_id),
        lambda entity: _holds(entity, claimed),
    )


def _record_mode(session: Session, claimed: Claimed, mode: str) -> None:
    session.execute(
        update(SubscriptionChange)
        .where(SubscriptionChange.id == claimed.id)
        .values(proration_billing_mode=mode)
    )


def _settle(
    session: Session,
    claimed: Claimed,
    status: str,
    note: str | None,
    *,
    effective_at: datetime | None = None,
) -> str:
    values: dict[str, Any] = {"status": status, "last_error": note}
    if effective_at is not None:
        values["effective_at"] = effective_at
    session.execute(
        update(SubscriptionChange)
        .where(SubscriptionChange.id == claimed.id, SubscriptionChange.status == "sending")
        .values(**values)
    )
    session.commit()
    return "waiting" if status == "scheduled" else status


def _finish(session: Session, claimed: Claimed, entity: dict[str, Any], now: datetime) -> str:
    """Keep Paddle's answer, the hold of what the account paid for until the new period,
    and the change done: one transaction."""
    subscription = store_answer(session, claimed.subscription_id, entity)
    renewal = _renewal(entity)
    on_time = renewal is not None and now < renewal <= claimed.effective_at + SEND_AHEAD
    if claimed.kind == "plan" and on_time:
        subscription.held_plan_id = claimed.held_plan_id
        subscription.held_quantity = claimed.held_quantity
        subscription.held_until = renewal
    change = session.get(SubscriptionChange, claimed.id, with_for_update=True)
    change.status = "done"
    change.sent_at = now
    change.last_error = None
    session.commit()
    return "done"
