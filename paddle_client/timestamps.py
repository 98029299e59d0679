"""Paddle's RFC 3339 timestamps, to and from timezone-aware UTC datetimes."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta


def parse_timestamp(value: str | None) -> datetime | None:
    """Parse Paddle's `2024-04-12T10:49:38.76Z` (0 to 9 fraction digits) into aware UTC."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return parsed.astimezone(UTC)


def format_timestamp(value: datetime | str) -> str:
    """RFC 3339 in UTC with a `Z`, as Paddle's own samples send them."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("naive datetime: give Paddle an aware UTC time")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def add_interval(moment: datetime, interval: str, count: int = 1) -> datetime:
    """`moment` moved by `count` billing intervals (negative: back); a month from January 31
    is the last day of February, as Paddle bills."""
    if interval == "day":
        return moment + timedelta(days=count)
    if interval == "week":
        return moment + timedelta(weeks=count)
    months = count * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
