"""Domain errors: each carries the stable `error` code and HTTP status of CONTRACT.md.

Services raise these; `billing_app.api.openapi.BillingApi` turns them into the JSON error
shape in one place, the same place that shapes flask-smorest's and Flask's own errors.
"""

from __future__ import annotations

from typing import Any


class BillingError(Exception):
    code = "billing_error"
    status = 400
    default_message = "The request could not be completed."

    def __init__(
        self,
        message: str | None = None,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message, **self.extra}
        if self.errors:
            body["errors"] = self.errors
        return body


class Unauthorized(BillingError):
    code = "unauthorized"
    status = 401
    default_message = "A valid bearer token is required."


class Forbidden(BillingError):
    code = "forbidden"
    status = 403
    default_message = "This token may not do that."


class TooManyRequests(BillingError):
    code = "too_many_requests"
    status = 429
    default_message = "Too many requests: slow down (see Retry-After)."


class ValidationFailed(BillingError):
    code = "validation_error"
    status = 422
    default_message = "The request is not valid."


class CursorExpired(BillingError):
    code = "cursor_expired"
    status = 410
    default_message = (
        "Events after this cursor may have been deleted (they are kept"
        " EVENTS_RETENTION_DAYS): start again from GET /api/v1/events/cursor, and read"
        " afresh whatever you derived from the events."
    )


class PlanNotFound(BillingError):
    code = "plan_not_found"
    status = 404
    default_message = "No active plan matches."


class AddonNotFound(BillingError):
    code = "addon_not_found"
    status = 404
    default_message = "No such add-on."


class AddonNotAllowed(BillingError):
    code = "addon_not_allowed"
    status = 409
    default_message = "This add-on cannot join this plan."


class ProductNotFound(BillingError):
    code = "product_not_found"
    status = 404
    default_message = "No active product matches."


class DiscountInvalid(BillingError):
    code = "discount_invalid"
    status = 422
    default_message = "This discount code cannot be used."


class QuotaExceeded(BillingError):
    code = "quota_exceeded"
    status = 402
    default_message = "The meter's hard limit for this billing period would be passed."


class IdempotencyKeyConflict(BillingError):
    code = "idempotency_key_conflict"
    status = 409
    default_message = "This idempotency key was used for a different report."


class PeriodClosed(BillingError):
    code = "period_closed"
    status = 409
    default_message = "That billing period no longer takes usage."


class NoSubscription(BillingError):
    code = "no_subscription"
    status = 404
    default_message = "This account has no subscription."


class TransactionNotFound(BillingError):
    code = "transaction_not_found"
    status = 404
    default_message = "This account has no transaction with that id."


class InvoiceUnavailable(BillingError):
    code = "invoice_unavailable"
    status = 409
    default_message = (
        "Paddle has no invoice for this transaction: only completed (or billed, when invoiced)"
        " transactions of a non-zero total have one."
    )


class SubscriptionExists(BillingError):
    code = "subscription_exists"
    status = 409
    default_message = "This account already has a live subscription."


class InvalidState(BillingError):
    code = "invalid_state"
    status = 409


class CheckoutInProgress(BillingError):
    """Paid (Paddle's `transaction.paid` gave access) but Paddle's `subscription.created`
    has not reached us yet: there is nothing at Paddle to act on for a few seconds."""

    code = "checkout_in_progress"
    status = 409
    default_message = (
        "The checkout is paid and Paddle is still creating the subscription; try again in a"
        " few seconds."
    )


class CustomerConflict(BillingError):
    code = "customer_conflict"
    status = 409
    default_message = "That Paddle customer pays for another account."


class CustomerShared(BillingError):
    code = "customer_shared"
    status = 409
    default_message = (
        "This account's Paddle customer also pays for another account, so its customer portal"
        " cannot be opened; your subscription is unaffected. Contact support."
    )


class AccountNotFound(BillingError):
    code = "account_not_found"
    status = 404
    default_message = "The service holds nothing about that account."


class AccountInUse(BillingError):
    code = "account_in_use"
    status = 409
    default_message = (
        "The account has a subscription that still gives access: cancel it (and let it end)"
        " before erasing the account."
    )


class SubscriptionCanceled(BillingError):
    code = "subscription_canceled"
    status = 409
    default_message = "The subscription is canceled; start a new checkout instead."


class WebhookRejected(BillingError):
    code = "invalid_signature"
    status = 401
    default_message = "The Paddle-Signature header did not verify."


class WebhooksNotConfigured(BillingError):
    code = "webhooks_not_configured"
    status = 503
    default_message = "No Paddle webhook secret is configured."


class InvalidNotification(BillingError):
    code = "invalid_notification"
    status = 400


class WebhookFailed(BillingError):
    code = "webhook_failed"
    status = 500
    default_message = "The notification is kept and will be applied on retry."


class DatabaseUnavailable(BillingError):
    code = "database_unavailable"
    status = 503
    default_message = "The database does not answer."


class PaddleNotConfigured(BillingError):
    code = "paddle_not_configured"
    status = 503
    default_message = "Paddle is not configured on this service."


class PaddleUnavailable(BillingError):
    code = "paddle_unavailable"
    status = 503
    default_message = "Paddle did not answer in time; try again shortly."


class PaddleBusy(BillingError):
    code = "paddle_busy"
    status = 503
    default_message = "Too many requests to Paddle right now; try again shortly."


class PaddleRefused(BillingError):
    code = "paddle_error"
    status = 502
    default_message = "Paddle refused the request."


def from_paddle(error: Exception) -> BillingError:
    """The answer our API gives when a Paddle call fails: 503 when Paddle could not answer
    (with Retry-After when it gave one), 502 carrying Paddle's code when it refused."""
    from paddle_client.errors import ApiError, Unavailable

    if isinstance(error, Unavailable):
        headers = {}
        if error.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(error.retry_after)))
        return PaddleUnavailable(headers=headers)
    if isinstance(error, ApiError):
        return PaddleRefused(
            f"Paddle refused the request: {error.detail or error.code}",
            extra={"paddle_error_code": error.code},
        )
    raise TypeError(f"not a Paddle error: {error!r}")


def describe_failure(error: BaseException, limit: int = 300) -> str:
    """What went wrong, fit for logs and the ledger: the error's class and the first line
    of its reason. A database error's text holds its statement's parameters (payloads,
    emails); only its driver's first line is kept."""
    reason = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
    first_line = (str(reason).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"[:limit]
