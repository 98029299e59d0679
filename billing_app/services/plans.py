"""The plan catalogue: importing plans from a file, listing what is on sale."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_app.errors import ValidationFailed
from billing_app.models import Plan, Product
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


SLUG = ma.validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,63}$", error="lowercase letters, digits, - and _")
CURRENCY = ma.validate.Regexp(r"^[A-Z]{3}$", error="must be ISO 4217, e.g. USD")


class PlanFileEntrySchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    type = ma.fields.String(load_default="subscription", validate=ma.validate.Equal("subscription"))
    slug = ma.fields.String(required=True, validate=SLUG)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    description = ma.fields.String(load_default=None, allow_none=True)
    # The free plan (at most one) has no price; every other plan has one.
    free = ma.fields.Boolean(load_default=False)
    price_id = ma.fields.String(validate=PRICE_ID)
    # The price's facts are Paddle's: optional here, a file that gives them wins.
    amount = MinorUnits()
    currency = ma.fields.String(validate=CURRENCY)
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


class GrantsSchema(ma.Schema):
    """What buying a product grants: `features`, for good or for `grant_days`; `credits`,
    units of a meter added to the allowance of the billing period it is bought in (per
    quantity bought). At least one of the two."""

    class Meta:
        unknown = ma.RAISE

    features = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=100)), load_default=list
    )
    grant_days = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=ma.validate.Range(1, 36_500)
    )
    credits = ma.fields.Dict(
        keys=ma.fields.String(validate=METER_NAME),
        values=ma.fields.Integer(strict=True, validate=ma.validate.Range(1, 10**12)),
        load_default=None,
    )

    @ma.validates_schema
    def grants_something(self, data, **kwargs):
        if not data.get("features") and not data.get("credits"):
            raise ma.ValidationError("a product grants features, credits or both", "features")


class ProductFileEntrySchema(ma.Schema):
    """A one-time product: `type: one_time`, a one-time Paddle price, and its grants."""

    class Meta:
        unknown = ma.RAISE

    type = ma.fields.String(required=True, validate=ma.validate.Equal("one_time"))
    slug = ma.fields.String(required=True, validate=SLUG)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    description = ma.fields.String(load_default=None, allow_none=True)
    price_id = ma.fields.String(required=True, validate=PRICE_ID)
    amount = MinorUnits()
    currency = ma.fields.String(validate=CURRENCY)
    grants = ma.fields.Nested(GrantsSchema, required=True)
    active = ma.fields.Boolean(load_default=True)


def is_product(entry: Any) -> bool:
    return isinstance(entry, Mapping) and entry.get("type") == "one_time"


@dataclass(frozen=True)
class ImportResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    without_price_facts: list[str]  # amount, currency or interval still unknown


def _describe(index: int, entry: Any) -> str:
    slug = entry.get("slug") if isinstance(entry, Mapping) else None
    kind = "product" if is_product(entry) else "plan"
    return f"{kind} {slug!r} (entry {index + 1})" if slug else f"{kind} at entry {index + 1}"


def validate_plan_entries(entries: Any) -> list[dict[str, Any]]:
    """Check every entry (a plan, or a product with `type: one_time`); raise one
    ValidationFailed naming each bad entry and field. Slugs and prices are unique across
    the file."""
    if not isinstance(entries, list):
        raise ValidationFailed("A plans file holds a list of plans (and products).")
    plan_schema, product_schema = PlanFileEntrySchema(), ProductFileEntrySchema()
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
        schema = product_schema if is_product(entry) else plan_schema
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
    problems.update(_credits_without_meters(entries, plans, problems))
    if problems:
        lines = [
            f"{where}: {field}: {message}"
            for where, fields in problems.items()
            for field, message in _flatten(fields)
        ]
        raise ValidationFailed("Invalid plans file:\n" + "\n".join(lines), errors=problems)
    return plans


def _credits_without_meters(
    entries: list[Any], loaded: list[dict[str, Any]], problems: dict[str, Any]
) -> dict[str, Any]:
    """Products (valid otherwise) whose credits name a meter no plan in the file has."""
    meters = {
        name for entry in loaded if entry["type"] == "subscription" for name in entry["meters"]
    }
    found = {}
    for index, entry in enumerate(entries):
        where = _describe(index, entry)
        if not is_product(entry) or where in problems:
            continue
        unknown = sorted(set(entry["grants"].get("credits") or ()) - meters)
        if unknown:
            found[where] = {
                f"grants.credits.{name}": ["not a meter of any plan in the file"]
                for name in unknown
            }
    return found


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


def _facts_needed(entry: dict[str, Any]) -> tuple[str, ...]:
    if entry["type"] == "one_time":
        return ("amount", "currency")
    return () if entry["free"] else ("amount", "currency", "interval")


def missing_price_facts(entries: list[dict[str, Any]]) -> list[str]:
    """The price ids of validated plans file entries that leave a price fact out."""
    return [
        entry["price_id"]
        for entry in entries
        if any(entry.get(key) is None for key in _facts_needed(entry))
    ]


def import_plans(
    session: Session, entries: Any, prices: dict[str, dict[str, Any]] | None = None
) -> ImportResult:
    """Create or update plans and products by slug. Validates everything before touching
    anything.

    A price fact the file leaves out comes from `prices` (Paddle's price entities by id,
    read by the caller before the transaction), else stays as the entry already has it."""
    validated = validate_plan_entries(entries)
    plans = [_plan_values(entry) for entry in validated if entry["type"] == "subscription"]
    products = [_product_values(entry) for entry in validated if entry["type"] == "one_time"]
    existing_plans = {plan.slug: plan for plan in session.scalars(select(Plan))}
    existing_products = {product.slug: product for product in session.scalars(select(Product))}
    _refuse_shared_prices(existing_plans, existing_products, plans, products)
    prices = prices or {}
    outcome: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    for model, existing, rows, facts in (
        (Plan, existing_plans, plans, PRICE_FACTS),
        (Product, existing_products, products, ("amount", "currency")),
    ):
        for values in rows:
            kind, slug = _upsert(session, model, existing, values, prices, facts)
            outcome[kind].append(slug)
    session.flush()
    return ImportResult(**outcome, without_price_facts=_without_price_facts(session, validated))


def _plan_values(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key != "type"}


def _product_values(entry: dict[str, Any]) -> dict[str, Any]:
    values = {key: value for key, value in entry.items() if key not in ("type", "grants")}
    return {**values, **entry["grants"]}


def _upsert(session, model, existing, values, prices, facts) -> tuple[str, str]:
    """Create or update one plan or product by slug: ("created" | "updated" | "unchanged",
    its slug)."""
    price_id = values.get("price_id")
    paddles = price_facts(prices[price_id]) if price_id in prices else {}
    wanted = {
        **{key: value for key, value in paddles.items() if key in facts},
        **{key: value for key, value in values.items() if value is not None},
    }
    for cleared in ("grant_days", "credits"):  # a product that now grants for good, or none
        if cleared in values and values[cleared] is None:
            wanted[cleared] = None
    row = existing.get(values["slug"])
    if row is None:
        defaults = {"interval_count": 1} if model is Plan else {}
        session.add(model(**{**defaults, **wanted}))
        return "created", values["slug"]
    if any(getattr(row, key) != value for key, value in wanted.items()):
        for key, value in wanted.items():
            setattr(row, key, value)
        return "updated", values["slug"]
    return "unchanged", values["slug"]


def _without_price_facts(session: Session, validated: list[dict[str, Any]]) -> list[str]:
    slugs = {entry["slug"]: entry for entry in validated}
    incomplete = []
    for model in (Plan, Product):
        for row in session.scalars(select(model).where(model.slug.in_(list(slugs)))):
            entry = slugs[row.slug]
            wanted_type = "one_time" if model is Product else "subscription"
            if entry["type"] != wanted_type:
                continue
            if any(getattr(row, key) is None for key in _facts_needed(entry)):
                incomplete.append(row.slug)
    return incomplete


def _refuse_shared_prices(
    existing_plans: dict[str, Plan],
    existing_products: dict[str, Product],
    plans: list[dict[str, Any]],
    products: list[dict[str, Any]],
) -> None:
    """After the import, each price may still belong to one plan or product only, and one
    plan at most may be the free plan."""
    final = {("plan", slug): (plan.price_id, plan.free) for slug, plan in existing_plans.items()}
    final.update({("plan", plan["slug"]): (plan.get("price_id"), plan["free"]) for plan in plans})
    final.update(
        {
            ("product", slug): (product.price_id, False)
            for slug, product in existing_products.items()
        }
    )
    final.update({("product", entry["slug"]): (entry["price_id"], False) for entry in products})
    owners: dict[str, list[tuple[str, str]]] = {}
    for owner, (price_id, _free) in final.items():
        if price_id is not None:
            owners.setdefault(price_id, []).append(owner)
    lines = [
        f"{owned[-1][0]} {owned[-1][1]!r}: price_id: {price_id} would also belong to"
        f" {owned[0][0]} {owned[0][1]!r}"
        for price_id, owned in owners.items()
        if len(owned) > 1
    ]
    free = [slug for (_kind, slug), (_price, is_free) in final.items() if is_free]
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
    """Refresh each plan's and product's price facts (amount, currency, and a plan's
    interval; active) from Paddle's active `prices`. Names, features, limits and grants
    are ours and stay as imported; one whose price Paddle no longer sells is deactivated;
    a recurring price with no plan is reported."""
    rows: dict[str, Plan | Product] = {
        plan.price_id: plan for plan in session.scalars(select(Plan)) if not plan.free
    }
    rows.update({product.price_id: product for product in session.scalars(select(Product))})
    updated, seen, not_imported = [], set(), []
    for price in prices:
        row = rows.get(price["id"])
        if row is None:
            if price.get("billing_cycle"):
                not_imported.append(price["id"])
            continue
        seen.add(price["id"])
        facts = {**price_facts(price), "active": True}
        if isinstance(row, Product):
            facts = {key: facts[key] for key in ("amount", "currency", "active")}
        if any(getattr(row, key) != value for key, value in facts.items()):
            for key, value in facts.items():
                setattr(row, key, value)
            updated.append(row.slug)
    deactivated = []
    for price_id, row in rows.items():
        if price_id not in seen and row.active:
            row.active = False
            deactivated.append(row.slug)
    session.flush()
    return SyncResult(updated=updated, deactivated=deactivated, not_imported=not_imported)


def active_products(session: Session) -> Iterable[Product]:
    return session.scalars(select(Product).where(Product.active.is_(True)).order_by(Product.id))
