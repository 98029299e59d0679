"""The catalogue of plans and products: importing a validated plans file, refreshing the
price facts from Paddle, and what is on sale."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_app.errors import AddonNotFound, ValidationFailed
from billing_app.models import Addon, Plan, Product
from billing_app.services.plans.plans_file import (
    PRICE_FACTS,
    facts_needed,
    minor_units_text,
    validate_plan_entries,
)
from paddle_client import Client


@dataclass(frozen=True)
class ImportResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    without_price_facts: list[str]  # amount, currency or interval still unknown


def price_facts(price: dict[str, Any]) -> dict[str, Any]:
    """What a plan copies from Paddle's price entity: amount, currency, interval."""
    cycle = price.get("billing_cycle") or {}
    facts = {
        "amount": minor_units_text(price["unit_price"]["amount"]),
        "currency": price["unit_price"]["currency_code"],
    }
    if cycle:
        facts.update(interval=cycle["interval"], interval_count=cycle["frequency"])
    return facts


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
    addons = [_addon_values(entry) for entry in validated if entry["type"] == "addon"]
    existing_plans = {plan.slug: plan for plan in session.scalars(select(Plan))}
    existing_products = {product.slug: product for product in session.scalars(select(Product))}
    existing_addons = {addon.slug: addon for addon in session.scalars(select(Addon))}
    _refuse_shared_prices(
        existing_plans, existing_products, plans, products, existing_addons, addons
    )
    _refuse_unknown_plans(addons, {*existing_plans, *(plan["slug"] for plan in plans)})
    prices = prices or {}
    outcome: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    for model, existing, rows, facts in (
        (Plan, existing_plans, plans, PRICE_FACTS),
        (Product, existing_products, products, ("amount", "currency")),
        (Addon, existing_addons, addons, PRICE_FACTS),
    ):
        for values in rows:
            kind, slug = _upsert(session, model, existing, values, prices, facts)
            outcome[kind].append(slug)
    session.flush()
    return ImportResult(**outcome, without_price_facts=_without_price_facts(session, validated))


def _plan_values(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key != "type"}


def _addon_values(entry: dict[str, Any]) -> dict[str, Any]:
    values = {key: value for key, value in entry.items() if key not in ("type", "quantity")}
    return {**values, "has_quantity": entry["quantity"]}


def _refuse_unknown_plans(addons: list[dict[str, Any]], plan_slugs: set[str]) -> None:
    lines = [
        f"add-on {addon['slug']!r}: plans: no plan {slug!r}"
        for addon in addons
        for slug in addon["plans"]
        if slug not in plan_slugs
    ]
    if lines:
        raise ValidationFailed("Invalid plans file:\n" + "\n".join(lines))


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
    kinds = {Plan: "subscription", Product: "one_time", Addon: "addon"}
    for model, wanted_type in kinds.items():
        for row in session.scalars(select(model).where(model.slug.in_(list(slugs)))):
            entry = slugs[row.slug]
            if entry["type"] != wanted_type:
                continue
            if any(getattr(row, key) is None for key in facts_needed(entry)):
                incomplete.append(row.slug)
    return incomplete


def _refuse_shared_prices(
    existing_plans: dict[str, Plan],
    existing_products: dict[str, Product],
    plans: list[dict[str, Any]],
    products: list[dict[str, Any]],
    existing_addons: dict[str, Addon],
    addons: list[dict[str, Any]],
) -> None:
    """After the import, each price may still belong to one plan, product or add-on only,
    and one plan at most may be the free plan."""
    final = {("plan", slug): (plan.price_id, plan.free) for slug, plan in existing_plans.items()}
    final.update({("plan", plan["slug"]): (plan.get("price_id"), plan["free"]) for plan in plans})
    final.update(
        {
            ("product", slug): (product.price_id, False)
            for slug, product in existing_products.items()
        }
    )
    final.update({("product", entry["slug"]): (entry["price_id"], False) for entry in products})
    final.update(
        {("add-on", slug): (addon.price_id, False) for slug, addon in existing_addons.items()}
    )
    final.update({("add-on", entry["slug"]): (entry["price_id"], False) for entry in addons})
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
    rows.update({addon.price_id: addon for addon in session.scalars(select(Addon))})
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


def active_addons(session: Session) -> Iterable[Addon]:
    return session.scalars(select(Addon).where(Addon.active.is_(True)).order_by(Addon.id))


def find_addon(session: Session, slug: str) -> Addon:
    query = select(Addon).where(Addon.slug == slug, Addon.active.is_(True))
    addon = session.scalars(query).first()
    if addon is None:
        raise AddonNotFound(f"No active add-on {slug!r}.")
    return addon


def addons_by_price(session: Session, price_ids: Iterable[str]) -> dict[str, Addon]:
    wanted = list(price_ids)
    if not wanted:
        return {}
    query = select(Addon).where(Addon.price_id.in_(wanted))
    return {addon.price_id: addon for addon in session.scalars(query)}


def active_products(session: Session) -> Iterable[Product]:
    return session.scalars(select(Product).where(Product.active.is_(True)).order_by(Product.id))
