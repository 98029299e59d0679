"""A catalogue of plans and one-time products, as a plans file lists them."""

from __future__ import annotations

# The customer who buys, and the one-time prices of the products.
CUSTOMER = "ctm_01hv6y1jedq4p1n0yqn5ba3ky4"
REPORTS = "pri_01reportspack000000000000"
PASS = "pri_01weekpass0000000000000000"


CATALOGUE = [
    {
        "slug": "starter",
        "name": "Starter",
        "price_id": "pri_01gsz8x8sawmvhz1pv30nge1ke",
        "amount": "3000",
        "currency": "USD",
        "interval": "month",
        "features": ["projects"],
    },
    {
        "type": "one_time",
        "slug": "reports",
        "name": "Reports pack",
        "price_id": REPORTS,
        "amount": "4900",
        "currency": "USD",
        "grants": {"features": ["reports"]},
    },
    {
        "type": "one_time",
        "slug": "week-pass",
        "name": "Week pass",
        "price_id": PASS,
        "amount": "900",
        "currency": "USD",
        "grants": {"features": ["exports", "reports"], "grant_days": 7},
    },
]
