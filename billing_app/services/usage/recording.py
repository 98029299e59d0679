"""Usage: recording what an account used of a meter, against its plan's quota, exactly once
per idempotency key; and reading a period's figures.

Recording is one transaction: the period's counter raised by one `INSERT ... ON CONFLICT
DO UPDATE ... WHERE used + quantity <= hard_limit`, then the usage event with its unique
idempotency key. The database decides at the counter's row: concurrent reports against a
hard limit admit exactly as many as fit, and a refused report leaves nothing behind. A
repeat of a key finds the first one's event, rolls its own count back, and is answered as
the first was. Which plan and period a report counts in comes from the same facts the
account's entitlements are read from (`metering_of`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Engine,
    Text,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from billing_app.db import is_postgresql, single_statement, upsert_insert
from billing_app.errors import (
    BillingError,
    DatabaseUnavailable,
    IdempotencyKeyConflict,
    PeriodClosed,
    QuotaExceeded,
    ValidationFailed,
)
from billing_app.models import UsageCounter, UsageEvent
from billing_app.services.billing_history.purchases import credits_in, credits_in_many
from billing_app.services.entitlements.access import AccessPolicy, has_access
from billing_app.services.entitlements.facts import AccessFacts, Grant
from billing_app.services.events import outbox
from billing_app.services.events.changes import Emission, iso
from billing_app.services.usage import aggregations
from billing_app.services.usage.aggregations import (
    COUNTER_COLUMNS,
    EVENT_COLUMNS,
    KEY_ELSEWHERE,
    KEY_INDEX,
    recorded_elsewhere,
)
from billing_app.services.usage.meters import Meter
from billing_app.services.usage.periods import Period, billing_period, calendar_month, checked

_COUNTERS = UsageCounter.__table__
_EVENTS = UsageEvent.__table__


@dataclass(frozen=True)
class MeterUsage:
    """A meter's figures for one period: what was used, against what the plan gives."""

    meter: Meter  # with the period's credits in its included amount and cap
    period: Period
    used: int
    credits: int = 0  # units bought for this period (one-time products' credits)
    duplicate: bool = False  # the answer a report with this key got before

    @property
    def remaining(self) -> int | None:
        return self.meter.remaining(self.used)

    @property
    def overage(self) -> int:
        return self.meter.overage(self.used)

    def answer(self) -> dict:
        return {
            "meter": self.meter.name,
            "period_start": self.period.start,
            "period_end": self.period.end,
            "used": self.used,
            "included": self.meter.included,
            "credits": self.credits,
            "hard_limit": self.meter.hard_limit,
            "remaining": self.remaining,
            "overage": self.overage,
        }


@dataclass(frozen=True)
class Metering:
    """Whose meters an account's usage counts against, and in which periods: a paid
    plan's, by the subscription's billing periods; or the free plan's, by calendar month."""

    meters: dict[str, Meter]
    interval: str | None = None
    interval_count: int = 1
    current: Period | None = None  # the subscription's current period; None: calendar months
    plan_slug: str | None = None
    plan_id: int | None = None
    paddle_subscription_id: str | None = None

    def period_of(self, moment: datetime) -> Period:
        if self.current is None:
            return calendar_month(moment)
        return billing_period(self.current, self.interval or "month", self.interval_count, moment)


def _current_period(start: datetime | None, end: datetime | None) -> Period | None:
    return Period(start, end) if start is not None and end is not None else None


def metering_of(
    facts: AccessFacts, free: Grant | None, now: datetime, policy: AccessPolicy
) -> Metering | None:
    """The account's metering, from the facts its entitlements are read from: the paid
    plan's while the subscription gives access, else the free plan's (if any)."""
    facts = facts.as_of(now)  # a held plan; the add-ons' allowances
    subscription, plan = facts.subscription, facts.plan
    if subscription is not None and plan is not None and has_access(subscription, now, policy):
        return Metering(
            plan.meters,
            plan.interval,
            plan.interval_count,
            _current_period(subscription.current_period_start, subscription.current_period_end),
            plan.slug,
            plan.id,
            subscription.paddle_subscription_id,
        )
    if free is None:
        return None
    return Metering(free.meters, plan_slug=free.slug, plan_id=free.id)


@dataclass(frozen=True)
class Report:
    account_id: str
    meter: str
    quantity: int
    idempotency_key: str
    occurred_at: datetime
    subject: str | None = None  # who, for a `unique_count` meter


def record_usage(
    session: Session,
    report: Report,
    metering: Metering | None,
    now: datetime,
    late: timedelta,
) -> MeterUsage:
    """Count `report` in its period, or refuse it whole; the caller commits. A report whose
    key was recorded before gets that first answer, whatever has changed since."""
    return _judge(session, report, metering, now, late, _Batch(session, undo=session.rollback))


@dataclass
class _Batch:
    """What the reports of one transaction share: the credits bought for each account's
    period (read once), and how a count that turns out to repeat a key is undone."""

    session: Session
    undo: Callable[[], None] | None = None  # None: take the count back with a statement
    credits: dict[tuple[str, datetime], Any] = field(default_factory=dict)

    def credits_in(self, account_id: str, period: Period):
        key = (account_id, period.start)
        if key not in self.credits:
            self.credits[key] = credits_in(self.session, account_id, period)
        return self.credits[key]

    def read_credits_ahead(self, reports: list[Report], meterings, now, late) -> None:
        """The credits of every account's period the reports fall in, in one read."""
        periods: dict[str, set[Period]] = {}
        for report in reports:
            metering = meterings.get(report.account_id)
            if metering is None:
                continue
            try:
                period = checked(
                    metering.period_of(report.occurred_at), report.occurred_at, now, late
                )
            except BillingError:
                continue  # refused when its turn comes
            periods.setdefault(report.account_id, set()).add(period)
        self.credits.update(credits_in_many(self.session, periods))


def record_batch(
    session: Session,
    reports: list[Report],
    meterings: dict[str, Metering | None],
    now: datetime,
    late: timedelta,
) -> list[MeterUsage | BillingError]:
    """Judge each report as `record_usage` would, in one transaction (the caller commits):
    its usage, or the error a single report would have had, in the order sent. A refused
    report changes nothing; a repeated key's count is taken back.

    The reports are applied by account and meter (in the order sent within each), so that
    batches racing each other take their counters' locks, and create new counters, in one
    order: they queue instead of deadlocking."""
    batch = _Batch(session)
    batch.read_credits_ahead(reports, meterings, now, late)
    results: list[MeterUsage | BillingError | None] = [None] * len(reports)
    rest = _count_uncapped_together(session, reports, meterings, now, late, batch, results)
    order = sorted(rest, key=lambda i: (reports[i].account_id, reports[i].meter))
    for index in order:
        report = reports[index]
        try:
            results[index] = _judge(
                session, report, meterings.get(report.account_id), now, late, batch
            )
        except BillingError as refusal:
            results[index] = refusal
    return results


def _count_uncapped_together(
    session: Session,
    reports: list[Report],
    meterings: dict[str, Metering | None],
    now: datetime,
    late: timedelta,
    batch: _Batch,
    results: list,
) -> list[int]:
    """Count at once the reports a cap cannot refuse (new keys of `sum` and `count` meters
    without a hard limit), in three statements for the whole batch; the indexes of the
    others, for one by one.

    Each counter is raised once by its reports' total (the counters in key order, as
    everywhere), and each report is answered with the figure it would have got alone: the
    counter before the batch plus the reports of the batch up to it. A key recorded before
    is answered from its event (the first answer, or a conflict); a key twice in the batch
    goes one by one, after the first is counted."""
    together: list[tuple[int, _Prepared]] = []
    rest: list[int] = []
    seen: set[str] = set()
    for index, report in enumerate(reports):
        prepared = None
        if report.idempotency_key not in seen:
            try:
                prepared = _prepare(report, meterings.get(report.account_id), now, late, batch)
            except BillingError:
                prepared = None  # one by one: a key recorded before answers as then
        seen.add(report.idempotency_key)
        uncapped = prepared is not None and prepared.meter.hard_limit is None
        if uncapped and prepared.meter.aggregation in ("sum", "count"):
            together.append((index, prepared))
        else:
            rest.append(index)
    if not together:
        return rest
    keys = [prepared.report.idempotency_key for _, prepared in together]
    known = {
        event.idempotency_key: event
        for event in session.scalars(select(UsageEvent).where(UsageEvent.idempotency_key.in_(keys)))
    }
    for index, prepared in together:  # recorded before: the first answer, or a conflict
        event = known.get(prepared.report.idempotency_key)
        if event is not None:
            try:
                results[index] = _answer_from(event, prepared.report)
            except BillingError as refusal:
                results[index] = refusal
    together = [(index, p) for index, p in together if p.report.idempotency_key not in known]
    if together:
        _raise_and_keep(session, together, results)
    return rest


def _counter_key(prepared: _Prepared) -> tuple:
    values = prepared.values
    return (values["account_id"], values["meter"], values["period_start"])


def _raise_and_keep(session: Session, together: list[tuple[int, _Prepared]], results) -> None:
    totals: dict[tuple, int] = {}
    first: dict[tuple, _Prepared] = {}
    for _, prepared in together:
        key = _counter_key(prepared)
        totals[key] = totals.get(key, 0) + prepared.delta
        first.setdefault(key, prepared)
    insert = upsert_insert(session)
    rows = [
        {**{name: first[key].values[name] for name in COUNTER_COLUMNS}, "used": totals[key]}
        for key in sorted(totals)
    ]
    # Many rows to one statement (compiled once, sent as multi-row inserts), in key order.
    raise_many = _built((insert, "raise many"), lambda: _raise_many(insert))
    after = {
        (row.account_id, row.meter, row.period_start): row.used
        for row in session.execute(raise_many, rows)
    }
    running = {key: after[key] - totals[key] for key in totals}
    for key in sorted(totals):
        meter, period = first[key].meter, first[key].period
        before = running[key]
        announce_thresholds(session, key[0], meter, period, before, before + totals[key])
    events = []
    for index, prepared in together:
        key = _counter_key(prepared)
        running[key] += prepared.delta
        usage = MeterUsage(prepared.meter, prepared.period, running[key], prepared.credits)
        results[index] = usage
        answer = {
            "used": usage.used,
            "meter": prepared.values["meter_terms"],
            "credits": prepared.credits,
        }
        events.append({**{name: prepared.values[name] for name in EVENT_COLUMNS}, "answer": answer})
    keep_many = _built(
        (insert, "keep many"),
        lambda: (
            insert(_EVENTS)
            .on_conflict_do_nothing(index_elements=KEY_INDEX)
            .returning(_EVENTS.c.idempotency_key)
        ),
    )
    kept = session.scalars(keep_many, events).all()
    if len(kept) != len(events):
        # A key another process recorded in the moment since it was looked for: the
        # batch's transaction is answered 503 (nothing of it kept) and may be sent again.
        raise DatabaseUnavailable(
            "A report's key was recorded by another request at the same moment; nothing of"
            " this batch was kept: send it again.",
            headers={"Retry-After": "1"},
        )


def _raise_many(insert):
    statement = insert(_COUNTERS)
    return statement.on_conflict_do_update(
        index_elements=["account_id", "meter", "period_start"],
        set_={
            "used": _COUNTERS.c.used + statement.excluded.used,
            "updated_at": statement.excluded.updated_at,
        },
    ).returning(*(_COUNTERS.c[name] for name in ("account_id", "meter", "period_start", "used")))


def _judge(
    session: Session,
    report: Report,
    metering: Metering | None,
    now: datetime,
    late: timedelta,
    batch: _Batch,
) -> MeterUsage:
    try:
        return _record(session, report, metering, now, late, batch)
    except (QuotaExceeded, PeriodClosed, ValidationFailed):
        if batch.undo is not None:
            batch.undo()  # a refused report changed nothing; a single one ends its read
        earlier = _answer_for_key(session, report)
        if earlier is None:
            raise
        return earlier


@dataclass(frozen=True)
class _Prepared:
    """A report judged countable, with what counting it takes."""

    report: Report
    meter: Meter  # with the period's credits
    period: Period
    credits: int
    delta: int  # what it adds (a counting meter), or the value it sets (max, latest)
    values: dict


def _prepare(
    report: Report, metering: Metering | None, now: datetime, late: timedelta, batch: _Batch
) -> _Prepared:
    """The report's meter, period and terms; or why it cannot count (422, 409, 402)."""
    meter = metering.meters.get(report.meter) if metering else None
    if meter is None:
        on = f"plan {metering.plan_slug!r}" if metering else "the account's plan (it has none)"
        raise ValidationFailed(
            f"No meter {report.meter!r} on {on}.", errors={"meter": ["not a meter of the plan"]}
        )
    period = checked(metering.period_of(report.occurred_at), report.occurred_at, now, late)
    credits = batch.credits_in(report.account_id, period)[meter.name]
    meter = meter.with_credits(credits)
    if meter.aggregation == "unique_count" and not report.subject:
        raise ValidationFailed(
            f"Meter {meter.name!r} counts distinct subjects: give the report's `subject`.",
            errors={"subject": ["required by a unique_count meter"]},
        )
    delta = report.quantity if meter.sets_a_value else meter.increment(report.quantity)
    if not meter.admits(0, delta):
        raise QuotaExceeded(_refusal(meter, report))
    values = {
        "account_id": report.account_id,
        "meter": report.meter,
        "period_start": period.start,
        "period_end": period.end,
        "used": delta,
        "plan_id": metering.plan_id,
        "paddle_subscription_id": metering.paddle_subscription_id,
        "updated_at": now,
        "hard_limit": meter.hard_limit,
        "idempotency_key": report.idempotency_key,
        "quantity": report.quantity,
        "occurred_at": report.occurred_at,
        "recorded_at": now,
        "open_since": now - late,  # a period ending after it still takes reports
        "meter_terms": meter.values(),
        "credits": credits,
        "subject": report.subject,
    }
    return _Prepared(report, meter, period, credits, delta, values)


def _record(
    session: Session,
    report: Report,
    metering: Metering | None,
    now: datetime,
    late: timedelta,
    batch: _Batch,
) -> MeterUsage:
    prepared = _prepare(report, metering, now, late, batch)
    meter, period, credits, values = (
        prepared.meter,
        prepared.period,
        prepared.credits,
        prepared.values,
    )
    if meter.aggregation not in ("sum", "count"):
        counted = aggregations.count_report(session, meter, values)
        if counted.duplicate:
            return _answer_for_key(session, report)
        if counted.used is None:
            raise QuotaExceeded(_refusal(meter, report))
        announce_thresholds(session, report.account_id, meter, period, counted.before, counted.used)
        return MeterUsage(meter, period, counted.used, credits)
    if is_postgresql(session):
        used, kept = _count_in_one_statement(session, values)
    elif recorded_elsewhere(session, values):
        return _answer_for_key(session, report)
    else:
        used, kept = _count_in_two_statements(session, values)
    if used is None:
        raise QuotaExceeded(_refusal(meter, report))
    if kept is None:  # the key was recorded before: undo this count, answer as then
        if batch.undo is not None:
            batch.undo()
        else:
            session.execute(_take_back(values))
        return _answer_for_key(session, report)
    announce_thresholds(session, report.account_id, meter, period, used - prepared.delta, used)
    return MeterUsage(meter, period, used, credits)


def announce_thresholds(
    session: Session, account_id: str, meter: Meter, period: Period, before: int, after: int
) -> None:
    """One `usage.threshold_reached` per alert the rise from `before` to `after` reaches
    first, written with the count. Rises of one counter are serialised by its row's lock,
    so however many processes report at once, one rise alone passes each level; the
    event's once-key makes it once per period whatever is replayed."""
    for alert, level in meter.thresholds_crossed(before, after):
        outbox.emit(
            session,
            Emission(
                account_id,
                "usage.threshold_reached",
                {
                    "meter": meter.name,
                    "threshold": alert,
                    "level": level,
                    "used": after,
                    "included": meter.included,
                    "hard_limit": meter.hard_limit,
                    "period": {"starts_at": iso(period.start), "ends_at": iso(period.end)},
                },
                subject=meter.name,
                once_key=f"usage.threshold_reached:{account_id}:{meter.name}:"
                f"{iso(period.start)}:{alert}",
            ),
        )


# The report's statements take every value as a parameter, so each is built once (per
# dialect, and with or without a hard limit): building them cost more than running them.
_STATEMENTS: dict[tuple, object] = {}


def _built(key: tuple, build):
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = build()
    return statement


def _raise_counter(insert, limited: bool):
    """Raise the period's counter by `used` if the total stays within `hard_limit`."""
    statement = insert(_COUNTERS).values(
        {name: bindparam(name, type_=_COUNTERS.c[name].type) for name in COUNTER_COLUMNS}
    )
    raised = _COUNTERS.c.used + statement.excluded.used
    fits = raised <= bindparam("hard_limit", type_=BigInteger) if limited else None
    return statement.on_conflict_do_update(
        index_elements=["account_id", "meter", "period_start"],
        set_={"used": raised, "updated_at": statement.excluded.updated_at},
        where=fits,
    ).returning(_COUNTERS.c.used)


def _keep_event(insert):
    return (
        insert(_EVENTS)
        .values(
            {
                **{name: bindparam(name, type_=_EVENTS.c[name].type) for name in EVENT_COLUMNS},
                "answer": bindparam("answer", type_=_EVENTS.c.answer.type),
            }
        )
        .on_conflict_do_nothing(index_elements=KEY_INDEX)
        .returning(_EVENTS.c.id)
    )


def _count_in_two_statements(session: Session, values: dict):
    """Raise the counter if the quantity fits, then keep the event under its key.

    The key last: a concurrent report with the same key holds the counter's row until it
    commits, and then this insert finds its key, and the caller undoes the count and
    answers as that report did."""
    insert = upsert_insert(session)
    limited = values["hard_limit"] is not None
    raise_counter = _built((insert, "raise", limited), lambda: _raise_counter(insert, limited))
    used = session.execute(raise_counter, values).scalar()
    if used is None:
        return None, None
    answer = {"used": used, "meter": values["meter_terms"], "credits": values["credits"]}
    keep = _built((insert, "keep"), lambda: _keep_event(insert))
    return used, session.execute(keep, {**values, "answer": answer}).scalar()


def _count_in_one_statement(session: Session, values: dict):
    """The same two steps as one PostgreSQL statement (a data-modifying CTE feeding the
    event's insert): one round trip instead of two, the same order and locks."""
    limited = values["hard_limit"] is not None
    statement = _built(("one statement", limited), lambda: _counted_and_kept(limited))
    row = session.execute(
        statement, {**values, "meter_terms": json.dumps(values["meter_terms"])}
    ).first()
    return (row.used, row.id) if row else (None, None)


def _counted_and_kept(limited: bool):
    raised = _raise_counter(postgresql.insert, limited).cte("raised")
    answer = func.json_build_object(
        literal_column("'used'"),
        raised.c.used,
        literal_column("'meter'"),
        cast(bindparam("meter_terms", type_=Text), JSON),
        literal_column("'credits'"),
        bindparam("credits", type_=BigInteger),
    )
    columns = [bindparam(name, type_=_EVENTS.c[name].type).label(name) for name in EVENT_COLUMNS]
    kept = (
        postgresql.insert(_EVENTS)
        .from_select(
            [*EVENT_COLUMNS, "answer"],
            select(*columns, answer).select_from(raised).where(~KEY_ELSEWHERE),
        )
        .on_conflict_do_nothing(index_elements=KEY_INDEX)
        .returning(_EVENTS.c.id)
        .cte("kept")
    )
    return select(raised.c.used, kept.c.id).select_from(raised.outerjoin(kept, true()))


def _take_back(values: dict):
    counter = _COUNTERS.c
    return (
        _COUNTERS.update()
        .where(
            counter.account_id == values["account_id"],
            counter.meter == values["meter"],
            counter.period_start == values["period_start"],
        )
        .values(used=counter.used - values["used"])
    )


def _refusal(meter: Meter, report: Report) -> str:
    if meter.sets_a_value:
        what = f"A {meter.name} of {report.quantity} is above"
    elif meter.aggregation == "unique_count":
        what = f"A new subject of {meter.name} would pass"
    elif meter.aggregation == "count":
        what = f"One more {meter.name} would pass"
    else:
        what = f"{report.quantity} more {meter.name} would pass"
    limit = meter.hard_limit
    return f"{what} the hard limit of {limit} for this billing period; nothing was recorded."


def _answer_for_key(session: Session, report: Report) -> MeterUsage | None:
    """The answer the first report with this key got; a different report under the same
    key is a conflict."""
    event = session.scalars(
        select(UsageEvent)
        .where(UsageEvent.idempotency_key == report.idempotency_key)
        .order_by(UsageEvent.id)
    ).first()
    if event is None:
        return None
    return _answer_from(event, report)


def _answer_from(event: UsageEvent, report: Report) -> MeterUsage:
    same = (event.account_id, event.meter, event.quantity, event.subject) == (
        report.account_id,
        report.meter,
        report.quantity,
        report.subject,
    )
    if not same or event.answer is None:
        raise IdempotencyKeyConflict(
            "This idempotency key was used for another account, meter or quantity."
        )
    meter = Meter.of(event.meter, event.answer["meter"])
    period = Period(event.period_start, event.period_end)
    credits = event.answer.get("credits", 0)
    return MeterUsage(meter, period, event.answer["used"], credits, duplicate=True)


def usage_figures(
    engine: Engine, account_id: str, metering: Metering | None, now: datetime
) -> list[MeterUsage]:
    """Each meter of `metering` with what the account used of it in the period of `now`:
    one read, none when the plan has no meters."""
    if metering is None or not metering.meters:
        return []
    period = metering.period_of(now)
    with single_statement(engine) as connection:
        used = dict(
            connection.execute(
                select(UsageCounter.meter, UsageCounter.used).where(
                    UsageCounter.account_id == account_id, UsageCounter.period_start == period.start
                )
            ).all()
        )
        credits = credits_in(connection, account_id, period)
    return [
        MeterUsage(meter.with_credits(credits[name]), period, used.get(name, 0), credits[name])
        for name, meter in sorted(metering.meters.items())
    ]


def counters_of(
    session: Session,
    account_id: str,
    *,
    meter: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[UsageCounter]:
    """An account's counters, newest first, for an operator."""
    query = (
        select(UsageCounter)
        .where(UsageCounter.account_id == account_id)
        .order_by(UsageCounter.id.desc())
        .limit(limit)
    )
    if meter:
        query = query.where(UsageCounter.meter == meter)
    if before_id is not None:
        query = query.where(UsageCounter.id < before_id)
    return list(session.scalars(query))
