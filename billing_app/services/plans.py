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


PRICE_ID = ma.validate.Regexp(r"^pri_[a-z0-9]+$", error="not a Paddle price id (pri_...)")
METER_NAME = ma.validate.Regexp(r"^[a-z0-9][a-z0-9_.-]{0,63}$", error="not a meter name")


class MeterSchema(ma.Schema):
    """A meter of a plan: `included` per billing period, a `hard_limit` (null: none), and
    how overage is billed (`overage_price_id`, a one-time price; `overage_unit` units per
    charged quantity)."""

    class Meta:
        unknown = ma.RAISE

    included = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=0))
    hard_limit = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=ma.validate.Range(min=1)
    )
    overage_price_id = ma.fields.String(load_default=None, allow_none=True, validate=PRICE_ID)
    overage_unit = ma.fields.Integer(load_default=1, strict=True, validate=ma.validate.Range(min=1))

    @ma.validates_schema
    def cap_covers_included(self, data, **kwargs):
        if data.get("hard_limit") is not None and data["hard_limit"] < data["included"]:
            raise ma.ValidationError("must be at least `included`", "hard_limit")


class PlanFileEntrySchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    slug = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^[a-z0-9][a-z0-9_-]*$"))
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    description = ma.fields.String(load_default=None, allow_none=True)
    # The free plan (at most one) has no price; every other plan has one.
    free = ma.fields.Boolean(load_default=False)
    price_id = ma.fields.String(validate=PRICE_ID)
    # The price's facts are Paddle's: optional here, a file that gives them wins.
    amount = MinorUnits()
    currency = ma.fields.String(
        validate=ma.validate.Regexp(r"^[A-Z]{3}$", error="must be ISO 4217, e.g. USD"),
    )
    interval = ma.fields.String(validate=ma.validate.OneOf(BILLING_INTERVALS))
    interval_count = ma.fields.Integer(validate=ma.validate.Range(min=1))
    features = ma.fields.List(ma.fields.String(), load_default=list)
    limits = ma.fields.Dict(keys=ma.fields.String(), load_default=dict)
    meters = ma.fields.Dict(
        keys=ma.fields.String(validate=METER_NAME),
        values=ma.fields.Nested(MeterSchema),
        load_default=dict,
    )
    active = ma.fields.Boolean(load_default=True)

    @ma.validates_schema
    def priced_unless_free(self, data, **kwargs):
        if data.get("free"):
            for field in ("price_id", *PRICE_FACTS):
                if field in data:
                    raise ma.ValidationError("the free plan has no price", field)
        elif "price_id" not in data:
            raise ma.ValidationError("Missing data for required field.", "price_id")


PRICE_FACTS = ("amount", "currency", "interval", "interval_count")


@dataclass(frozen=True)
class ImportResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    without_price_facts: list[str]  # amount, currency or interval still unknown


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
    seen_free: dict[bool, int] = {}
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
        for key, seen in (("slug", seen_slugs), ("price_id", seen_prices), ("free", seen_free)):
            if key not in plan or plan[key] in (None, False):
                continue
            if plan[key] in seen:
                problems[where] = {key: [f"repeats entry {seen[plan[key]] + 1}"]}
            seen[plan[key]] = index
        plans.append(plan)
    if problems:
        lines = [
            f"{where}: {field}: {message}"
            for where, fields in problems.items()
            for field, message in _flatten(fields)
        ]
        raise ValidationFailed("Invalid plans file:\n" + "\n".join(lines), errors=problems)
    return plans


def _flatten(messages: Any, path: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested messages as (dotted field, message): `meters.api_calls.hard_limit`
    (a dict's value adds no step of its own)."""
    if isinstance(messages, Mapping):
        flat = []
        for key, inner in messages.items():
            step = path if key == "value" else f"{path}.{key}" if path else str(key)
            flat.extend(_flatten(inner, step))
        return flat
    if isinstance(messages, list) and all(isinstance(item, str) for item in messages):
        return [(path, "; ".join(messages))]
    return [(path, str(messages))]


def price_facts(price: dict[str, Any]) -> dict[str, Any]:
    """What a plan copies from Paddle's price entity: amount, currency, interval."""
    cycle = price.get("billing_cycle") or {}
    facts = {
        "amount": _minor_units(price["unit_price"]["amount"]),
        "currency": price["unit_price"]["currency_code"],
    }
    if cycle:
        facts.update(interval=cycle["interval"], interval_count=cycle["frequency"])
    return facts


def missing_price_facts(plans: list[dict[str, Any]]) -> list[str]:
    """The price ids of validated plans file entries that leave a price fact out."""
    return [
        plan["price_id"]
        for plan in plans
        if not plan["free"]
        and any(plan.get(key) is None for key in ("amount", "currency", "interval"))
    ]


def import_plans(
    session: Session, entries: Any, prices: dict[str, dict[str, Any]] | None = None
) -> ImportResult:
    """Create or update plans by slug. Validates everything before touching anything.

    A price fact the file leaves out comes from `prices` (Paddle's price entities by id,
    read by the caller before the transaction), else stays as the plan already has it."""
    plans = validate_plan_entries(entries)
    prices = prices or {}
    existing = {plan.slug: plan for plan in session.scalars(select(Plan))}
    _refuse_shared_prices(existing, plans)
    created, updated, unchanged = [], [], []
    for values in plans:
        price_id = values.get("price_id")
        paddles = price_facts(prices[price_id]) if price_id in prices else {}
        wanted = {
            **paddles,
            **{key: value for key, value in values.items() if value is not None},
        }
        plan = existing.get(values["slug"])
        if plan is None:
            plan = Plan(**{"interval_count": 1, **wanted})
            session.add(plan)
            created.append(values["slug"])
        elif any(getattr(plan, key) != value for key, value in wanted.items()):
            for key, value in wanted.items():
                setattr(plan, key, value)
            updated.append(values["slug"])
        else:
            unchanged.append(values["slug"])
    session.flush()
    incomplete = [
        plan.slug
        for plan in session.scalars(select(Plan).where(Plan.slug.in_([p["slug"] for p in plans])))
        if not plan.free and None in (plan.amount, plan.currency, plan.interval)
    ]
    return ImportResult(created, updated, unchanged, incomplete)


def _refuse_shared_prices(existing: dict[str, Plan], plans: list[dict[str, Any]]) -> None:
    """After the import, each price may still belong to one plan only, and one plan at
    most may be the free plan."""
    final = {slug: (plan.price_id, plan.free) for slug, plan in existing.items()}
    final.update({plan["slug"]: (plan.get("price_id"), plan["free"]) for plan in plans})
    owners: dict[str, list[str]] = {}
    for slug, (price_id, _free) in final.items():
        if price_id is not None:
            owners.setdefault(price_id, []).append(slug)
    lines = [
        f"plan {slugs[-1]!r}: price_id: {price_id} would also belong to plan {slugs[0]!r}"
        for price_id, slugs in owners.items()
        if len(slugs) > 1
    ]
    free = [slug for slug, (_price, is_free) in final.items() if is_free]
    if len(free) > 1:
        lines.append(f"plan {free[-1]!r}: free: plan {free[0]!r} is the free plan already")
    if lines:
        raise ValidationFailed("Invalid plans file:\n" + "\n".join(lines))


def active_plans(session: Session) -> Iterable[Plan]:
    return session.scalars(select(Plan).where(Plan.active.is_(True)).order_by(Plan.id))


def free_plan(session: Session) -> Plan | None:
    """The plan of every account without a live subscription, if the catalogue has one."""
    return session.scalars(select(Plan).where(Plan.free.is_(True), Plan.active.is_(True))).first()


@dataclass(frozen=True)
class SyncResult:
    updated: list[str]
    deactivated: list[str]
    not_imported: list[str]


def active_prices(paddle: Client) -> list[dict[str, Any]]:
    """Paddle's active prices, read whole before any transaction opens (a catalogue is
    small; a lock must never wait on Paddle)."""
    return list(paddle.prices.list(status="active"))


def sync_from_paddle(session: Session, prices: list[dict[str, Any]]) -> SyncResult:
    """Refresh each plan's price facts (amount, currency, interval, active) from Paddle's
    active `prices`. Names, features and limits are ours and stay as imported; a plan whose
    price Paddle no longer sells is deactivated; a price with no plan is reported."""
    plans = {plan.price_id: plan for plan in session.scalars(select(Plan)) if not plan.free}
    updated, seen, not_imported = [], set(), []
    for price in prices:
        plan = plans.get(price["id"])
        if plan is None:
            if price.get("billing_cycle"):
                not_imported.append(price["id"])
            continue
        seen.add(price["id"])
        facts = {**price_facts(price), "active": True}
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
