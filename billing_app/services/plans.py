"""The plan catalogue: importing plans from a file, listing what is on sale."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_app.errors import ValidationFailed
from billing_app.models import Plan
from billing_app.models.plan import BILLING_INTERVALS
from paddle_client import Client


def _minor_units(value: Any) -> str:
    """Money arrives as integer minor units, as a string or an int; never a float."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ma.ValidationError("must be integer minor units, as a string or an integer")
    text = str(value).strip()
    if not text.isdigit():
        raise ma.ValidationError('must be a whole number of minor units, e.g. "1900"')
    return str(int(text))


class MinorUnits(ma.fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        return _minor_units(value)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


class PlanFileEntrySchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    slug = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^[a-z0-9][a-z0-9_-]*$"))
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    description = ma.fields.String(load_default=None, allow_none=True)
    price_id = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^pri_[a-z0-9]+$"))
    amount = MinorUnits(required=True)
    currency = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^[A-Z]{3}$", error="must be ISO 4217, e.g. USD"),
    )
    interval = ma.fields.String(required=True, validate=ma.validate.OneOf(BILLING_INTERVALS))
    interval_count = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    features = ma.fields.List(ma.fields.String(), load_default=list)
    limits = ma.fields.Dict(keys=ma.fields.String(), load_default=dict)
    active = ma.fields.Boolean(load_default=True)


@dataclass(frozen=True)
class ImportResult:
    created: list[str]
    updated: list[str]


def _describe(index: int, entry: Any) -> str:
    slug = entry.get("slug") if isinstance(entry, Mapping) else None
    return f"plan {slug!r} (entry {index + 1})" if slug else f"plan at entry {index + 1}"


def validate_plan_entries(entries: Any) -> list[dict[str, Any]]:
    """Check every entry; raise one ValidationFailed naming each bad plan and field."""
    if not isinstance(entries, list):
        raise ValidationFailed("A plans file holds a list of plans.")
    schema = PlanFileEntrySchema()
    problems: dict[str, Any] = {}
    plans: list[dict[str, Any]] = []
    seen_slugs: dict[str, int] = {}
    seen_prices: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = _describe(index, entry)
        if not isinstance(entry, Mapping):
            problems[where] = {"_schema": ["must be an object"]}
            continue
        try:
            plan = schema.load(entry)
        except ma.ValidationError as error:
            problems[where] = error.messages
            continue
        for key, seen in (("slug", seen_slugs), ("price_id", seen_prices)):
            if plan[key] in seen:
                problems[where] = {key: [f"repeats entry {seen[plan[key]] + 1}"]}
            seen[plan[key]] = index
        plans.append(plan)
    if problems:
        lines = [
            f"{where}: {field}: {'; '.join(map(str, messages))}"
            for where, fields in problems.items()
            for field, messages in fields.items()
        ]
        raise ValidationFailed("Invalid plans file:\n" + "\n".join(lines), errors=problems)
    return plans


def import_plans(session: Session, entries: Any) -> ImportResult:
    """Create or update plans by slug. Validates everything before touching anything."""
    plans = validate_plan_entries(entries)
    existing = {plan.slug: plan for plan in session.scalars(select(Plan))}
    _refuse_shared_prices(existing, plans)
    created, updated = [], []
    for values in plans:
        plan = existing.get(values["slug"])
        if plan is None:
            session.add(Plan(**values))
            created.append(values["slug"])
            continue
        for key, value in values.items():
            setattr(plan, key, value)
        updated.append(values["slug"])
    session.flush()
    return ImportResult(created=created, updated=updated)


def _refuse_shared_prices(existing: dict[str, Plan], plans: list[dict[str, Any]]) -> None:
    """After the import, each price may still belong to one plan only."""
    final = {slug: plan.price_id for slug, plan in existing.items()}
    final.update({plan["slug"]: plan["price_id"] for plan in plans})
    owners: dict[str, list[str]] = {}
    for slug, price_id in final.items():
        owners.setdefault(price_id, []).append(slug)
    lines = [
        f"plan {slugs[-1]!r}: price_id: {price_id} would also belong to plan {slugs[0]!r}"
        for price_id, slugs in owners.items()
        if len(slugs) > 1
    ]
    if lines:
        raise ValidationFailed("Invalid plans file:\n" + "\n".join(lines))


def active_plans(session: Session) -> Iterable[Plan]:
    return session.scalars(select(Plan).where(Plan.active.is_(True)).order_by(Plan.id))


@dataclass(frozen=True)
class SyncResult:
    updated: list[str]
    deactivated: list[str]
    not_imported: list[str]


def sync_from_paddle(session: Session, paddle: Client) -> SyncResult:
    """Refresh each plan's price facts (amount, currency, interval, active) from Paddle's
    catalogue. Names, features and limits are ours and stay as imported; a plan whose price
    Paddle no longer sells is deactivated; a price with no plan is reported."""
    plans = {plan.price_id: plan for plan in session.scalars(select(Plan))}
    updated, seen, not_imported = [], set(), []
    for price in paddle.prices.list(status="active"):
        plan = plans.get(price["id"])
        cycle = price.get("billing_cycle")
        if plan is None:
            if cycle:
                not_imported.append(price["id"])
            continue
        seen.add(price["id"])
        facts = {
            "amount": _minor_units(price["unit_price"]["amount"]),
            "currency": price["unit_price"]["currency_code"],
            "interval": cycle["interval"] if cycle else plan.interval,
            "interval_count": cycle["frequency"] if cycle else plan.interval_count,
            "active": True,
        }
        if any(getattr(plan, key) != value for key, value in facts.items()):
            for key, value in facts.items():
                setattr(plan, key, value)
            updated.append(plan.slug)
    deactivated = []
    for price_id, plan in plans.items():
        if price_id not in seen and plan.active:
            plan.active = False
            deactivated.append(plan.slug)
    session.flush()
    return SyncResult(updated=updated, deactivated=deactivated, not_imported=not_imported)
