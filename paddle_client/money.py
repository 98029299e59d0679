"""Paddle's money: a whole number of the currency's smallest unit, sent as a string."""

from __future__ import annotations

import re
from typing import Any

_MINOR_UNITS = re.compile(r"-?[0-9]{1,18}")  # ASCII digits; fits a signed 64-bit column


def minor_units(value: Any) -> int | None:
    """`"3000"` -> 3000 (USD 30.00); None stays None; a float or a decimal is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"money must be integer minor units, not {type(value).__name__}")
    if not _MINOR_UNITS.fullmatch(str(value)):
        raise ValueError(f"money must be integer minor units: {str(value)[:40]!r}")
    return int(value)


TOTALS = ("subtotal", "discount", "tax", "total")


def totals_in_minor_units(
    entity: dict[str, Any], totals: dict[str, Any] | None, fields: tuple[str, ...] = TOTALS
) -> dict[str, Any]:
    """An entity's currency and totals (`fields` of Paddle's totals object) as integer minor
    units: `{"currency": "USD", "subtotal": 3000, ...}`. Raises ValueError on malformed money."""
    totals = totals or {}
    return {
        "currency": entity.get("currency_code") or totals.get("currency_code"),
        **{field: minor_units(totals.get(field)) for field in fields},
    }
