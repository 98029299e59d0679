"""Changes made by the clock alone, announced: no row changes when a scheduled cancellation
or pause takes effect, a past-due grace period ends, a trial ends, a purchase's grant runs
out or a change at period end replaces the plan paid for, yet what the account may use
does. The scheduler's sweep (every SWEEP_EVERY, once across processes) finds the accounts
with such a moment since the last sweep and lets the outbox compare their entitlements with
the ones announced: one `entitlements.changed` each, within a minute of the moment, however
long the sweep was away. It also gives each trial its `subscription.trial_ending`,
EVENTS_TRIAL_ENDING_NOTICE_HOURS before it ends, once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from billing_app.db import upsert_insert
from billing_app.models import EventClock, OutboundEvent, Purchase, Subscription
from billing_app.services.entitlements.access import AccessPolicy
from billing_app.services.events import outbox
from billing_app.services.events.changes import WATCHED, Emission, iso, subscription_shape

SWEEP_EVERY = timedelta(seconds=30)
FIRST_LOOK_BACK = timedelta(hours=1)  # how far the very first sweep looks
BATCH = 500  # accounts per transaction

CLOCK = "entitlements"


def _between(column, since: datetime, until: datetime):
    return and_(column > since, column <= until)


def accounts_with_moments(
    session: Session, since: datetime, until: datetime, policy: AccessPolicy
) -> list[str]:
    """Accounts whose access may have changed by the clock in (since, until]."""
    grace = policy.past_due_grace
    subscriptions = select(Subscription.account_id).where(
        Subscription.account_id.is_not(None),
        or_(
            and_(
                Subscription.scheduled_action.in_(("cancel", "pause")),
                _between(Subscription.scheduled_effective_at, since, until),
            ),
            and_(
                Subscription.status == "past_due",
                _between(Subscription.current_period_start, since - grace, until - grace),
            ),
            and_(
                Subscription.status == "trialing",
                _between(Subscription.trial_ends_at, since, until),
            ),
            # A change at period end: the plan paid for is held until the new period.
            _between(Subscription.held_until, since, until),
        ),
    )
    purchases = select(Purchase.account_id).where(
        Purchase.account_id.is_not(None),
        Purchase.revoked_at.is_(None),
        _between(Purchase.granted_until, since, until),
    )
    found = session.execute(subscriptions.union(purchases)).scalars()
    return sorted(set(found))


def _trial_key(subscription_id, ends_at: datetime) -> str:
    return f"subscription.trial_ending:{subscription_id}:{iso(ends_at)}"


def trial_notices(session: Session, until: datetime, notice: timedelta) -> list[Emission]:
    """A `subscription.trial_ending` for each trial ending within `notice` of `until` that
    has not had one (a trial shorter than the notice gets its own as soon as it starts)."""
    watched = WATCHED[Subscription]
    ending = session.execute(
        watched.query.where(
            Subscription.status == "trialing",
            Subscription.account_id.is_not(None),
            _between(Subscription.trial_ends_at, until, until + notice),
        )
    ).all()
    keys = {_trial_key(row.id, row.trial_ends_at): row for row in ending}
    if not keys:
        return []
    told = set(
        session.scalars(select(OutboundEvent.once_key).where(OutboundEvent.once_key.in_(keys)))
    )
    return [
        Emission(
            row.account_id,
            "subscription.trial_ending",
            {
                "subscription": subscription_shape(row._mapping),
                "trial_ends_at": iso(row.trial_ends_at),
            },
            subject=str(row.id),
            once_key=key,
        )
        for key, row in keys.items()
        if key not in told
    ]


def sweep(
    session: Session, now: datetime, policy: AccessPolicy, *, trial_notice: timedelta
) -> dict[str, int]:
    """Announce what the clock changed since the last sweep, up to `now`; commits (a batch
    of accounts at a time, and where it got to with the last)."""
    session.execute(
        upsert_insert(session)(EventClock)
        .values(name=CLOCK, swept_until=now - FIRST_LOOK_BACK)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    since = session.scalar(select(EventClock.swept_until).where(EventClock.name == CLOCK))
    session.commit()
    outbox.caused_by(session, "clock")
    accounts = accounts_with_moments(session, since, now, policy)
    notices = trial_notices(session, now, trial_notice)
    for start in range(0, max(len(accounts), 1), BATCH):
        # Accounts never announced are compared with what they had before the moment.
        outbox.touch(session, *accounts[start : start + BATCH], as_of=since)
        if start == 0:
            for notice in notices:
                outbox.emit(session, notice)
        session.commit()
    clock = session.get(EventClock, CLOCK, with_for_update=True)
    clock.swept_until = max(clock.swept_until, now)
    session.commit()
    return {"accounts": len(accounts), "trial_notices": len(notices)}
