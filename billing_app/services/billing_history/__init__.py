"""What was paid and given back.

- `transactions`: the transactions ledger and the billing history read from it.
- `adjustments`: refunds, credits and chargebacks.
- `purchases`: what a completed one-time checkout grants, and what takes it back.

May import: models, `stale_guard`, `usage.periods`, and `subscriptions` (who owns a
transaction, the shape of its items).
"""
