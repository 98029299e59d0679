"""The nightly reconciliation: walk Paddle's subscriptions page by page and repair drift.

Paddle's entity carries its version (`updated_at`); each row keeps the version it was last
written from (`paddle_updated_at`). A row that already holds that version or a newer one
(a webhook or an API answer got there first) is never overwritten. Everything else that
differs is repaired through the same `apply_snapshot` as webhooks, and reported field by
field in `reconcile_drifts`. Work is committed a page at a time; memory holds one page.
The Paddle client it is given sets the pace (`requests_per_minute`) and the retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from billing_app.db import is_postgresql, utcnow
from billing_app.errors import describe_failure
from billing_app.metrics import RECONCILE_PAGES
from billing_app.models import (
    LIVE_STATUSES,
    Adjustment,
    Plan,
    ReconcileDrift,
    ReconcileRequest,
    ReconcileRun,
    Subscription,
    Transaction,
)
from billing_app.services.billing_history.adjustments import keep_adjustment
from billing_app.services.billing_history.transactions import keep_transaction
from billing_app.services.events import outbox
from billing_app.services.locks import Lease
from billing_app.services.subscriptions.ownership import app_ids
from billing_app.services.subscriptions.sync import (
    apply_snapshot,
    diff_snapshot,
    locate_subscription,
    snapshot_values,
)
from paddle_client import ApiError, Client, PaddleError
from paddle_client.pagination import prefetched
from paddle_client.timestamps import parse_timestamp

log = logging.getLogger(__name__)

PAGE_SIZE = 200
FINISH_ATTEMPTS = 4  # recording the run's end survives a database blip of a few seconds


class LeaseLost(RuntimeError):
    """Another process took the reconciliation lease: stop rather than run twice."""


class Interrupted(Exception):
    """A signal asked the run to stop; it stops after the page it is on."""


@dataclass
class Counts:
    seen: int = 0
    in_sync: int = 0
    drift_fixed: int = 0
    missing_locally: int = 0
    missing_in_paddle: int = 0
    errors: int = 0
    unlinked: int = 0
    transactions_seen: int = 0
    transactions_filled: int = 0
    adjustments_filled: int = 0


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class Reconciler:
    def __init__(
        self,
        session: Session,
        paddle: Client,
        *,
        dry_run: bool = False,
        lease: Lease | None = None,
        progress: Callable[[Counts, int | None], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        transaction_days: int = 0,
    ) -> None:
        self.session = session
        outbox.caused_by(session, "reconcile")
        self.transaction_days = transaction_days
        self.paddle = paddle
        self.dry_run = dry_run
        self.lease = lease
        self.progress = progress or (lambda counts, expected: None)
        self.should_stop = should_stop
        self.expected: int | None = None  # Paddle's estimate of the total, for progress
        self.counts = Counts()
        self.committed = Counts()  # what is kept if the run fails mid-page
        self.drifts: list[dict[str, Any]] = []  # this page's drift log, written with the page
        self.plans: dict[str, Plan] = {}

    def run(self) -> ReconcileRun:
        """Walk Paddle's list and repair; whatever happens (Paddle, the database, a signal),
        the run ends recorded as succeeded, failed or interrupted, never left running."""
        self.started_at = utcnow()
        self.run_id = self._begin()
        status, error = "succeeded", None
        try:
            self._walk()
            if self.transaction_days > 0:
                self._fill_transactions()
        except Interrupted:
            status, error = "interrupted", f"stopped by a signal after {self.counts.seen} seen"
            log.warning("reconciliation %s interrupted; %s", self.run_id, error)
        except Exception as failure:  # any failure ends the run as failed, with its error
            status, error = "failed", f"{type(failure).__name__}: {failure}"
            expected = isinstance(failure, PaddleError | LeaseLost | SQLAlchemyError)
            (log.error if expected else log.exception)(
                "reconciliation %s failed: %s", self.run_id, error
            )
            self._discard_page()
        if self.counts.unlinked:
            log.warning(
                "%d subscription(s) Paddle had belong to no account we could tell; "
                "`billing subscriptions unlinked` lists them, `billing subscriptions link` "
                "gives one to an account",
                self.counts.unlinked,
            )
        return self._finish(status, error)

    def _begin(self) -> int:
        """Mark runs whose process died as abandoned (we hold the lease: no other run is
        alive), record this one, read the plans; then hold nothing while Paddle answers."""
        session = self.session
        if self.lease is not None:
            abandoned = session.execute(
                update(ReconcileRun)
                .where(ReconcileRun.status == "running")
                .values(
                    status="abandoned",
                    finished_at=utcnow(),
                    error="its process stopped without finishing (its lease lapsed)",
                )
            ).rowcount
            if abandoned:
                log.warning("marked %d reconciliation run(s) left running as abandoned", abandoned)
        run = ReconcileRun(dry_run=self.dry_run, status="running", started_at=self.started_at)
        session.add(run)
        session.flush()
        run_id = run.id
        self.plans = {plan.price_id: plan for plan in session.scalars(select(Plan))}
        session.expunge_all()  # the plans stay loaded, detached, for the whole run
        session.commit()
        return run_id

    def _walk(self) -> None:
        previous_last_id: str | None = None
        pages = prefetched(self.paddle.subscriptions.list_pages(per_page=PAGE_SIZE))
        for page in pages:
            self.expected = getattr(page, "estimated_total", None)
            if not page:
                continue  # covers no ids; the range after the last page is checked below
            last_id = page[-1]["id"]
            self._reconcile_page(page, after=previous_last_id, up_to=last_id)
            previous_last_id = last_id
            self._commit_page()
        self._reconcile_page([], after=previous_last_id, up_to=None)
        self._commit_page()

    def _fill_transactions(self) -> None:
        """The transactions Paddle updated in the last `transaction_days` that the ledger
        holds at an older version or not at all (a `transaction.*` webhook lost, or not
        yet applied) are kept through the webhooks' own rule, purchases included."""
        since = self.started_at - timedelta(days=self.transaction_days)
        pages = self.paddle.transactions.list_pages(updated_since=since, includes=["adjustments"])
        for page in prefetched(pages):
            self.counts.transactions_seen += len(page)
            held = dict(
                self.session.execute(
                    select(Transaction.paddle_transaction_id, Transaction.paddle_updated_at).where(
                        Transaction.paddle_transaction_id.in_([entity["id"] for entity in page])
                    )
                ).all()
            )
            adjustments = [
                adjustment
                for entity in page
                for adjustment in entity.get("adjustments") or []
                if isinstance(adjustment, dict) and adjustment.get("id")
            ]
            held_adjustments = dict(
                self.session.execute(
                    select(Adjustment.paddle_adjustment_id, Adjustment.paddle_updated_at).where(
                        Adjustment.paddle_adjustment_id.in_([a["id"] for a in adjustments])
                    )
                ).all()
            )
            self.session.rollback()  # nothing held while Paddle answers the next page
            for entity in page:
                version = parse_timestamp(entity.get("updated_at"))
                if not _holds(held.get(entity["id"]), version):
                    self._fill("transaction", keep_transaction, entity, version)
            # A refund, credit or chargeback whose `adjustment.*` webhook was lost.
            for adjustment in adjustments:
                version = parse_timestamp(adjustment.get("updated_at"))
                if not _holds(held_adjustments.get(adjustment["id"]), version):
                    self._fill("adjustment", keep_adjustment, adjustment, version)
            self._commit_page()

    def _fill(self, kind: str, keep, entity: dict[str, Any], version: datetime | None) -> None:
        """Keep one `kind` of entity through the webhooks' own rule `keep`, counted in
        `{kind}s_filled`."""
        filled = f"{kind}s_filled"
        if self.dry_run:
            setattr(self.counts, filled, getattr(self.counts, filled) + 1)
            return
        try:
            with self.session.begin_nested():
                # Paddle's version stands for the event that would have brought it; the
                # stale guard keeps whatever a webhook wrote from a later moment.
                kept = keep(
                    self.session, entity, occurred_at=version or self.started_at, event_id=None
                )
            setattr(self.counts, filled, getattr(self.counts, filled) + (kept == "processed"))
        except Exception as error:  # one bad entity must not stop the run
            self.counts.errors += 1
            log.warning("filling %s %s failed: %s", kind, entity.get("id"), describe_failure(error))

    def _discard_page(self) -> None:
        self.counts, self.drifts = self.committed, []
        try:
            self.session.rollback()
        except SQLAlchemyError:
            self.session.invalidate()  # its connection is gone; the next use gets a new one

    # One page

    def _reconcile_page(
        self, page: list[dict[str, Any]], *, after: str | None, up_to: str | None
    ) -> None:
        """Paddle lists by id, so this page covers the ids in (after, up_to]. One narrow
        query over that range finds which rows already hold Paddle's version (most of
        them), and which live rows of ours Paddle did not list; only the rest are loaded.
        That read's transaction ends before Paddle is asked about the unlisted rows."""
        self.counts.seen += len(page)
        held, unlisted = self._ours_in_range(after, up_to, {entity["id"] for entity in page})
        self.session.rollback()  # nothing is written yet; nothing is held while Paddle answers
        looked_up = self._look_up(unlisted)
        stale = []
        for entity in page:
            version = parse_timestamp(entity.get("updated_at"))
            if entity["id"] in held and _holds(held[entity["id"]], version):
                self.counts.in_sync += 1  # this version, or a newer one a webhook brought
            else:
                stale.append((entity, version))
        if stale:
            self._repair_stale(stale)
        if looked_up:
            self._repair_unlisted(looked_up)

    def _ours_in_range(self, after: str | None, up_to: str | None, listed: set[str]):
        held, unlisted = {}, []
        for paddle_id, version, status in self.session.execute(rows_in_range(after, up_to)):
            if paddle_id in listed:
                held[paddle_id] = version
            elif status in LIVE_STATUSES:
                unlisted.append(paddle_id)
        return held, unlisted

    def _repair_stale(self, stale: list[tuple[dict[str, Any], datetime | None]]) -> None:
        """Repair a page's stale rows with one flush. If any of them fails, the page's
        repairs are undone and redone a row at a time, so that one bad subscription is
        reported as an error while the others are still repaired."""
        counts, drifts = replace(self.counts), len(self.drifts)
        local = self._lock([entity["id"] for entity, _ in stale])
        try:
            with self.session.begin_nested():
                for entity, version in stale:
                    self._repair_if_behind(entity, local.get(entity["id"]), version)
        except Exception:
            log.warning("repairing a page at once failed; repairing its rows one by one")
            self.counts = counts
            del self.drifts[drifts:]
            local = self._lock([entity["id"] for entity, _ in stale])  # the rollback expired them
            for entity, version in stale:
                self._repair_alone(entity, local.get(entity["id"]), version)

    def _lock(self, paddle_ids: list[str]) -> dict[str, Subscription]:
        query = (
            select(Subscription)
            .options(selectinload(Subscription.items))
            .where(Subscription.paddle_subscription_id.in_(paddle_ids))
            .execution_options(populate_existing=True)
        )
        if not self.dry_run:
            query = query.with_for_update()
        return {row.paddle_subscription_id: row for row in self.session.scalars(query)}

    def _repair_if_behind(
        self, entity: dict[str, Any], row: Subscription | None, version: datetime | None
    ) -> None:
        if row is not None and _holds(row.paddle_updated_at, version):
            self.counts.in_sync += 1  # a webhook got there while we looked
            return
        self._reconcile_one(entity, row, version)

    def _repair_alone(
        self, entity: dict[str, Any], row: Subscription | None, version: datetime | None
    ) -> None:
        try:
            with self.session.begin_nested():
                self._repair_if_behind(entity, row, version)
        except Exception as error:  # one bad subscription must not stop the run
            self.counts.errors += 1
            self._drift(entity.get("id", "?"), "error", None, f"{type(error).__name__}: {error}")
            log.exception("reconciling %s failed", entity.get("id"))

    def _reconcile_one(
        self, entity: dict[str, Any], row: Subscription | None, version: datetime | None
    ) -> None:
        if row is None:
            self._repair_missing(entity, version)
            return
        values, items = snapshot_values(entity, self.plans)
        changes = diff_snapshot(row, values, items)
        if not changes:
            self.counts.in_sync += 1
            if not self.dry_run:
                row.paddle_updated_at = version
            return
        self.counts.drift_fixed += 1
        for change in changes:
            self._drift(entity["id"], change.field, change.old, change.new)
        if not self.dry_run:
            apply_snapshot(
                self.session, row, entity, occurred_at=version or utcnow(), plans=self.plans
            )

    def _repair_missing(self, entity: dict[str, Any], version: datetime | None) -> None:
        """A subscription Paddle has that no row of ours holds: our own checkout's row whose
        webhooks were lost (repaired, as drift), or one we never heard of (created)."""
        _, checkout_id = app_ids(entity.get("custom_data"))
        checkout = self.session.get(Subscription, checkout_id) if checkout_id else None
        if checkout is not None and checkout.paddle_subscription_id is None:
            self.counts.drift_fixed += 1
            self._drift(
                entity["id"],
                "subscription",
                f"our {checkout.status} checkout",
                entity.get("status"),
            )
        else:
            self.counts.missing_locally += 1
            self._drift(entity["id"], "subscription", None, entity.get("status"))
        if self.dry_run:
            return
        row = locate_subscription(
            self.session,
            entity["id"],
            customer_id=entity.get("customer_id"),
            custom_data=entity.get("custom_data"),
            status=entity.get("status", "pending"),
            report_unlinked=False,  # counted below, reported once at the end of the run
        )
        apply_snapshot(self.session, row, entity, occurred_at=version or utcnow(), plans=self.plans)
        if row.account_id is None:
            self.counts.unlinked += 1

    def _look_up(self, paddle_ids: list[str]) -> list[tuple[str, dict[str, Any] | None]]:
        """Live rows of ours that Paddle's list skipped, asked for one by one (rare), with
        no transaction open; None for each that Paddle does not know."""
        found = []
        for paddle_id in paddle_ids:
            try:
                found.append((paddle_id, self.paddle.subscriptions.get(paddle_id)))
            except ApiError as error:
                if error.code != "not_found":
                    raise
                found.append((paddle_id, None))
        return found

    def _repair_unlisted(self, looked_up: list[tuple[str, dict[str, Any] | None]]) -> None:
        """A row Paddle does not know is reported, never revoked on an absence alone."""
        rows = self._lock([paddle_id for paddle_id, _ in looked_up])
        for paddle_id, entity in looked_up:
            row = rows.get(paddle_id)
            if entity is None:
                self.counts.missing_in_paddle += 1
                self._drift(paddle_id, "missing_in_paddle", row.status if row else None, None)
                continue
            self._repair_alone(entity, row, parse_timestamp(entity.get("updated_at")))

    # Bookkeeping

    def _drift(self, paddle_id: str, field: str, old: Any, new: Any) -> None:
        self.drifts.append(
            {
                "run_id": self.run_id,
                "paddle_subscription_id": paddle_id,
                "field": field,
                "old_value": _text(old),
                "new_value": _text(new),
            }
        )

    def _commit_page(self) -> None:
        if self.drifts:
            self.session.execute(insert(ReconcileDrift), self.drifts)  # one batch a page
            self.drifts = []
        self.session.execute(
            update(ReconcileRun).where(ReconcileRun.id == self.run_id).values(**asdict(self.counts))
        )
        if is_postgresql(self.session):
            # A page's commit need not wait for the disk: a crash that loses the last pages'
            # repairs loses their events and drift rows with them (one transaction), and the
            # next run repairs them again. 5,000 pages at 1,000,000 subscriptions wait 5,000
            # flushes otherwise.
            self.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        self.session.commit()
        RECONCILE_PAGES.inc()
        self.committed = Counts(**asdict(self.counts))
        # One page in memory, whatever the number of pages. The plans stay usable detached:
        # only their loaded ids are read.
        self.session.expunge_all()
        self.progress(self.counts, self.expected)
        if self.lease is not None and self.lease.lost:
            raise LeaseLost("the reconciliation lease ran out and may be another's now")
        if self.should_stop():
            raise Interrupted()

    def _finish(self, status: str, error: str | None) -> ReconcileRun:
        """Record how the run ended, retrying through a short database outage. If the
        database stays away, the run stays `running` until the next run marks it abandoned."""
        ended = {"status": status, "error": error, "finished_at": utcnow(), **asdict(self.counts)}
        for attempt in range(FINISH_ATTEMPTS):
            try:
                self.session.execute(
                    update(ReconcileRun).where(ReconcileRun.id == self.run_id).values(**ended)
                )
                self.session.commit()
                return self.session.get(ReconcileRun, self.run_id)
            except SQLAlchemyError as failure:
                self._discard_page()
                if attempt + 1 < FINISH_ATTEMPTS:
                    time.sleep(2**attempt)
                    continue
                log.error(
                    "could not record how reconciliation %s ended (%s); the next run marks it"
                    " abandoned",
                    self.run_id,
                    type(failure).__name__,
                )
        return ReconcileRun(
            id=self.run_id, dry_run=self.dry_run, started_at=self.started_at, **ended
        )


def rows_in_range(after: str | None, up_to: str | None) -> Select:
    """Our rows whose Paddle ids are in (after, up_to], in Paddle's order: an index range."""
    column = Subscription.paddle_subscription_id
    query = select(column, Subscription.paddle_updated_at, Subscription.status).where(
        column.is_not(None)
    )
    if after is not None:
        query = query.where(column > after)
    if up_to is not None:
        query = query.where(column <= up_to)
    return query


def _holds(held: datetime | None, version: datetime | None) -> bool:
    """Does a row holding Paddle's version `held` already have `version` (or a newer one)?"""
    return held is not None and version is not None and version <= held


# The runs as an operator reads them


def newest_runs(session: Session, *, before_id: int | None = None, limit: int = 30):
    query = select(ReconcileRun).order_by(ReconcileRun.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(ReconcileRun.id < before_id)
    return list(session.scalars(query))


def drifts_of(session: Session, run_id: int, *, after_id: int = 0, limit: int = 200):
    """A run's drift log in the order it was found, a page after `after_id`."""
    return list(
        session.scalars(
            select(ReconcileDrift)
            .where(ReconcileDrift.run_id == run_id, ReconcileDrift.id > after_id)
            .order_by(ReconcileDrift.id)
            .limit(limit)
        )
    )


# Runs operators ask for, taken by a scheduler process


def request_run(session: Session, *, dry_run: bool, operator: str) -> ReconcileRequest:
    """Ask the schedulers for a run now; one already waiting (of the same kind) is kept."""
    waiting = session.scalars(
        select(ReconcileRequest).where(
            ReconcileRequest.taken_at.is_(None), ReconcileRequest.dry_run.is_(dry_run)
        )
    ).first()
    if waiting is not None:
        return waiting
    request = ReconcileRequest(dry_run=dry_run, requested_by=operator)
    session.add(request)
    session.flush()
    return request


def take_request(session: Session, taker: str) -> ReconcileRequest | None:
    """The oldest waiting request, now `taker`'s (one statement: two schedulers never take
    the same one). Commits."""
    oldest = (
        select(ReconcileRequest.id)
        .where(ReconcileRequest.taken_at.is_(None))
        .order_by(ReconcileRequest.id)
        .limit(1)
        .scalar_subquery()
    )
    taken_id = session.scalar(
        update(ReconcileRequest)
        .where(ReconcileRequest.id == oldest, ReconcileRequest.taken_at.is_(None))
        .values(taken_at=utcnow(), taken_by=taker)
        .returning(ReconcileRequest.id)
    )
    session.commit()
    return session.get(ReconcileRequest, taken_id) if taken_id is not None else None


def give_back_request(session: Session, request_id: int) -> None:
    """A request whose run could not start (another holds the lease) waits again. Commits."""
    session.execute(
        update(ReconcileRequest)
        .where(ReconcileRequest.id == request_id)
        .values(taken_at=None, taken_by=None)
    )
    session.commit()


def waiting_requests(session: Session) -> list[ReconcileRequest]:
    return list(
        session.scalars(
            select(ReconcileRequest)
            .where(ReconcileRequest.taken_at.is_(None))
            .order_by(ReconcileRequest.id)
        )
    )
