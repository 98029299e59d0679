"""Pages of long lists, newest first, keyed on the last row shown (no OFFSET: the 1000th
page costs what the first does)."""

from __future__ import annotations

from datetime import UTC, datetime


def split_page(rows: list, size: int) -> tuple[list, object | None]:
    """A page of `size` out of the `size + 1` rows read, and its last row when more follow
    (the next page's cursor comes from it)."""
    page = rows[:size]
    return page, (page[-1] if len(rows) > size else None)


def moment_cursor(moment: datetime, row_id) -> str:
    return f"{moment.astimezone(UTC).isoformat()}|{row_id}"


def read_moment_cursor(raw: str | None, key=int) -> tuple[datetime, object] | None:
    """The (moment, id) a cursor names (the id read by `key`), or None for a first page or
    a cursor that is not one of ours."""
    if not raw:
        return None
    try:
        moment, row_id = raw.rsplit("|", 1)
        parsed = datetime.fromisoformat(moment)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), key(row_id)
    except ValueError:
        return None


def read_id(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def read_date(raw: str | None) -> datetime | None:
    """A YYYY-MM-DD from a filter, as the start of that day in UTC."""
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC) if raw else None
    except ValueError:
        return None
