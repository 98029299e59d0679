"""Paddle's notifications, from stored to applied.

- `ledger`: record each verified notification once, apply it, keep failures for retry.
- `inbox`: the ledger as a work queue: workers claim due rows and settle them.
- `handlers`: what each event type means to us, one handler per type, in one table.

Verifying a signature is `paddle_client.webhooks`; the HTTP intake is `api/webhooks.py`;
the worker processes are `billing_app/worker.py`.
May import: `subscriptions`, `billing_history`, `customer_links`, `stale_guard`, models.
"""
