"""May this account use this feature now? Answered from our tables alone.

- `access`: the access rule (statuses, scheduled stops, the past-due grace period, the plan
  held until a change at period end takes effect).
- `combine`: how a plan and its subscription's add-ons combine (features, limits, meters,
  seats).
- `facts`: what the rule needs of an account, read in one round trip (and its add-ons in
  a second).
- `cache`: each process's cache of those facts, forgotten when the database announces a
  change.
- `reads`: the entitlements answer the API and the console share.

May import: models, `usage` (meters, recording's figures); never `subscriptions` or Paddle.
"""
