"""The billing service's client for the product's Python services."""

from billing_client.answers import Entitlements, Grant, Meter
from billing_client.client import BillingClient, Fallback
from billing_client.errors import BillingError, BillingUnavailable, QuotaExceeded
from billing_client.usage import BufferFull, Refusal, UsageReport

__all__ = [
    "BillingClient",
    "BillingError",
    "BillingUnavailable",
    "BufferFull",
    "Entitlements",
    "Fallback",
    "Grant",
    "Meter",
    "QuotaExceeded",
    "Refusal",
    "UsageReport",
]
__version__ = "1.0.0"
