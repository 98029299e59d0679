"""Counting a report in a meter that does not add up quantities: `max` (the period's peak),
`latest` (the last value by `occurred_at`) and `unique_count` (distinct subjects). `sum`
and `count` add to the counter in one statement (`recording`); these take a few, in an order
that keeps them exact under concurrency:

1. the event first, under its unique key: a repeated key stops here, having changed nothing;
2. the counter's row, locked (what it stood at before: thresholds are judged on the rise);
3. the change: the peak or latest value set, or a new subject added and the counter raised
   by one if it fits the cap (a refusal removes the event and the subject again);
4. the event's answer, written once the figure is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, bindparam, case, exists, select
from sqlalchemy.orm import Session

from billing_app.db import upsert_insert
from billing_app.models import UsageCounter, UsageEvent, UsageSubject
from billing_app.services.usage.meters import Meter

_COUNTERS = UsageCounter.__table__
_EVENTS = UsageEvent.__table__
_SUBJECTS = UsageSubject.__table__
_KEY = ("account_id", "meter", "period_start")
# The columns a report writes, here and in `recording` (a `latest` meter's counter also
# keeps `latest_at`).
COUNTER_COLUMNS = (
    "account_id",
    "meter",
    "period_start",
    "period_end",
    "used",
    "plan_id",
    "paddle_subscription_id",
    "updated_at",
)
EVENT_COLUMNS = (
    "idempotency_key",
    "account_id",
    "meter",
    "quantity",
    "occurred_at",
    "period_start",
    "period_end",
    "recorded_at",
    "subject",
)


# A key is unique within its period (the table's unique index; on PostgreSQL each month is
# a partition, and such an index must hold the partition key). A repeat that falls in
# another period (a report sent at a period's end, retried with `occurred_at` now after it)
# is found by `KEY_ELSEWHERE` in every period still open to reports.
KEY_INDEX = ["idempotency_key", "period_start"]
KEY_ELSEWHERE = exists().where(
    _EVENTS.c.idempotency_key == bindparam("idempotency_key"),
    _EVENTS.c.period_start != bindparam("period_start"),
    _EVENTS.c.period_end > bindparam("open_since"),
)


def recorded_elsewhere(session: Session, values: dict) -> bool:
    """Whether the report's key counted in another period still open to reports."""
    return bool(session.scalar(select(KEY_ELSEWHERE), values))


@dataclass(frozen=True)
class Counted:
    used: int | None  # None: refused (a new subject past the cap)
    before: int
    duplicate: bool = False


def count_report(session: Session, meter: Meter, values: dict) -> Counted:
    """Count one report of a `max`, `latest` or `unique_count` meter (see the module)."""
    if recorded_elsewhere(session, values):
        return Counted(None, 0, duplicate=True)
    insert = upsert_insert(session)
    event_id = session.execute(
        insert(_EVENTS)
        .values({name: values[name] for name in EVENT_COLUMNS})
        .on_conflict_do_nothing(index_elements=KEY_INDEX)
        .returning(_EVENTS.c.id)
    ).scalar()
    if event_id is None:
        return Counted(None, 0, duplicate=True)
    key = [_COUNTERS.c[name] == values[name] for name in _KEY]
    before = session.scalar(select(_COUNTERS.c.used).where(*key).with_for_update()) or 0
    if meter.aggregation == "unique_count":
        used = _count_subject(session, insert, values, before)
    else:
        used = session.execute(_set_value(insert, meter.aggregation), _counter(values)).scalar()
    if used is None:
        session.execute(_EVENTS.delete().where(_EVENTS.c.id == event_id))
        return Counted(None, before)
    answer = {"used": used, "meter": values["meter_terms"], "credits": values["credits"]}
    session.execute(_EVENTS.update().where(_EVENTS.c.id == event_id).values(answer=answer))
    return Counted(used, before)


def _counter(values: dict) -> dict:
    """The counter's columns (a `latest` meter's value is as of the report's moment)."""
    return {
        **{name: values[name] for name in COUNTER_COLUMNS},
        "latest_at": values["occurred_at"],
    }


def _count_subject(session: Session, insert, values: dict, before: int) -> int | None:
    subject = {name: values[name] for name in (*_KEY, "period_end", "subject")}
    added = session.execute(
        insert(_SUBJECTS)
        .values(subject)
        .on_conflict_do_nothing(index_elements=[*_KEY, "subject"])
        .returning(_SUBJECTS.c.id)
    ).scalar()
    if added is None:
        return before  # counted already this period: admitted, nothing changes
    counter = {**_counter(values), "used": 1}
    statement = insert(_COUNTERS).values(counter)
    raised = _COUNTERS.c.used + 1
    limit = values["hard_limit"]
    used = session.execute(
        statement.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={"used": raised, "updated_at": statement.excluded.updated_at},
            where=raised <= limit if limit is not None else None,
        ).returning(_COUNTERS.c.used)
    ).scalar()
    if used is None or (limit is not None and used > limit):
        session.execute(_SUBJECTS.delete().where(_SUBJECTS.c.id == added))
        return None
    return used


def _set_value(insert, aggregation: str):
    """The counter set to the report's value: the higher of the two (`max`), or the
    report's when it is the latest reported (`latest`)."""
    columns = (*COUNTER_COLUMNS, "latest_at")
    statement = insert(_COUNTERS).values(
        {name: bindparam(name, type_=_COUNTERS.c[name].type) for name in columns}
    )
    new, current = statement.excluded, _COUNTERS.c
    if aggregation == "max":
        changes = {"used": case((new.used > current.used, new.used), else_=current.used)}
    else:
        newer = (current.latest_at.is_(None)) | (new.latest_at >= current.latest_at)
        changes = {
            "used": case((newer, new.used), else_=current.used),
            "latest_at": case((newer, new.latest_at), else_=current.latest_at),
        }
    return statement.on_conflict_do_update(
        index_elements=list(_KEY), set_={**changes, "updated_at": new.updated_at}
    ).returning(_COUNTERS.c.used.cast(BigInteger))
