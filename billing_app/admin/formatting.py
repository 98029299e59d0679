"""How the console writes money, moments and payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Flask

# Currencies Paddle bills without minor units; every other has two.
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW"})


def money(minor_units: int | str | None, currency: str | None) -> str:
    if minor_units is None or minor_units == "":
        return "-"
    amount = int(minor_units)
    if currency in ZERO_DECIMAL_CURRENCIES:
        return f"{amount:,} {currency}"
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency or ''}".rstrip()


def moment(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def period(start: datetime | None, end: datetime | None) -> str:
    """A billing period, or what to say when there is none yet (a pending checkout)."""
    if start is None and end is None:
        return "none yet"
    return f"{moment(start)} → {moment(end)}"


def duration(seconds: float | None) -> str:
    """An age in its two largest units: "42 s", "3 min 5 s", "2 h 10 min", "1 d 4 h"."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    for index, (unit, size) in enumerate(units[:-1]):
        if seconds >= size:
            smaller, smaller_size = units[index + 1]
            rest = seconds % size // smaller_size
            return f"{seconds // size} {unit}" + (f" {rest} {smaller}" if rest else "")
    return f"{seconds} s"


def pretty_json(text: str) -> str:
    """A payload indented for reading; the template escapes it (it is never HTML)."""
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        return text


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(
        money=money, moment=moment, duration=duration, pretty_json=pretty_json
    )
    app.jinja_env.globals.update(period=period)
