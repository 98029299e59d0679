"""Usage events on PostgreSQL: one partition per calendar month of their period's start.

Usage events grow by millions a day and are kept only for `USAGE_RETENTION_DAYS`, so the
table is partitioned by range of `period_start` (UTC months, `usage_events_2026_12`):
retention drops a month whose events are all past it with no overage charge still open,
instead of deleting rows, and intake writes to one month's indexes whatever the table
holds. The `usage-partitions` job makes the current month and `MONTHS_AHEAD` more; a
default partition catches a report whose month is missing (its rows move to their month
when the job makes it), so no report is ever refused for want of a partition.

SQLite keeps one table: nothing here runs on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text, union_all
from sqlalchemy.orm import Session

from billing_app.db import is_postgresql
from billing_app.models.usage import OPEN_CHARGE_STATUSES, UsageCharge, UsageCounter

TABLE = "usage_events"
DEFAULT = "usage_events_default"
# Table names here are ours: constants, and a month's name made of its integers.
# Two months ahead: the job runs daily, so a month exists weeks before its first report
# even if the scheduler is down for a while.
MONTHS_AHEAD = 2
_NAME = re.compile(r"^usage_events_(\d{4})_(\d{2})$")


@dataclass(frozen=True)
class Month:
    """A partition's range: [start, end) of `period_start`."""

    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime) -> Month:
        moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    @classmethod
    def named(cls, name: str) -> Month | None:
        found = _NAME.match(name)
        return cls(int(found.group(1)), int(found.group(2))) if found else None

    @property
    def name(self) -> str:
        return f"{TABLE}_{self.year:04d}_{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.next().start

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)


def is_partition(table_name: str) -> bool:
    """Whether a table is one of usage events' partitions (made by the job, not declared by
    the models: a schema comparison leaves them out)."""
    return table_name == DEFAULT or Month.named(table_name) is not None


def declared_in_models(item, name, kind, reflected, compared_to) -> bool:
    """Alembic's `include_object`: not the partitions, nor their indexes."""
    table = name if kind == "table" else getattr(getattr(item, "table", None), "name", "")
    return not is_partition(table or "")


def is_partitioned(session: Session) -> bool:
    """Whether usage events are partitioned here (PostgreSQL, once migrated)."""
    if not is_postgresql(session):
        return False
    return bool(
        session.execute(
            text(
                "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
                " WHERE c.relname = :table AND pg_table_is_visible(c.oid)"
            ),
            {"table": TABLE},
        ).first()
    )


def partitions(session: Session) -> list[Month]:
    """The monthly partitions that exist, oldest first (the default one is not a month)."""
    names = session.scalars(
        text(
            "SELECT child.relname FROM pg_inherits"
            " JOIN pg_class parent ON parent.oid = pg_inherits.inhparent"
            " JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
            " WHERE parent.relname = :table AND pg_table_is_visible(parent.oid)"
        ),
        {"table": TABLE},
    )
    return sorted(
        (month for month in map(Month.named, names) if month is not None),
        key=lambda month: month.start,
    )


def make_months(session: Session, now: datetime) -> list[Month]:
    """Make the months that will be written to (this one and `MONTHS_AHEAD` more) and those
    the default partition holds rows of, moving those rows in; the caller commits. The
    months made."""
    wanted = [Month.of(now)]
    for _ in range(MONTHS_AHEAD):
        wanted.append(wanted[-1].next())
    stray = session.scalars(
        text(f"SELECT DISTINCT date_trunc('month', period_start AT TIME ZONE 'UTC') FROM {DEFAULT}")  # noqa: S608 (our own names)
    )
    wanted += [Month(moment.year, moment.month) for moment in stray]
    have = set(partitions(session))
    made = sorted(set(wanted) - have, key=lambda month: month.start)
    for month in made:
        _make(session, month)
    return made


def _make(session: Session, month: Month) -> None:
    """A month's table, filled with its rows from the default partition, then attached
    (PostgreSQL refuses to attach a range the default partition still holds rows of)."""
    bounds = {"start": month.start, "end": month.end}
    session.execute(
        text(f"CREATE TABLE {month.name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    session.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT}"  # noqa: S608 (our own names)
            " WHERE period_start >= :start AND period_start < :end RETURNING *)"
            f" INSERT INTO {month.name} SELECT * FROM moved"
        ),
        bounds,
    )
    start, end = (moment.isoformat() for moment in (month.start, month.end))
    session.execute(
        text(
            f"ALTER TABLE {TABLE} ATTACH PARTITION {month.name}"
            f" FOR VALUES FROM ('{start}') TO ('{end}')"
        )
    )


def drop_months_past(session: Session, cutoff: datetime) -> list[Month]:
    """Drop each month every one of whose periods ended before `cutoff` and none of whose
    overage charges is still open (its usage is billed); the caller commits. What a
    counter says of a period is kept. The months dropped."""
    dropped = []
    for month in partitions(session):
        if month.end > cutoff:
            break  # a period that starts in it ends after it starts
        if session.execute(_still_needed(month, cutoff)).first() is None:
            session.execute(text(f"DROP TABLE {month.name}"))
            dropped.append(month)
    return dropped


def _still_needed(month: Month, cutoff: datetime):
    """A period of the month that ends after `cutoff`, or an overage charge of it still
    open (every event has its period's counter)."""
    counters, charges = UsageCounter, UsageCharge
    return union_all(
        select(counters.id).where(
            counters.period_start >= month.start,
            counters.period_start < month.end,
            counters.period_end >= cutoff,
        ),
        select(charges.id).where(
            charges.period_start >= month.start,
            charges.period_start < month.end,
            charges.status.in_(OPEN_CHARGE_STATUSES),
        ),
    ).limit(1)
