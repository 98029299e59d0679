"""The tables. Import from here: `from billing_app.models import Subscription`."""

from billing_app.models.account import Account
from billing_app.models.audit import AuditEntry
from billing_app.models.console_session import ConsoleSession
from billing_app.models.erasure import ErasedCustomer, Erasure
from billing_app.models.event import (
    DELIVERY_STATUSES,
    EventAccount,
    EventClock,
    EventDelivery,
    EventDeliveryAttempt,
    EventEndpoint,
    OutboundEvent,
)
from billing_app.models.heartbeat import ProcessHeartbeat
from billing_app.models.import_cursor import ImportCursor
from billing_app.models.job_lease import JobLease
from billing_app.models.plan import Addon, Plan
from billing_app.models.reconcile_run import ReconcileDrift, ReconcileRequest, ReconcileRun
from billing_app.models.subscription import (
    CHANGE_STATUSES,
    LIVE_STATUSES,
    SUBSCRIPTION_STATUSES,
    Subscription,
    SubscriptionChange,
    SubscriptionItem,
)
from billing_app.models.transaction import (
    ADJUSTMENT_ACTIONS,
    TRANSACTION_STATUSES,
    Adjustment,
    Product,
    Purchase,
    Transaction,
)
from billing_app.models.usage import (
    CHARGE_STATUSES,
    UsageCharge,
    UsageCounter,
    UsageEvent,
    UsageSubject,
)
from billing_app.models.webhook_event import WEBHOOK_EVENT_STATUSES, WebhookEvent

__all__ = [
    "ADJUSTMENT_ACTIONS",
    "CHANGE_STATUSES",
    "CHARGE_STATUSES",
    "DELIVERY_STATUSES",
    "LIVE_STATUSES",
    "SUBSCRIPTION_STATUSES",
    "TRANSACTION_STATUSES",
    "WEBHOOK_EVENT_STATUSES",
    "Account",
    "Addon",
    "Adjustment",
    "AuditEntry",
    "ConsoleSession",
    "ErasedCustomer",
    "Erasure",
    "EventAccount",
    "EventClock",
    "EventDelivery",
    "EventDeliveryAttempt",
    "EventEndpoint",
    "ImportCursor",
    "JobLease",
    "OutboundEvent",
    "Plan",
    "ProcessHeartbeat",
    "Product",
    "Purchase",
    "ReconcileDrift",
    "ReconcileRequest",
    "ReconcileRun",
    "Subscription",
    "SubscriptionChange",
    "SubscriptionItem",
    "Transaction",
    "UsageCharge",
    "UsageCounter",
    "UsageEvent",
    "UsageSubject",
    "WebhookEvent",
]
