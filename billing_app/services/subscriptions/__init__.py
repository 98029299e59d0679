"""Subscriptions and who owns them.

- `accounts`: accounts, the Paddle customers that pay for them, and linking a
  subscription to its account.
- `checkout`: starting a checkout (a Paddle transaction) for a plan or a product.
- `actions`: what a customer does to a subscription (pause, cancel, resume, change, pay),
  and reading an account's subscriptions.
- `sync`: the one rule that brings a row in line with Paddle's subscription entity, used
  by webhooks, actions' answers and reconciliation.

May import: models, `stale_guard`, `locks`, `plans`, `billing_history`, `paddle_client`.
"""
