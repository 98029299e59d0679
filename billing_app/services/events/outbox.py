"""The outbox: a change that commits always has its events, and a change rolled back never
does, whichever code made it.

Every ORM session is watched (`install`):
- before each flush, the state of each watched row (`changes.WATCHED`) about to change is
  read as it is before this transaction's change (once per row and transaction), and so
  are the entitlements of any account touched for the first time;
- before the commit, each row's state now is read, `changes` turns before and after into
  events, and each touched account's entitlements are computed by the one access rule and
  compared with the ones last announced: an `entitlements.changed` when they differ. The
  events get the account's next sequence numbers (its `event_accounts` row is locked, in
  account order, so concurrent transactions number an account's events one after the
  other, each computing entitlements after the other's commit), and a delivery per
  endpoint that takes their type. All of it in the transaction being committed.

Writes the ORM does not see (a core INSERT or UPDATE) name their rows with `watch_where`
first; explicit events (a payment that failed: no row says so) go through `emit`; a change
by the clock alone touches its accounts with `touch`. `caused_by` says what made the
change, for `entitlements.changed`'s `cause`.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app, has_app_context, has_request_context, request
from sqlalchemy import event, exists, insert, inspect, literal, select, true
from sqlalchemy.orm import Session

from billing_app.db import lock_or_create, utcnow
from billing_app.models import EventAccount, EventDelivery, EventEndpoint, OutboundEvent
from billing_app.services.entitlements.access import AccessPolicy
from billing_app.services.entitlements.facts import (
    entitlements_from_facts,
    read_free_plan,
    read_many_access_facts,
)
from billing_app.services.events.changes import WATCHED, Emission, Watched, iso

__all__ = ["Emission", "caused_by", "emit", "install", "touch", "watch_where"]

_PENDING = "billing_outbox"
_CAUSE = "billing_cause"
_WROTE = "billing_events_wrote"
# The app's callables (a list in `app.extensions`) told after a commit that wrote events:
# a web process's own delivery worker looks at once, its long polls too.
WRITTEN = "billing_events_written"


@dataclass
class Pending:
    """What one transaction has changed so far."""

    before: dict[tuple[str, Any], dict | None] = field(default_factory=dict)
    new_objects: list[Any] = field(default_factory=list)
    wheres: list[tuple[Watched, tuple]] = field(default_factory=list)
    accounts: set[str] = field(default_factory=set)
    baselines: dict[str, dict | None] = field(default_factory=dict)
    emitted: list[Emission] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.before or self.new_objects or self.wheres or self.accounts or self.emitted)


def _pending(session: Session) -> Pending:
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = Pending()
    return pending


# --- what paths say ------------------------------------------------------------------


def caused_by(session: Session, cause: str) -> None:
    """What makes this session's changes from now on (`paddle_webhook`, `reconcile`,
    `operator`, `clock`); unsaid, a request's are `api` or `console`."""
    session.info[_CAUSE] = cause


def _cause(session: Session) -> str:
    if cause := session.info.get(_CAUSE):
        return cause
    if has_request_context():
        return "console" if request.blueprint == "admin" else "api"
    return "change"


def emit(session: Session, emission: Emission) -> None:
    """An event no row's change tells of, written with this transaction."""
    _pending(session).emitted.append(emission)
    touch(session, emission.account_id)


def touch(session: Session, *account_ids: str, as_of: datetime | None = None) -> None:
    """Compare these accounts' entitlements with the ones announced, at the commit (an
    account never announced: with its entitlements `as_of` then, default now)."""
    pending = _pending(session)
    fresh = [a for a in account_ids if a and a not in pending.accounts]
    _baseline(session, pending, fresh, as_of=as_of)
    pending.accounts.update(fresh)


def watch_where(session: Session, model: type, *criteria) -> None:
    """Rows of `model` matching `criteria` are about to change (or appear) by a statement
    the ORM does not track: their state now is the before, and any new row's is none."""
    watched = WATCHED[model]
    pending = _pending(session)
    connection = session.connection()
    keys = connection.execute(select(watched.key).where(*criteria)).scalars().all()
    unread = [key for key in keys if (watched.name, key) not in pending.before]
    _remember(session, pending, watched, unread)
    pending.wheres.append((watched, criteria))


# --- the session's hooks -------------------------------------------------------------


def _remember(session: Session, pending: Pending, watched: Watched, keys: list) -> None:
    if not keys:
        return
    states = watched.read(session.connection(), keys)
    for key in keys:
        pending.before[(watched.name, key)] = states.get(key)
    _baseline(session, pending, [s["account_id"] for s in states.values() if s])


def _appeared(session: Session, pending: Pending) -> None:
    """Rows matching a `watch_where` that were not there when it was said are new."""
    connection = session.connection()
    for watched, criteria in pending.wheres:
        for key in connection.execute(select(watched.key).where(*criteria)).scalars():
            pending.before.setdefault((watched.name, key), None)


def _before_flush(session: Session, _context, _instances) -> None:
    pending = None
    unread: dict[Watched, list] = defaultdict(list)
    accounts = []
    for obj in session.new:
        watched = WATCHED.get(type(obj))
        if watched is not None:
            pending = pending or _pending(session)
            pending.new_objects.append(obj)
            accounts.append(getattr(obj, "account_id", None))
    for obj in (*session.dirty, *session.deleted):
        watched = WATCHED.get(type(obj))
        if watched is None:
            continue
        pending = pending or _pending(session)
        key = inspect(obj).identity[0]
        if (watched.name, key) not in pending.before and obj not in pending.new_objects:
            unread[watched].append(key)
        accounts.append(getattr(obj, "account_id", None))
    if pending is None:
        return
    if pending.wheres and unread:
        _appeared(session, pending)
        unread = {
            watched: [key for key in keys if (watched.name, key) not in pending.before]
            for watched, keys in unread.items()
        }
    for watched, keys in unread.items():
        _remember(session, pending, watched, keys)
    _baseline(session, pending, [account for account in accounts if account])


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's release: its changes are the transaction's, told at its end
    if session.new or session.dirty or session.deleted:
        session.flush()  # (the commit's own flush comes after this hook: done first here)
    pending = session.info.get(_PENDING)
    if pending is None or pending.is_empty():
        return
    if write_events(session, pending):
        session.info[_WROTE] = True
    session.info.pop(_PENDING, None)


def _after_commit(session: Session) -> None:
    wrote = session.info.pop(_WROTE, False)
    for told in current_app.extensions.get(WRITTEN, ()) if wrote and has_app_context() else ():
        told()


def _forget(session: Session, transaction) -> None:
    if transaction.parent is None:  # the transaction, not a savepoint, has ended
        session.info.pop(_PENDING, None)
        session.info.pop(_WROTE, None)


def install() -> None:
    """Watch every session (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_transaction_end", _forget)


# --- entitlements --------------------------------------------------------------------


def _policy() -> AccessPolicy:
    return AccessPolicy.of(current_app.config) if has_app_context() else AccessPolicy()


def announced_entitlements(connection, account_ids: list[str], now: datetime) -> dict[str, dict]:
    """What the product sees of each account's entitlements now, as an event tells it (the
    answer of `GET /entitlements` without its meters' figures, which change with use)."""
    facts = read_many_access_facts(connection, account_ids)
    free, policy = read_free_plan(connection), _policy()
    shown = {}
    for account_id, held in facts.items():
        answer = entitlements_from_facts(held, now, policy, free)
        shown[account_id] = {
            "access": answer.access,
            "plan": answer.plan,
            "status": answer.status,
            "features": list(answer.features),
            "limits": dict(answer.limits),
            "seats": answer.seats,
            "grants": [
                {**grant, "features": list(grant["features"]), "until": iso(grant["until"])}
                for grant in answer.grants
            ],
        }
    return shown


def nothing_held(connection, now: datetime) -> dict:
    """The entitlements of an account that holds nothing (the free plan's, if any)."""
    return announced_entitlements(connection, [""], now)[""]


# What a change of entitlements is judged on: what the account may use. A status alone is
# not (a subscription's own events tell it; a past-due subscription in its grace period
# keeps its access), nor a plan's name without access (a checkout not paid yet names its
# plan, and gives nothing).
_JUDGED = ("access", "features", "limits", "seats", "grants")


def _seen(entitlements: dict | None) -> dict | None:
    if entitlements is None:
        return None
    seen = {name: entitlements.get(name) for name in _JUDGED}
    seen["plan"] = entitlements.get("plan") if entitlements.get("access") else None
    return seen


def _baseline(
    session: Session, pending: Pending, account_ids: list[str], *, as_of: datetime | None = None
) -> None:
    """Accounts never announced: their entitlements before this transaction's change, the
    first time it touches them (the database still holds the state before it)."""
    fresh = [a for a in dict.fromkeys(account_ids) if a and a not in pending.baselines]
    if not fresh:
        return
    connection = session.connection()
    known = set(
        connection.execute(
            select(EventAccount.account_id).where(EventAccount.account_id.in_(fresh))
        ).scalars()
    )
    unknown = [account for account in fresh if account not in known]
    shown = announced_entitlements(connection, unknown, as_of or utcnow()) if unknown else {}
    for account in fresh:
        pending.baselines[account] = shown.get(account)


# --- writing -------------------------------------------------------------------------


def _changes(session: Session, pending: Pending) -> list[Emission]:
    connection = session.connection()
    for obj in pending.new_objects:
        identity = inspect(obj).identity
        if identity is not None:
            pending.before.setdefault((WATCHED[type(obj)].name, identity[0]), None)
    _appeared(session, pending)
    by_table: dict[str, list] = defaultdict(list)
    for name, key in pending.before:
        by_table[name].append(key)
    emissions = list(pending.emitted)
    for watched in WATCHED.values():
        keys = by_table.get(watched.name)
        if not keys:
            continue
        after = watched.read(connection, keys)
        for key in keys:
            before = pending.before[(watched.name, key)]
            for state in (before, after.get(key)):
                if state and state.get("account_id"):
                    pending.accounts.add(state["account_id"])
            emissions.extend(watched.events(before, after.get(key)))
    return emissions


def write_events(session: Session, pending: Pending, *, now: datetime | None = None) -> int:
    """Write the events of the transaction's changes; how many."""
    now = now or utcnow()
    emissions = _changes(session, pending)
    accounts = sorted(pending.accounts | {emission.account_id for emission in emissions})
    if not accounts:
        return 0
    states = {
        account: lock_or_create(session, EventAccount, "account_id", account, sequence=0)
        for account in accounts
    }
    connection = session.connection()
    shown = announced_entitlements(connection, accounts, now)
    cause = _cause(session)
    for account in accounts:
        state = states[account]
        before = state.entitlements
        if before is None:  # never announced: as it was before this transaction
            before = pending.baselines.get(account) or nothing_held(connection, now)
        after = shown[account]
        if _seen(before) != _seen(after):
            told = [e.type for e in emissions if e.account_id == account]
            emissions.append(
                Emission(
                    account,
                    "entitlements.changed",
                    {"before": before, "after": after, "cause": cause, "with": told},
                )
            )
        if state.entitlements != after:
            state.entitlements = after
    emissions = _not_written_yet(connection, emissions)
    return _insert(session, states, emissions, now)


def _not_written_yet(connection, emissions: list[Emission]) -> list[Emission]:
    keys = [emission.once_key for emission in emissions if emission.once_key]
    if not keys:
        return emissions
    written = set(
        connection.execute(
            select(OutboundEvent.once_key).where(OutboundEvent.once_key.in_(keys))
        ).scalars()
    )
    return [e for e in emissions if e.once_key is None or e.once_key not in written]


def event_body(event_id: str, kind: str, account: str, sequence: int, now, data) -> str:
    return json.dumps(
        {
            "id": event_id,
            "type": kind,
            "timestamp": iso(now),
            "account_id": account,
            "sequence": sequence,
            "data": data,
        },
        separators=(",", ":"),
        sort_keys=False,
    )


def _insert(session: Session, states: dict, emissions: list[Emission], now: datetime) -> int:
    if not emissions:
        return 0
    rows = []
    for emission in emissions:
        state = states[emission.account_id]
        state.sequence += 1
        event_id = f"evt_{uuid.uuid4().hex}"
        rows.append(
            {
                "id": event_id,
                "type": emission.type,
                "account_id": emission.account_id,
                "sequence": state.sequence,
                "subject": emission.subject,
                "once_key": emission.once_key,
                "occurred_at": now,
                "body": event_body(
                    event_id, emission.type, emission.account_id, state.sequence, now, emission.data
                ),
            }
        )
    positions = (
        session.execute(insert(OutboundEvent).returning(OutboundEvent.position), rows)
        .scalars()
        .all()
    )
    fan_out(session, positions, now)
    return len(rows)


def fan_out(
    session: Session, positions: list[int], now: datetime, *, endpoint_id: str | None = None
) -> int:
    """A delivery of each event to each endpoint that takes its type (disabled ones too:
    re-enabling an endpoint delivers what it missed), or to `endpoint_id` only; none twice.
    How many deliveries were made."""
    events, endpoints = OutboundEvent.__table__.c, EventEndpoint.__table__.c
    deliveries = EventDelivery.__table__.c
    joined = OutboundEvent.__table__.join(EventEndpoint.__table__, true())
    takes = endpoints.types.is_(None) | endpoints.types.like(
        literal("%,") + events.type + literal(",%")
    )
    already = exists().where(
        deliveries.event_position == events.position, deliveries.endpoint_id == endpoints.id
    )
    chosen = (
        select(
            events.position,
            endpoints.id,
            events.account_id,
            events.sequence,
            literal("pending"),
            literal(0),
            literal(now, type_=deliveries.next_attempt_at.type),
            literal(now, type_=deliveries.created_at.type),
        )
        .select_from(joined)
        .where(events.position.in_(positions), takes, ~already)
    )
    if endpoint_id is not None:
        chosen = chosen.where(endpoints.id == endpoint_id)
    made = session.execute(
        insert(EventDelivery.__table__)
        .from_select(
            [
                deliveries.event_position,
                deliveries.endpoint_id,
                deliveries.account_id,
                deliveries.sequence,
                deliveries.status,
                deliveries.attempts,
                deliveries.next_attempt_at,
                deliveries.created_at,
            ],
            chosen,
        )
        .returning(deliveries.id)
    )
    # (Counted from RETURNING: psycopg reports no row count for this INSERT ... SELECT.)
    return len(made.all())
