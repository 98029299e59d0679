"""Billing rules, one package per domain. Services take a session (and a Paddle client) and
do not commit: the caller (a view, a job, the CLI, the worker) owns the transaction.

- `subscriptions/`: accounts and their Paddle customers, checkout, the actions a customer
  takes (pause, cancel, resume, change, pay), and bringing our rows in line with Paddle's.
- `webhooks/`: the ledger of Paddle's notifications, the inbox workers claim from, and the
  table of one handler per event type.
- `entitlements/`: the access rule, the facts it reads, each process's cache of them, and
  the reads the API and the console share.
- `usage/`: meters, billing periods, recording usage and billing overage.
- `billing_history/`: transactions, adjustments and one-time purchases.
- `console/`: read models only the operators' console uses, and its audit log.
- `plans/`: the plans file and the catalogue.
- `selling/`: the pricing page (priced per visitor by Paddle) and discount codes.
- `events/`: outbound events: the outbox written with each change, endpoints, signed
  deliveries, the pull feed, the clock's sweep.
- `reconcile`, `locks`, `claims`, `stale_guard`, `health`: one module each.
- `customer_links`: what an account's customer held unlinked joins it once the customer is
  known (a `customer.*` event, or the product declaring the account).
- `paddle_import`: bringing existing Paddle subscribers over (`billing import paddle`).

A domain may import `models`, `db`, `errors`, `paddle_client` and the single-module services;
each package's docstring names the other domains it uses. `webhooks`, `reconcile` and
`paddle_import` apply what the others hold; `console` reads any of them. Nothing here imports
`api` or `admin`, and a test fails on any import circle between modules.

Some services commit, each for a reason that a caller's transaction cannot serve:
- `webhooks.ledger.accept` / `record_rejected`: Paddle gets its 200 only once the delivery is
  stored, before any work.
- `webhooks.inbox` and `events.delivery` (claims, settling, releasing): a claim must be
  visible to other workers before the claimed work starts, and each outcome commits with
  its changes (a delivery's only after the endpoint answered, outside any transaction).
- `events.clock`: the sweep commits a batch of accounts at a time, and where it got to.
- `console.audit.record`: an operator's action is recorded even when the action fails.
- `usage.overage`: a charge is marked as being sent before Paddle is asked, so a crash
  cannot bill twice.
- `paddle_import` and `reconcile`'s requests: each page of an import commits with its
  cursor, so a stopped import goes on from there; a scheduler's taking of an operator's
  request commits before the run, so two schedulers never take the same one.
- `reconcile`: each page of Paddle's subscriptions commits on its own, so a long run holds
  no transaction while it waits on Paddle and a crash keeps the pages done.
"""
