"""A catalogue of plans and one-time products, as a plans file lists them, and Paddle's
transactions buying them and adjustments taking them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.helpers.payloads import adjustment, envelope, one_time_checkout

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


def one_time_transaction(n: int, price_id: str = REPORTS, *, total: str = "4900", **changes):
    """A completed checkout of one one-time price, captured `n` days after 2026-01-01."""
    captured = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n)
    return one_time_checkout(f"txn_{n:026d}", price_id, CUSTOMER, captured, total=total, **changes)


def refund(n: int, *, total: str, status: str = "approved", **changes):
    data = adjustment(
        f"adj_{n:026d}", f"txn_{1:026d}", CUSTOMER, total=total, status=status, **changes
    )
    data["updated_at"] = f"2026-02-0{n}T00:00:00Z"
    return envelope(f"adjustment.{'updated' if status != 'pending_approval' else 'created'}", data)
