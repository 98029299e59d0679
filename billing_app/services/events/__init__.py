"""Outbound events: what changed for an account, told to the product.

- `catalogue`: every event type and what it means.
- `changes`: what a watched row's change means (pure functions: before, after -> events).
- `outbox`: the session hooks that write a transaction's events with it, numbered per
  account, with a delivery per endpoint.

May import: models, `entitlements` (the access rule, its facts). Every other domain may
import this one (to name a change's cause, or to emit an event no row tells of).
"""
