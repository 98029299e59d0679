"""Usage metering.

- `meters`: what a plan includes per period, its cap, and the arithmetic against them.
- `periods`: which billing period a moment of usage belongs to.
- `recording`: recording usage exactly once per idempotency key (one report or a batch);
  a period's figures.
- `aggregations`: counting for meters that do not add up (max, latest, unique_count).
- `partitions`: usage events' monthly partitions on PostgreSQL, made ahead and dropped whole.
- `overage`: billing a closed period's overage through Paddle, once.

May import: models, `billing_history.purchases` (bought credits), `entitlements` (the
access rule decides which plan's meters count), `events.outbox` (thresholds reached),
`webhooks.ledger`'s retry schedule, `paddle_client`.
"""
