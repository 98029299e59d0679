"""Subscriptions and who owns them.

- `accounts`: accounts and the Paddle customers that pay for them.
- `ownership`: who owns a subscription or transaction Paddle tells us about (what our
  checkout made, believable claims, the customer's account), operators' links, and
  customers shared by several accounts.
- `checkout`: starting a checkout (a Paddle transaction) for a plan or a product.
- `actions`: what a customer does to a subscription (pause, cancel, resume, change, pay),
  and reading an account's subscriptions.
- `scheduled_changes`: a change at the end of the period, held here and sent to Paddle
  just before the renewal (the scheduler's `scheduled-changes` job).
- `sync`: the one rule that brings a row in line with Paddle's subscription entity, used
  by webhooks, actions' answers (`store_answer`) and reconciliation.

May import: models, `stale_guard`, `locks`, `paddle_client`; `checkout` keeps the
transaction it made through `billing_history.transactions`, and judges discount codes with
`selling.discount_codes`.
"""
