"""The plans file: its entries (plans, one-time products with `type: one_time`, add-ons
with `type: addon`), how
each is validated, and the identifiers the API checks the same way."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import marshmallow as ma

from billing_app.errors import ValidationFailed
from billing_app.models.plan import BILLING_INTERVALS
from billing_app.services.usage.meters import AGGREGATIONS


def minor_units_text(value: Any) -> str:
    """Money arrives as integer minor units, as a string or an int; never a float."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ma.ValidationError("must be integer minor units, as a string or an integer")
    text = str(value).strip()
    if not text.isdigit():
        raise ma.ValidationError('must be a whole number of minor units, e.g. "1900"')
    return str(int(text))


def alert_values(alerts: list) -> None:
    for alert in alerts:
        is_percent = isinstance(alert, int) and not isinstance(alert, bool) and alert >= 1
        if not (is_percent and alert <= 1000) and alert != "hard_limit":
            raise ma.ValidationError(
                f'an alert is a percent of `included` (1 to 1000) or "hard_limit"; got {alert!r}'
            )


def limit_values(limits: dict) -> None:
    for name, value in limits.items():
        if value is not None and not isinstance(value, (bool, int, float)):
            raise ma.ValidationError(
                f"{name}: a limit is a number, true or false, or null (no limit); got {value!r}"
            )


class MinorUnits(ma.fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        return minor_units_text(value)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


PRICE_ID = ma.validate.Regexp(r"^pri_[a-z0-9]{1,60}$", error="not a Paddle price id (pri_...)")
METER_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
METER_NAME = ma.validate.Regexp(METER_NAME_PATTERN, error="not a meter name")


class MeterSchema(ma.Schema):
    """A meter of a plan: `included` per billing period, a `hard_limit` (null: none), how
    overage is billed (`overage_price_id`, a one-time price; `overage_unit` units per
    charged quantity), its `alerts`, and its `aggregation` (default `sum`)."""

    class Meta:
        unknown = ma.RAISE

    included = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=0))
    hard_limit = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=ma.validate.Range(min=1)
    )
    overage_price_id = ma.fields.String(load_default=None, allow_none=True, validate=PRICE_ID)
    overage_unit = ma.fields.Integer(load_default=1, strict=True, validate=ma.validate.Range(min=1))
    alerts = ma.fields.List(ma.fields.Raw(), validate=alert_values)
    aggregation = ma.fields.String(validate=ma.validate.OneOf(AGGREGATIONS))

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
    limits = ma.fields.Dict(keys=ma.fields.String(), load_default=dict, validate=limit_values)
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


class _SoldSeparately(ma.Schema):
    """What every entry sold beside the plans has: its slug, name and Paddle price."""

    class Meta:
        unknown = ma.RAISE

    slug = ma.fields.String(required=True, validate=SLUG)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    description = ma.fields.String(load_default=None, allow_none=True)
    price_id = ma.fields.String(required=True, validate=PRICE_ID)
    amount = MinorUnits()
    currency = ma.fields.String(validate=CURRENCY)


class ProductFileEntrySchema(_SoldSeparately):
    """A one-time product: `type: one_time`, a one-time Paddle price, and its grants."""

    type = ma.fields.String(required=True, validate=ma.validate.Equal("one_time"))
    grants = ma.fields.Nested(GrantsSchema, required=True)
    active = ma.fields.Boolean(load_default=True)


class AddonFileEntrySchema(_SoldSeparately):
    """An add-on: `type: addon`, a recurring Paddle price, and what each unit adds to the
    plan it joins: `features`, `limits` (numbers add up, see `entitlements.combine`),
    `meters` (units added to a meter's allowance per period), `seats`. `quantity: true`
    when it is bought in a quantity (else one at most); `plans`: the plan slugs it may
    join (default: any)."""

    type = ma.fields.String(required=True, validate=ma.validate.Equal("addon"))
    interval = ma.fields.String(validate=ma.validate.OneOf(BILLING_INTERVALS))
    interval_count = ma.fields.Integer(validate=ma.validate.Range(min=1))
    features = ma.fields.List(ma.fields.String(), load_default=list)
    limits = ma.fields.Dict(keys=ma.fields.String(), load_default=dict, validate=limit_values)
    meters = ma.fields.Dict(
        keys=ma.fields.String(validate=METER_NAME),
        values=ma.fields.Integer(strict=True, validate=ma.validate.Range(1, 10**12)),
        load_default=dict,
    )
    seats = ma.fields.Integer(strict=True, load_default=0, validate=ma.validate.Range(0, 10_000))
    quantity = ma.fields.Boolean(load_default=False, data_key="quantity")
    plans = ma.fields.List(ma.fields.String(validate=SLUG), load_default=list)
    active = ma.fields.Boolean(load_default=True)

    @ma.validates_schema
    def adds_something(self, data, **kwargs):
        if not any(data.get(key) for key in ("features", "limits", "meters", "seats")):
            raise ma.ValidationError(
                "an add-on adds features, limits, meters' allowances or seats", "features"
            )


ENTRY_KINDS = {"one_time": "product", "addon": "add-on"}


def is_product(entry: Any) -> bool:
    return isinstance(entry, Mapping) and entry.get("type") == "one_time"


def is_addon(entry: Any) -> bool:
    return isinstance(entry, Mapping) and entry.get("type") == "addon"


def _describe(index: int, entry: Any) -> str:
    slug = entry.get("slug") if isinstance(entry, Mapping) else None
    kind = ENTRY_KINDS.get(entry.get("type") if isinstance(entry, Mapping) else None, "plan")
    return f"{kind} {slug!r} (entry {index + 1})" if slug else f"{kind} at entry {index + 1}"


def validate_plan_entries(entries: Any) -> list[dict[str, Any]]:
    """Check every entry (a plan; a product with `type: one_time`; an add-on with `type:
    addon`); raise one ValidationFailed naming each bad entry and field. Slugs and prices
    are unique across the file."""
    if not isinstance(entries, list):
        raise ValidationFailed("A plans file holds a list of plans (and products, add-ons).")
    schemas = {"one_time": ProductFileEntrySchema(), "addon": AddonFileEntrySchema()}
    plan_schema = PlanFileEntrySchema()
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
        schema = schemas.get(entry.get("type"), plan_schema)
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


def facts_needed(entry: dict[str, Any]) -> tuple[str, ...]:
    if entry["type"] == "one_time":
        return ("amount", "currency")
    if entry["type"] == "addon":
        return ("amount", "currency", "interval")
    return () if entry["free"] else ("amount", "currency", "interval")


def missing_price_facts(entries: list[dict[str, Any]]) -> list[str]:
    """The price ids of validated plans file entries that leave a price fact out."""
    return [
        entry["price_id"]
        for entry in entries
        if any(entry.get(key) is None for key in facts_needed(entry))
    ]
