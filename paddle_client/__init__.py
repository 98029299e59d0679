"""A thin Paddle Billing client on `requests`, and the webhook signature verifier.

No Flask here: the service, the scripts and the simulator all use it.
"""

from paddle_client.client import Client
from paddle_client.errors import ApiError, FieldError, PaddleError, RateLimited, Unavailable
from paddle_client.resources.subscriptions import UNSET
from paddle_client.transport import NO_RETRIES, RetryPolicy

__all__ = [
    "NO_RETRIES",
    "UNSET",
    "ApiError",
    "Client",
    "FieldError",
    "PaddleError",
    "RateLimited",
    "RetryPolicy",
    "Unavailable",
]
