"""Billing rules. Services take a session (and a Paddle client) and never commit."""
