"""What is personal in what Paddle sends us, and taking it out.

Paddle's payloads carry a person in a few known places: a customer (`ctm_...`: `email`,
`name`), an address (`add_...`: its lines, city, postal code, region), a business
(`biz_...`: `name`, company number, tax identifier, contacts), a card's
`cardholder_name`, a refund's `reason` and the free text of
`billing_details.additional_information` (all free text), and
`custom_data`, where a product may put anything. What the books and disputes need stays:
ids, amounts, currency, tax, invoice numbers, dates, statuses, country codes, a card's type.
Our own key in `custom_data` (the account id) stays too: it is the pseudonym the books keep.
"""

from __future__ import annotations

from typing import Any

# Fields removed from an entity, by the prefix of its id.
_PERSONAL_BY_ENTITY = {
    "ctm_": ("email", "name"),
    "add_": ("first_line", "second_line", "city", "postal_code", "region", "description"),
    "biz_": ("name", "company_number", "tax_identifier", "contacts"),
    "adj_": ("reason",),  # a refund's reason is free text
}
# Fields removed wherever they are.
_PERSONAL_ANYWHERE = ("email", "cardholder_name", "additional_information", "contacts")
# What we keep of custom_data: the ids our checkout wrote.
_OURS_IN_CUSTOM_DATA = ("app_account_id", "app_subscription_id")
ERASED = None  # what a removed field becomes: absent, as if Paddle had not sent it


def scrubbed(value: Any) -> Any:
    """`value` (a payload, or any part of one) without its personal fields."""
    if isinstance(value, list):
        return [scrubbed(item) for item in value]
    if not isinstance(value, dict):
        return value
    personal = set(_PERSONAL_ANYWHERE)
    entity_id = value.get("id", value.get("paddle_adjustment_id"))  # ours name it so
    if isinstance(entity_id, str):
        personal.update(_PERSONAL_BY_ENTITY.get(entity_id[:4], ()))
    kept = {}
    for key, inner in value.items():
        if key in personal:
            kept[key] = ERASED
        elif key == "custom_data":
            kept[key] = ours_only(inner)
        else:
            kept[key] = scrubbed(inner)
    return kept


def ours_only(custom_data: Any) -> dict[str, Any] | None:
    """Of a `custom_data`, only the ids our own checkout put there."""
    if not isinstance(custom_data, dict):
        return None
    ours = {key: custom_data[key] for key in _OURS_IN_CUSTOM_DATA if key in custom_data}
    return ours or None


def without(text: str | None, values: list[str]) -> str | None:
    """A free text with each of `values` (an email, a name) replaced by `[erased]`."""
    if text is None:
        return None
    for value in values:
        if value:
            text = text.replace(value, "[erased]")
    return text
