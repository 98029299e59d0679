"""Every event type the product can receive, named from the product's side, with what it
means. `docs/events.md` shows an example of each; the OpenAPI document lists them under
`webhooks`."""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    "entitlements.changed": (
        "What the account may use changed (access, plan, features, limits, seats, grants):"
        " before and after, and why. Also sent when the clock makes the change: a scheduled"
        " cancellation or pause taking effect, a past-due grace period ending, a purchase's"
        " grant running out."
    ),
    "subscription.created": "The account has a subscription (checkout paid, or one linked to it).",
    "subscription.activated": "The subscription became active for the first time.",
    "subscription.updated": (
        "The plan, seats, billing period or scheduled change of the subscription changed."
    ),
    "subscription.paused": "The subscription is paused.",
    "subscription.resumed": "A paused subscription is active again.",
    "subscription.canceled": "The subscription is canceled.",
    "subscription.past_due": "A renewal payment failed: the subscription is past due.",
    "subscription.trial_ending": (
        "The trial ends soon (EVENTS_TRIAL_ENDING_NOTICE_HOURS before it does); once per trial."
    ),
    "payment.failed": "A payment attempt failed: what a dunning email needs.",
    "payment.recovered": "A transaction whose payment had failed is paid.",
    "purchase.completed": "A one-time purchase was paid; what it grants is the account's.",
    "purchase.revoked": "A full refund or a chargeback took a purchase back.",
    "purchase.restored": "A reversed chargeback gave a purchase back.",
    "refund.approved": "Paddle approved a refund on one of the account's transactions.",
    "chargeback.created": "The customer's bank charged back one of the account's transactions.",
    "usage.threshold_reached": "A meter's usage reached a threshold of its allowance (metering).",
}
