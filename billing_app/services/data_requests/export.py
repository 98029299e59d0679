"""Everything held about an account, as one JSON document written piece by piece.

The document (`docs/data-requests.md` shows it):

    {"format": "billing-account-export", "version": 1, "exported_at": ..., "account_id": ...,
     "account": {...} | null,
     "subscriptions": [...], "subscription_items": [...], "subscription_changes": [...],
     "transactions": [...], "adjustments": [...], "purchases": [...],
     "usage_counters": [...], "usage_charges": [...], "usage_subjects": [...],
     "usage_events": [...], "webhook_events": [...], "events": [...],
     "event_account": {...} | null, "audit": [...]}

Each row is its table's columns, with times in ISO 8601 UTC and the JSON a row stores (a
webhook's payload, an event's body) as JSON rather than text. Rows are read in pages and
written as they are read, so an account with millions of usage events is never held in
memory at once.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from billing_app.db import one_snapshot, utcnow
from billing_app.services.data_requests.scope import Scope

FORMAT = "billing-account-export"
VERSION = 1
PAGE = 1000
# Columns that hold JSON as text: written as JSON.
_JSON_TEXT = {"webhook_events": "payload", "events": "body"}
_ONE_ROW = ("account", "event_account")


def export(engine: Engine, account_id: str) -> Iterator[str]:
    """The document, in pieces of text (join them, or write them as they come), read from
    one snapshot that blocks no writer however long the reader takes."""
    with one_snapshot(engine) as session:
        yield from _document(session, account_id)


def _document(session: Session, account_id: str) -> Iterator[str]:
    scope = Scope.of(session, account_id)
    head = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": utcnow().isoformat(),
        "account_id": account_id,
    }
    yield json.dumps(head)[:-1]
    for kind, statement in scope.rows().items():
        # The table's columns, not its objects: nothing is kept in the session as it goes.
        table = statement.column_descriptions[0]["entity"].__table__
        columns = statement.with_only_columns(*table.columns)
        rows = session.execute(columns.execution_options(yield_per=PAGE))
        if kind in _ONE_ROW:
            row = rows.first()
            yield f", {json.dumps(kind)}: {_json(as_dict(row, kind)) if row else 'null'}"
            continue
        yield f", {json.dumps(kind)}: ["
        for index, row in enumerate(rows):
            yield ("" if index == 0 else ", ") + _json(as_dict(row, kind))
        yield "]"
    yield "}\n"


def as_dict(row: Any, kind: str) -> dict[str, Any]:
    """A row as its columns, JSON text parsed."""
    values = dict(row._mapping)
    text_column = _JSON_TEXT.get(kind)
    if text_column and isinstance(values.get(text_column), str):
        with contextlib.suppress(ValueError):  # else kept as the text it is
            values[text_column] = json.loads(values[text_column])
    return values


def _json(value: Any) -> str:
    return json.dumps(value, default=_plain, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot export {type(value).__name__}")
